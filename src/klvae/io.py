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
