"""Entry points that the Snakemake rules call: one function per rule."""
