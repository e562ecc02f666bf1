# Data: raw files (under data/) verified by hash -> canonical uint8 arrays + provenance.

MNIST_CFG = config["data"]["mnist"]


def mnist_raw():
    """The raw input of the configured MNIST source (a file, or the folder of IDX files)."""
    if MNIST_CFG["source"] == "idx":
        if not MNIST_CFG.get("idx_dir"):
            raise WorkflowError("data.mnist.source is 'idx' but data.mnist.idx_dir is not set: name the folder "
                                "that holds the four official *-ubyte.gz files.")
        return MNIST_CFG["idx_dir"]
    from klvae.data.mnist import raw_filename
    return f"{MNIST_CFG['raw_dir']}/{raw_filename(MNIST_CFG['source'])}"


if MNIST_CFG["source"] != "idx":

    rule mnist_download:
        """Fetch the raw MNIST file of the configured source and verify its SHA-256."""
        output:
            raw=mnist_raw(),
        params:
            func="klvae.data.mnist:download",
            kwargs={"source": MNIST_CFG["source"]},
        benchmark:
            f"{BENCH}/mnist_download.tsv"
        script:
            "../scripts/call.py"


rule mnist_canonical:
    """Verify and parse raw MNIST into results/data/mnist.npz (uint8) with a provenance record."""
    input:
        raw=mnist_raw(),
    output:
        npz=f"{RESULTS}/data/mnist.npz",
        provenance=f"{RESULTS}/data/mnist_provenance.json",
    params:
        func="klvae.data.mnist:build_canonical",
        kwargs={"source": MNIST_CFG["source"]},
    benchmark:
        f"{BENCH}/mnist_canonical.tsv"
    script:
        "../scripts/call.py"
