"""Backend-neutral input pipelines from uint8 arrays (in RAM or memory-mapped).

:class:`ImageBatches` is a ``keras.utils.PyDataset``: NumPy batches that every Keras 3
backend trains from (TensorFlow wraps it in a prefetching ``tf.data`` pipeline itself; JAX
and PyTorch take the arrays). Images stay uint8 until a batch is drawn; scaling to float32
in [0, 1] happens per batch, so no float32 copy of a data set is ever held in memory.

The data order of epoch k is :func:`epoch_order` ``(n, seed, k)``, a pure function of the
seed and the epoch, and batch ``i`` of the data set is a pure function of ``i`` (epochs
lie back to back), whatever ran before in the process and however far a backend
prefetches. That is what lets a training run resumed at epoch k from a checkpoint see
exactly the batches an uninterrupted run sees.

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

import keras
import numpy as np


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


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Row order of one epoch: int64 ``(n,)``, a permutation of ``range(n)``.

    ``numpy.random.default_rng([seed, epoch]).permutation(n)`` with ``shuffle``, else
    ``arange(n)``: a pure function of ``(seed, epoch)``, the same on every backend and
    machine (NumPy's PCG64 with a ``SeedSequence`` of both numbers).

    Raises:
        ValueError: ``n < 1`` or a negative seed or epoch.
    """
    if n < 1 or seed < 0 or epoch < 0:
        raise ValueError(f"need n >= 1, seed >= 0 and epoch >= 0, got n={n}, seed={seed}, epoch={epoch}")
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


class ImageBatches(keras.utils.PyDataset):
    """Batches of float32 images ``(batch, *x.shape[1:])`` in [0, 1] from uint8 images, epoch after epoch.

    Batch ``i`` belongs to epoch ``start_epoch + i // steps_per_epoch`` and holds rows
    ``epoch_order(n, seed, epoch)[j * batch_size:(j + 1) * batch_size]`` with
    ``j = i % steps_per_epoch``, so the data set is a pure function of its arguments.
    Batches never straddle two epochs: every epoch has ``ceil(n / batch_size)`` batches
    (``floor`` with ``drop_remainder``). Train with
    ``fit(ImageBatches(..., epochs=E, start_epoch=k), epochs=E, initial_epoch=k,
    steps_per_epoch=batches.steps_per_epoch)``: Keras keeps one iterator across epochs.

    Args:
        x: uint8 array ``(n, ...)``; a ``np.memmap`` is read by ``pread`` (module doc).
        batch_size: images per batch.
        shuffle: seeded order per epoch (:func:`epoch_order`); False: file order.
        seed: order seed.
        epochs, start_epoch: the data set holds epochs ``start_epoch .. epochs-1``.
        scale: multiplier after the cast to float32 (1/255 maps uint8 to [0, 1]).
        drop_remainder: drop each epoch's last, smaller batch.
        transform: optional function of the float32 batch (NumPy) returning what ``fit``
            takes, e.g. ``(x, x)`` or ``(x, {name: target})`` (a KL strategy's ``fit_data``).

    Raises:
        ValueError: an empty array, ``batch_size < 1``, ``start_epoch`` outside
            ``[0, epochs)``, or no full batch with ``drop_remainder``.
        IndexError: a batch index outside ``[0, len(self))``.
    """

    def __init__(self, x: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0, epochs: int = 1,
                 start_epoch: int = 0, scale: float = 1.0 / 255.0, drop_remainder: bool = False, transform=None):
        super().__init__(workers=1, use_multiprocessing=False)
        n = len(x)
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        if not 0 <= start_epoch < epochs:
            raise ValueError(f"start_epoch {start_epoch} outside [0, {epochs})")
        self.n, self.batch_size, self.shuffle, self.seed = n, int(batch_size), bool(shuffle), int(seed)
        self.epochs, self.start_epoch, self.scale = int(epochs), int(start_epoch), float(scale)
        self.steps_per_epoch = n // self.batch_size if drop_remainder else -(-n // self.batch_size)
        if self.steps_per_epoch < 1:
            raise ValueError(f"drop_remainder with {n} images leaves no batch of {batch_size}")
        self.transform = transform
        self.in_memory = None if isinstance(x, np.memmap) else x  # an in-RAM array (backend.fit_input)
        self._read = memmap_row_reader(x)
        self._order_epoch, self._order = -1, None

    @property
    def num_batches(self) -> int:
        """Batches in the whole data set: ``steps_per_epoch * (epochs - start_epoch)``."""
        return self.steps_per_epoch * (self.epochs - self.start_epoch)

    def __len__(self) -> int:
        return self.num_batches

    def rows(self, i: int) -> np.ndarray:
        """Row indices (int64) of batch ``i``."""
        if not 0 <= i < self.num_batches:
            raise IndexError(f"batch {i} outside [0, {self.num_batches})")
        epoch, j = self.start_epoch + i // self.steps_per_epoch, i % self.steps_per_epoch
        if epoch != self._order_epoch:
            self._order, self._order_epoch = epoch_order(self.n, self.seed, epoch, self.shuffle), epoch
        return self._order[j * self.batch_size:(j + 1) * self.batch_size]

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The whole data set as index arrays: ``(order, starts, ends)``, int64.

        ``order`` concatenates :func:`epoch_order` of epochs ``start_epoch .. epochs-1``;
        batch ``i`` holds rows ``order[starts[i]:ends[i]]`` (the same rows as :meth:`rows`).
        """
        orders = [epoch_order(self.n, self.seed, e, self.shuffle) for e in range(self.start_epoch, self.epochs)]
        j = np.arange(self.num_batches, dtype=np.int64)
        epoch, step = j // self.steps_per_epoch, j % self.steps_per_epoch
        starts = epoch * self.n + step * self.batch_size
        ends = np.minimum(starts + self.batch_size, (epoch + 1) * self.n)
        return np.concatenate(orders), starts, ends

    def __getitem__(self, i: int):
        batch = self._read(self.rows(int(i))).astype(np.float32) * np.float32(self.scale)
        return self.transform(batch) if self.transform is not None else batch

    def __iter__(self):
        for i in range(self.num_batches):
            yield self[i]
