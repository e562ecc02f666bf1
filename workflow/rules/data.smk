# Data: raw files (under data/, shared by every profile) verified by hash -> canonical uint8
# arrays + provenance in the profile's results folder (a few seconds to remake).

from klvae.data.mnist import raw_input_path

MNIST_CFG = config["data"]["mnist"]
try:
    MNIST_RAW = raw_input_path(MNIST_CFG)  # the downloaded file, or the folder of IDX files
except ValueError as err:
    raise WorkflowError(str(err)) from None


if MNIST_CFG["source"] != "idx":

    rule mnist_download:
        """Fetch the raw MNIST file of the configured source and verify its SHA-256."""
        output:
            raw=MNIST_RAW,
        log:
            f"{LOGS}/mnist_download.log",
        benchmark:
            f"{BENCH}/mnist_download.tsv"
        conda:
            CONDA_ENV
        params:
            **library_call("klvae.data.mnist:download"),
            kwargs={"source": MNIST_CFG["source"]},
        script:
            CALL


rule mnist_canonical:
    """Verify and parse raw MNIST into results/<profile>/data/mnist.npz (uint8) with a provenance record."""
    input:
        raw=MNIST_RAW,
    output:
        npz=f"{RESULTS}/data/mnist.npz",
        provenance=f"{RESULTS}/data/mnist_provenance.json",
    log:
        f"{LOGS}/mnist_canonical.log",
    benchmark:
        f"{BENCH}/mnist_canonical.tsv"
    conda:
        CONDA_ENV
    params:
        **library_call("klvae.data.mnist:build_canonical"),
        kwargs={"source": MNIST_CFG["source"]},
    script:
        CALL
