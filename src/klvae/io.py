"""Atomic file writes used by every rule's function: a half-written output never looks finished.

Each writer writes a temporary sibling (same folder, same suffix, the process id in its
name) and renames it over the target with :func:`os.replace`, which is atomic on POSIX.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path


def atomic_path(path: str | Path) -> Path:
    """A temporary sibling of ``path`` that keeps its suffix (Keras checks ``.keras``,
    NumPy adds ``.npy``/``.npz`` unless present); creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{''.join(path.suffixes) or ''}")


def commit(tmp: str | Path, path: str | Path) -> None:
    """Move a finished temporary file from :func:`atomic_path` onto ``path`` (atomic rename)."""
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    tmp = atomic_path(path)
    tmp.write_text(text)
    commit(tmp, path)


def write_json(path: str | Path, record) -> None:
    """Write ``record`` as indented JSON (one trailing newline) atomically."""
    write_text(path, json.dumps(record, indent=2) + "\n")


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """Write dict rows as CSV atomically; the header is the union of the rows' keys in first-seen order.

    Raises:
        ValueError: no rows (an empty table is almost always a bug upstream).
    """
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    tmp = atomic_path(path)
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    commit(tmp, path)


def weight_arrays(path: str | Path) -> dict:
    """Every array stored in a Keras weights file, by its HDF5 path.

    Args:
        path: a native Keras model (``.keras``: a zip holding ``model.weights.h5``) or a
            weights file (``.weights.h5``).

    Returns:
        ``{hdf5 dataset path: numpy array}`` -- the layers' weights, the optimizer's
        variables and the sampling layers' random-generator state.

    Raises:
        ValueError: a ``.keras`` file without ``model.weights.h5``.
    """
    import io
    import zipfile

    import h5py

    def read(f) -> dict:
        out = {}
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return out

    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if "model.weights.h5" not in z.namelist():
                raise ValueError(f"{path}: no model.weights.h5 inside; not a native Keras 3 model file")
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                return read(f)
    with h5py.File(path, "r") as f:
        return read(f)


def weights_digest(path: str | Path) -> str:
    """SHA-256 (hex) over every array of a Keras weights file (:func:`weight_arrays`): path, dtype, shape, bytes.

    Two files have the same digest exactly when they hold bitwise-identical weights,
    whatever the zip or HDF5 metadata (timestamps) around them.
    """
    import hashlib

    h = hashlib.sha256()
    for name, a in sorted(weight_arrays(path).items()):
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def c_of(data, path: str = "") -> float:
    """The KL coefficient c stored in a ``latent.npz`` or ``grid.npz`` of :func:`klvae.experiments.e1.analyse`
    (under ``c``; files written before the rename store it as ``kl_weight``).

    Args:
        data: the loaded ``.npz`` (``np.load``'s mapping).
        path: its path, for the message.

    Raises:
        ValueError: the file predates the stored coefficient (rerun rule ``e1_analyse`` for it).
    """
    for key in ("c", "kl_weight"):
        if key in data:
            return float(data[key])
    raise ValueError(f"{path or 'this .npz'} has no 'c': it was written before e1_analyse stored the "
                     f"model's KL coefficient; rerun e1_analyse (delete the file and run snakemake again)")

