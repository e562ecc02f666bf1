"""klvae: a reproducible report on the Kullback-Leibler loss in Variational Autoencoders.

Library code for the Snakemake workflow in this repository: data ingestion with
hash verification (:mod:`klvae.data`), the VAE models (:mod:`klvae.models`), the
KL-loss strategies (:mod:`klvae.strategies`), the experiments the rules call
(:mod:`klvae.experiments`), figures (:mod:`klvae.figures`) and report rendering
(:mod:`klvae.report`).
"""

__version__ = "0.1.0"
