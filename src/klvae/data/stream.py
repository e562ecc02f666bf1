"""``tf.data`` input pipelines from uint8 arrays (in RAM or memory-mapped).

Images stay uint8 until a batch is drawn; scaling to float32 in [0, 1] happens inside the
pipeline, so no float32 copy of a data set is ever held in memory.

For a ``np.memmap`` (``np.load(path, mmap_mode="r")``, e.g. E3's CelebA arrays) the rows
of a batch are read with positional reads (``os.pread``) from the ``.npy`` file, in file
order, into a fresh buffer. Nothing of the file is mapped into the process, so the page
cache the OS keeps for it is not counted in the process's resident set (RSS) and memory
use does not grow with the data set; reading the rows in ascending file order keeps the
disk access sequential-ish. If the array's file position cannot be determined (not
C-contiguous, or not backed by a plain file) the rows are gathered from the mapping
instead, which is correct but lets the mapped pages count towards RSS.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np
import tensorflow as tf


def _memmap_file_offset(x: np.memmap) -> tuple[str, int] | None:
    """``(filename, byte offset of row 0)`` of a C-contiguous memmap (or a row slice of one), else None."""
    filename = getattr(x, "filename", None)
    mm = getattr(x, "_mmap", None)
    if not filename or mm is None or not x.flags.c_contiguous or not Path(filename).is_file():
        return None
    try:
        map_start_addr = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):
        return None
    # np.memmap maps from the allocation-granularity boundary below the root array's offset;
    # slices inherit the root's ``offset`` attribute and the same mmap object.
    map_start_file = x.offset - x.offset % mmap.ALLOCATIONGRANULARITY
    return str(filename), map_start_file + (x.ctypes.data - map_start_addr)


class _RowReader:
    """Reads rows ``idx`` of a C-contiguous uint8 array stored at ``offset`` in ``filename``."""

    def __init__(self, filename: str, offset: int, row_shape: tuple[int, ...], n_rows: int):
        self.filename, self.offset, self.row_shape, self.n_rows = filename, offset, row_shape, n_rows
        self.row_bytes = int(np.prod(row_shape))
        self._fd = None

    def _fileno(self):
        if self._fd is None:
            self._fd = os.open(self.filename, os.O_RDONLY)
        return self._fd

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        out = np.empty((len(idx), *self.row_shape), np.uint8)
        flat = out.reshape(len(idx), self.row_bytes)
        fd = self._fileno()
        for j in np.argsort(idx, kind="stable"):
            i = int(idx[j])
            if not 0 <= i < self.n_rows:
                raise IndexError(f"row {i} out of range for {self.n_rows} rows of {self.filename}")
            got = os.preadv(fd, [memoryview(flat[j])], self.offset + i * self.row_bytes)
            if got != self.row_bytes:
                raise OSError(f"short read of row {i} from {self.filename}: {got} of {self.row_bytes} bytes")
        return out

    def __del__(self):
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


def memmap_row_reader(x: np.ndarray):
    """A function ``idx (k,) int64 -> uint8 (k, *x.shape[1:])`` for ``x``, reading a memmap by ``pread``.

    Returns the fancy-indexing gather ``lambda idx: x[idx]`` when ``x`` is not a memmap or
    its file position cannot be determined. The pread reader is checked against ``x`` on
    its first and last rows when built.
    """
    if isinstance(x, np.memmap) and x.dtype == np.uint8 and len(x):
        loc = _memmap_file_offset(x)
        if loc is not None:
            reader = _RowReader(loc[0], loc[1], tuple(x.shape[1:]), len(x))
            probe = np.array([0, len(x) - 1])
            if np.array_equal(reader(probe), np.asarray(x[probe])):
                return reader
    return lambda idx: np.asarray(x[np.asarray(idx)])


def epoch_indices(n: int, batch_size: int, shuffle: bool, seed: int, epochs: int, start_epoch: int = 0,
                  drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of row indices (int64 ``(batch,)``) for epochs ``start_epoch .. epochs-1``, one after the other.

    Epoch ``k``'s order is ``tf.random.experimental.stateless_shuffle(range(n), seed=[seed, k])``
    (or ``range(n)`` without ``shuffle``): a pure function of ``(seed, k)``, whatever ran
    before in the process. That is what lets a training run resumed at epoch ``k`` from a
    checkpoint see exactly the batches an uninterrupted run sees. Batches never straddle two
    epochs, so every epoch has ``ceil(n / batch_size)`` batches (``floor`` with
    ``drop_remainder``).

    Raises:
        ValueError: ``n < 1``, ``batch_size < 1`` or ``start_epoch`` outside ``[0, epochs)``.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    if not 0 <= start_epoch < epochs:
        raise ValueError(f"start_epoch {start_epoch} outside [0, {epochs})")
    seed = int(seed)

    def one_epoch(k):
        idx = tf.range(n, dtype=tf.int64)
        if shuffle:
            idx = tf.random.experimental.stateless_shuffle(idx, seed=tf.stack([tf.constant(seed, tf.int64), k]))
        return tf.data.Dataset.from_tensor_slices(idx).batch(batch_size, drop_remainder=drop_remainder)

    return tf.data.Dataset.range(int(start_epoch), int(epochs)).flat_map(one_epoch)


def image_dataset(x: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                  scale: float = 1.0 / 255.0, drop_remainder: bool = False, epochs: int | None = None,
                  start_epoch: int = 0) -> tf.data.Dataset:
    """Batches of float32 images ``(batch, *x.shape[1:])`` scaled to [0, 1].

    Args:
        x: uint8 array ``(n, ...)`` (a ``np.memmap`` works too and is read by ``pread``,
            see the module doc).
        batch_size: images per batch.
        shuffle: shuffle the rows with a seeded, repeatable order (``seed``).
        seed: shuffle seed.
        scale: multiplier applied after the cast (1/255 maps uint8 to [0, 1]).
        drop_remainder: drop a last, smaller batch.
        epochs, start_epoch: with ``epochs``, the data set holds the batches of epochs
            ``start_epoch .. epochs-1`` back to back, epoch k in the order of
            :func:`epoch_indices` (a pure function of seed and k; pass
            ``steps_per_epoch=ceil(n / batch_size)`` to ``fit``). This is what training uses.
            Without it, one pass; with ``shuffle`` each new iterator reshuffles
            (``Dataset.shuffle(reshuffle_each_iteration=True)``), so the order depends on
            how many iterators were made before -- fine for benchmarks, not for resuming.

    Returns:
        A ``tf.data.Dataset`` of float32 tensors, prefetched. The batch contents and their
        order are the same for a memmap and an in-RAM array with equal values.
    """
    n = len(x)
    if epochs is not None:
        ds = epoch_indices(n, batch_size, shuffle, seed, epochs, start_epoch, drop_remainder)
    else:
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    if isinstance(x, np.memmap):
        read_rows = memmap_row_reader(x)
        row_shape = tuple(x.shape[1:])

        def gather(idx):
            batch = tf.numpy_function(read_rows, [idx], tf.uint8)
            batch.set_shape((None, *row_shape))
            return tf.cast(batch, tf.float32) * scale

        ds = ds.map(gather, num_parallel_calls=1, deterministic=True)
    else:
        xt = tf.constant(x)
        ds = ds.map(lambda idx: tf.cast(tf.gather(xt, idx), tf.float32) * scale,
                    num_parallel_calls=1, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
