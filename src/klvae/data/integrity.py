"""Hash verification and the restricted unpickler used before reading any raw data."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path


class DataIntegrityError(RuntimeError):
    """A raw data file is missing, truncated or does not have the expected hash."""


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in 1 MiB chunks. ``algorithm``: any ``hashlib`` name."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_bytes(data: bytes, expected: str, algorithm: str, what: str, hint: str) -> None:
    """Raise :class:`DataIntegrityError` unless ``hashlib.new(algorithm, data)`` equals ``expected``.

    Args:
        data: the bytes to check.
        expected: expected hex digest (lower case).
        algorithm: ``"sha256"`` or ``"md5"``.
        what: the file's name or path, for the message.
        hint: what the user should do, appended to the message.
    """
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected.lower():
        raise DataIntegrityError(
            f"{what}: {algorithm.upper()} mismatch (expected {expected}, got {actual}, {len(data):,} bytes). {hint}")


def verify_file(path: str | Path, expected: str, algorithm: str = "sha256", hint: str = "",
                size: int | None = None) -> str:
    """Check that ``path`` exists (with ``size`` bytes, when given) and has the expected digest.

    Returns:
        The digest.

    Raises:
        DataIntegrityError: if the file is missing, shorter than ``size`` (reported as
            truncated), of another size, or its digest differs; the message names the path,
            the expected and actual size/digest, and ``hint`` (what to do).
    """
    path = Path(path)
    name = algorithm.upper()
    if not path.is_file():
        raise DataIntegrityError(f"{path}: file not found (expected {name} {expected}). {hint}")
    actual = file_digest(path, algorithm)
    n = path.stat().st_size
    if size is not None and n != size:
        what = ("truncated: " if n < size else "") + f"{n:,} bytes, expected {size:,} bytes"
        why = ("an interrupted download or copy" if n < size else "not the expected file")
        raise DataIntegrityError(
            f"{path}: {what} ({why}; {name} mismatch: expected {expected}, got {actual}). {hint}")
    if actual != expected.lower():
        raise DataIntegrityError(
            f"{path}: {name} mismatch (expected {expected}, got {actual}, {n:,} bytes). "
            + ("It has the expected size, so its content is damaged or altered. " if size is not None else
               "The file is corrupt, truncated or a different version. ") + hint)
    return actual


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals NumPy needs to rebuild arrays.

    Admitted: ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
    ``numpy.ndarray`` and ``numpy.dtype``. Any other global -- ``os.system``,
    ``builtins.eval``, ``subprocess.Popen``... -- raises ``pickle.UnpicklingError``
    before it is called. (Python docs, "Restricting Globals".)
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only NumPy array reconstruction is allowed")
        import numpy as np
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def restricted_loads(data: bytes, encoding: str = "latin1"):
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler` (``latin1`` reads Python 2 pickles)."""
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
