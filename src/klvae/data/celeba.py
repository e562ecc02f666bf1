"""CelebA (or its generated stand-in) to memory-mappable uint8 arrays of 96x96 faces.

Input (docs/data.md; the user supplies it, the package registries do not carry it):

* ``img_align_celeba.zip`` -- 1,443,490,838 bytes, MD5 ``00d2c5bc6d35e252742224ab0c1e8fcb``
  (checked unless ``verify_md5=False``, for copies the user re-packed, e.g. Kaggle's
  ``archive.zip``), holding ``img_align_celeba/000001.jpg`` ... ``202599.jpg``;
* or an extracted folder: the images directly in it, in ``img_align_celeba/``, or in
  Kaggle's nested ``img_align_celeba/img_align_celeba/`` (any folder up to three levels
  down that holds ``NNNNNN.jpg`` files is found);
* optionally ``list_eval_partition.txt`` (MD5 ``d32c9cbf5e040fd4025c592c306e6668``; codes
  0/1/2 = train/valid/test, 162,770 / 19,867 / 19,962), or Kaggle's
  ``list_eval_partition.csv`` (checked by its counts instead, it has no published hash).

Preprocessing (post IX): ``im.crop((0, 40, 178, 218))`` -> 178x178 ->
``resize((96, 96), LANCZOS)``, then kept as uint8 (the post wrote q95 JPEGs and then a
float32 array; we skip the lossy JPEG round trip and the 4x larger float copy).

Files that are empty, not an image, truncated/corrupt or not 178x218 are skipped, counted
and listed in the manifest with the reason -- never fatal for the whole set. Zero usable
files raises :class:`~klvae.data.integrity.DataIntegrityError` naming the path and what
to do.

Reduced-size JPEG decoding (``Image.draft``) is used ONLY if, on a sample of the input, it
stays within :data:`DRAFT_TOLERANCE` of the full decode. Pillow's draft can only scale by
1/2, 1/4, 1/8; at 1/2 the 178x178 crop becomes 89x89, below the 96x96 target, so the
result is an upsampling. Measured on the stand-in: mean |diff| 1.6 levels, PSNR 37.5 dB,
max 100 levels -- outside the tolerance, so the default ``draft="auto"`` falls back to the
full decode; the measurement is written to the manifest every time.

Outputs: ``train_npy`` and ``test_npy`` (``np.save`` format, uint8 ``(n, 96, 96, 3)``, read
with ``np.load(path, mmap_mode="r")``) and a JSON manifest (source, hashes, files used,
files skipped with reasons, whether the data are the stand-in, timing).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import os
import platform
import re
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from klvae.data.integrity import DataIntegrityError, file_digest
from klvae.data.standin import MARKER_NAME

#: Expected size and MD5 of the official ``img_align_celeba.zip``.
ZIP_SIZE = 1_443_490_838
ZIP_MD5 = "00d2c5bc6d35e252742224ab0c1e8fcb"
#: MD5 of the official ``list_eval_partition.txt``.
PARTITION_MD5 = "d32c9cbf5e040fd4025c592c306e6668"
#: Official partition sizes (train, valid, test).
PARTITION_SIZES = (162_770, 19_867, 19_962)
#: Size of CelebA's aligned images (width, height).
IMAGE_SIZE = (178, 218)
#: The post's crop box (left, top, right, bottom), post IX.
CROP_BOX = (0, 40, 178, 218)
#: Output image size (width, height).
OUT_SIZE = (96, 96)
#: When reduced-size decoding counts as equivalent to the full decode (uint8 levels).
DRAFT_TOLERANCE = {"max_mean_abs_diff": 0.5, "min_psnr_db": 45.0}
#: Images measured for the draft check.
DRAFT_SAMPLE = 64
#: The fix for a CelebA path that holds no usable images (config key data.celeba.path).
WHAT_TO_DO = ("Point data.celeba.path in the config at the real img_align_celeba.zip or its extracted folder, "
              "or set data.celeba.path: null to run the face branch on the generated stand-in (labelled as such).")
_NAME_RE = re.compile(r"(?:^|/)(\d{6})\.jpe?g$", re.IGNORECASE)
_CHUNK = 256


# ---------------------------------------------------------------------------------------
# locating the images
# ---------------------------------------------------------------------------------------
@dataclass
class ImageSource:
    """Where the images are: ``kind`` "zip" or "dir", ``path`` (zip file or image folder),
    ``names`` {file number: member name or file path}, ``standin`` marker record or None."""

    kind: str
    path: Path
    names: dict[int, str]
    standin: dict | None = None
    notes: list[str] = field(default_factory=list)


def _numbered(names) -> dict[int, str]:
    out = {}
    for n in names:
        if "__MACOSX/" in n or Path(n).name.startswith("._"):
            continue
        m = _NAME_RE.search(n)
        if m:
            out.setdefault(int(m.group(1)), n)
    return out


def locate_images(source_path: str | Path) -> ImageSource:
    """Find CelebA-style images in a zip or a folder (incl. Kaggle's nested layout).

    Args:
        source_path: ``img_align_celeba.zip`` (or another zip holding ``NNNNNN.jpg``), or a
            folder holding the images directly, in ``img_align_celeba/`` or in
            ``img_align_celeba/img_align_celeba/`` (any depth up to 3 is searched; the
            folder with the most numbered images wins).

    Returns:
        :class:`ImageSource`.

    Raises:
        DataIntegrityError: the path does not exist, is not a zip/folder, or holds no
            ``NNNNNN.jpg`` files; the message says what to put there.
    """
    p = Path(source_path)
    what_to_do = (f"Expected CelebA's img_align_celeba.zip (members img_align_celeba/000001.jpg ...) or a folder "
                  f"of 178x218 JPEGs named 000001.jpg, 000002.jpg, ... (directly in it, in img_align_celeba/, or "
                  f"Kaggle's img_align_celeba/img_align_celeba/). {WHAT_TO_DO}")
    if not p.exists():
        raise DataIntegrityError(f"{p}: no such file or folder. {what_to_do}")
    if p.is_file():
        if not zipfile.is_zipfile(p):
            raise DataIntegrityError(f"{p}: not a zip archive. {what_to_do}")
        with zipfile.ZipFile(p) as zf:
            all_names = zf.namelist()
        names = _numbered(n for n in all_names if not n.endswith("/"))
        if not names:
            sample = f", e.g. {', '.join(all_names[:3])}" if all_names else ""
            raise DataIntegrityError(f"{p}: the zip holds no NNNNNN.jpg images ({len(all_names)} members{sample}). "
                                     f"{what_to_do}")
        standin = None
        marker = [n for n in all_names if Path(n).name == MARKER_NAME]
        if marker:
            with zipfile.ZipFile(p) as zf:
                standin = json.loads(zf.read(marker[0]))
        return ImageSource("zip", p, names, standin)
    if not p.is_dir():
        raise DataIntegrityError(f"{p}: neither a zip file nor a folder. {what_to_do}")
    best, best_names = None, {}
    frontier = [p]
    for _depth in range(4):
        nxt = []
        for d in frontier:
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            names = _numbered(e.name for e in entries if e.is_file())
            if len(names) > len(best_names):
                best, best_names = d, {k: str(Path(d) / v) for k, v in names.items()}
            nxt += [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
        frontier = nxt
    if best is None:
        raise DataIntegrityError(f"{p}: no NNNNNN.jpg images in it or in its subfolders (3 levels). {what_to_do}")
    standin = None
    if (Path(best) / MARKER_NAME).is_file():
        standin = json.loads((Path(best) / MARKER_NAME).read_text())
    src = ImageSource("dir", Path(best), best_names, standin)
    if Path(best) != p:
        src.notes.append(f"images found in {Path(best).relative_to(p)}/")
    return src


def verify_zip(path: str | Path, verify_md5: bool = True) -> dict:
    """Check the official CelebA zip's size and MD5; return ``{"size", "md5", "md5_verified"}``.

    With ``verify_md5=False`` the MD5 is still computed and recorded, but not compared.

    Raises:
        DataIntegrityError: size or MD5 differ from the official file; the message gives
            both values and says to pass ``verify_md5=False`` for a re-packed copy.
    """
    path = Path(path)
    size = path.stat().st_size
    hint = ("If this is a copy you re-packed or got elsewhere (e.g. Kaggle's archive.zip), set "
            "verify_md5: false for CelebA in the config (verify_md5=False) to accept it; "
            "the skipped-file count will still catch damaged images.")
    if verify_md5 and size != ZIP_SIZE:
        raise DataIntegrityError(f"{path}: {size:,} bytes, but the official img_align_celeba.zip has "
                                 f"{ZIP_SIZE:,} bytes (MD5 {ZIP_MD5}). {hint}")
    md5 = file_digest(path, "md5")
    if verify_md5 and md5 != ZIP_MD5:
        raise DataIntegrityError(f"{path}: MD5 mismatch (expected {ZIP_MD5}, got {md5}, {size:,} bytes): "
                                 f"not the official img_align_celeba.zip, or damaged. {hint}")
    return {"size": size, "md5": md5, "md5_verified": bool(verify_md5)}


def read_partition(path: str | Path, verify_md5: bool = True, standin: bool = False) -> tuple[dict[int, int], dict]:
    """Read ``list_eval_partition.txt`` (or Kaggle's ``.csv``): ``{file number: 0/1/2}`` and a record.

    The official ``.txt`` is MD5-checked unless ``verify_md5`` is False or the data are
    the stand-in (whose generated file has no official hash). The Kaggle ``.csv`` has no
    published hash; it is accepted when its counts equal the official ones.

    Raises:
        DataIntegrityError: missing file, MD5 mismatch, unparsable line, code not in
            {0, 1, 2}, or a ``.csv`` whose counts are not CelebA's.
    """
    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"{path}: partition file not found. Put CelebA's list_eval_partition.txt "
                                 "there, or use the post's split (split='post').")
    md5 = file_digest(path, "md5")
    is_csv = path.suffix.lower() == ".csv"
    checked = bool(verify_md5 and not standin and not is_csv)
    if checked and md5 != PARTITION_MD5:
        raise DataIntegrityError(f"{path}: MD5 mismatch (expected {PARTITION_MD5}, got {md5}). Not the official "
                                 "list_eval_partition.txt; set verify_md5: false to accept it anyway.")
    codes: dict[int, int] = {}
    text = path.read_text()
    rows = csv.reader(io.StringIO(text)) if is_csv else (line.split() for line in text.splitlines())
    for k, row in enumerate(rows, start=1):
        if not row or (is_csv and k == 1 and not row[0][:1].isdigit()):
            continue
        m = _NAME_RE.search(row[0].strip()) if len(row) == 2 else None
        if m is None or row[1].strip() not in ("0", "1", "2"):
            raise DataIntegrityError(f"{path}, line {k}: expected '<NNNNNN.jpg> <0|1|2>', got {row!r}")
        codes[int(m.group(1))] = int(row[1])
    counts = tuple(int(c) for c in np.bincount(list(codes.values()), minlength=3))
    if is_csv and verify_md5 and not standin and counts != PARTITION_SIZES:
        raise DataIntegrityError(f"{path}: partition counts {counts} are not CelebA's {PARTITION_SIZES}.")
    return codes, {"file": str(path), "md5": md5, "md5_verified": checked, "counts": list(counts)}


# ---------------------------------------------------------------------------------------
# decoding one image
# ---------------------------------------------------------------------------------------
class SkippedImage(Exception):
    """An input file that cannot be used; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


#: Reasons a file is skipped.
SKIP_REASONS = ("empty", "not_an_image", "truncated", "unreadable", "wrong_size")


def preprocess_image(data: bytes, use_draft: bool = False) -> np.ndarray:
    """Decode one CelebA JPEG and apply the post's crop and LANCZOS resize.

    Args:
        data: the file's bytes.
        use_draft: decode at half size with ``Image.draft`` (only when the draft check passed).

    Returns:
        uint8 array ``(96, 96, 3)``.

    Raises:
        SkippedImage: ``empty`` (0 bytes), ``not_an_image``, ``wrong_size`` (not 178x218),
            ``truncated`` or ``unreadable`` (decoder error).
    """
    if not data:
        raise SkippedImage("empty", "0 bytes")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise SkippedImage("not_an_image", f"{len(data)} bytes, not a recognised image format") from None
    except Exception as err:  # noqa: BLE001 -- any decoder failure is a skip, never fatal
        raise SkippedImage("unreadable", f"{type(err).__name__}: {err}") from None
    if im.size != IMAGE_SIZE:
        raise SkippedImage("wrong_size", f"{im.size[0]}x{im.size[1]}, expected {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
    box = CROP_BOX
    try:
        if use_draft:
            im.draft("RGB", (IMAGE_SIZE[0] // 2, IMAGE_SIZE[1] // 2))
            s = im.size[0] / IMAGE_SIZE[0]
            box = tuple(int(round(v * s)) for v in CROP_BOX)
        im.load()
    except Exception as err:  # noqa: BLE001
        reason = "truncated" if "truncated" in str(err).lower() else "unreadable"
        raise SkippedImage(reason, f"{type(err).__name__}: {err}") from None
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im.crop(box).resize(OUT_SIZE, Image.LANCZOS), dtype=np.uint8)


def draft_check(blobs: list[bytes]) -> dict:
    """Compare draft (half-size) decoding with the full decode on ``blobs``.

    Returns:
        ``{"n_images", "mean_abs_diff", "psnr_db", "max_abs_diff", "tolerance",
        "within_tolerance"}`` (differences in uint8 levels of the 96x96 results).
    """
    full, draft = [], []
    for b in blobs:
        try:
            full.append(preprocess_image(b, False).astype(np.float64))
            draft.append(preprocess_image(b, True).astype(np.float64))
        except SkippedImage:
            continue
    if not full:
        return {"n_images": 0, "within_tolerance": False, "tolerance": DRAFT_TOLERANCE}
    d = np.stack(full) - np.stack(draft)
    mse = float(np.mean(d ** 2))
    rec = {
        "n_images": len(full), "mean_abs_diff": round(float(np.mean(np.abs(d))), 4),
        "psnr_db": round(10 * np.log10(255.0 ** 2 / mse), 2) if mse > 0 else float("inf"),
        "max_abs_diff": int(np.max(np.abs(d))), "tolerance": DRAFT_TOLERANCE,
    }
    rec["within_tolerance"] = bool(rec["mean_abs_diff"] <= DRAFT_TOLERANCE["max_mean_abs_diff"]
                                   and rec["psnr_db"] >= DRAFT_TOLERANCE["min_psnr_db"])
    return rec


# ---------------------------------------------------------------------------------------
# parallel processing
# ---------------------------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(kind: str, path: str, use_draft: bool):
    _WORKER.clear()
    _WORKER.update(kind=kind, path=path, use_draft=use_draft, zip=None)


def _read(name: str) -> bytes:
    if _WORKER["kind"] == "zip":
        if _WORKER["zip"] is None:
            _WORKER["zip"] = zipfile.ZipFile(_WORKER["path"])
        try:
            return _WORKER["zip"].read(name)
        except (zipfile.BadZipFile, OSError, EOFError) as err:  # corrupt member (bad CRC, ...)
            raise SkippedImage("unreadable", f"zip member: {type(err).__name__}: {err}") from None
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError as err:
        raise SkippedImage("unreadable", f"{type(err).__name__}: {err}") from None


def _process_chunk(items: list[tuple[int, str]]):
    nums, arrays, skipped = [], [], []
    for num, name in items:
        try:
            arrays.append(preprocess_image(_read(name), _WORKER["use_draft"]))
            nums.append(num)
        except SkippedImage as s:
            skipped.append({"file": f"{num:06d}.jpg", "reason": s.reason, "detail": s.detail})
    out = np.stack(arrays) if arrays else np.zeros((0, OUT_SIZE[1], OUT_SIZE[0], 3), np.uint8)
    return np.asarray(nums, np.int64), out, skipped


class _Writer:
    """Appends uint8 rows to a preallocated ``.npy`` (``open_memmap``) under a temporary name."""

    def __init__(self, path: Path, capacity: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}.npy")
        self.capacity = int(capacity)
        self.arr = None
        if self.capacity > 0:
            self.arr = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.uint8,
                                                 shape=(self.capacity, OUT_SIZE[1], OUT_SIZE[0], 3))
        self.n = 0
        self.numbers: list[int] = []

    def add(self, nums, rows) -> int:
        k = min(len(rows), self.capacity - self.n)
        self.arr[self.n:self.n + k] = rows[:k]
        self.numbers += [int(v) for v in nums[:k]]
        self.n += k
        return k

    @property
    def full(self):
        return self.n >= self.capacity

    def finish(self):
        if self.arr is None or self.n == 0:  # an empty split: a valid (0, 96, 96, 3) .npy
            self.arr = None
            with open(self.tmp, "wb") as f:
                np.save(f, np.zeros((0, OUT_SIZE[1], OUT_SIZE[0], 3), np.uint8))
            os.replace(self.tmp, self.path)
            return
        self.arr.flush()
        self.arr = None
        if self.n != self.capacity:  # shrink: rewrite the header, truncate the data
            shape = (self.n, OUT_SIZE[1], OUT_SIZE[0], 3)
            with open(self.tmp, "r+b") as f:
                np.lib.format.read_magic(f)
                np.lib.format.read_array_header_1_0(f)
                old_len = f.tell()
                buf = io.BytesIO()
                np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
                if len(buf.getvalue()) != old_len:
                    raise RuntimeError("npy header length changed on shrink")  # cannot happen for 64-byte padding
                f.seek(0)
                np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
                f.truncate(old_len + int(np.prod(shape)))
        os.replace(self.tmp, self.path)

    def abort(self):
        self.arr = None
        self.tmp.unlink(missing_ok=True)


def _ranges(numbers: list[int]) -> list[list[int]]:
    """[1,2,3,5,6] -> [[1,3],[5,6]] (file numbers used, compactly)."""
    out: list[list[int]] = []
    for v in numbers:
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def _chunk_size(n_items: int, workers: int) -> int:
    """Files per task: at most :data:`_CHUNK`, and small enough that every worker gets about
    four tasks (load balance on many cores and for small sets). Only the work split depends on
    ``workers``; results are consumed in file order, so the output does not."""
    return max(1, min(_CHUNK, -(-n_items // (4 * max(1, workers)))))


def _fill(pool_map, candidates: list[tuple[int, str]], writers: list[_Writer], progress, skipped: list,
          workers: int = 1) -> int:
    """Process ``candidates`` in file order until every writer is full; return files examined.

    ``pool_map`` must return results in the order of its input (``map``/``Pool.imap``), so the
    rows, the skipped list and the file numbers are the same for any number of ``workers``.
    """
    pos = 0
    while pos < len(candidates) and not all(w.full for w in writers):
        need = sum(w.capacity - w.n for w in writers)
        wave = candidates[pos:pos + need]
        pos += len(wave)
        size = _chunk_size(len(wave), workers)
        chunks = [wave[i:i + size] for i in range(0, len(wave), size)]
        for nums, rows, skip in pool_map(_process_chunk, chunks):
            skipped += skip
            progress.update(len(nums) + len(skip))
            start = 0
            for w in writers:
                if start >= len(rows):
                    break
                if not w.full:
                    start += w.add(nums[start:], rows[start:])
    return pos


def _source_record(source_path: str | Path, src: ImageSource, verify_md5: bool) -> dict:
    """The manifest's dataset and source fields; verifies the zip, or hashes a folder's file listing."""
    is_standin = src.standin is not None
    record: dict = {
        "dataset": "synthetic CelebA stand-in (NOT CelebA)" if is_standin else "CelebA (img_align_celeba)",
        "standin": is_standin, "data_label": "synthetic stand-in, not CelebA" if is_standin else "CelebA",
        "source": {"path": str(Path(source_path).resolve()), "kind": src.kind, "image_folder": str(src.path),
                   "n_numbered_files": len(src.names), "notes": src.notes},
    }
    if is_standin:
        record["standin_marker"] = src.standin
    if src.kind == "zip":
        record["source"]["zip"] = verify_zip(src.path, verify_md5)
    else:
        listing = "\n".join(f"{k:06d} {os.path.getsize(v)}" for k, v in sorted(src.names.items()))
        import hashlib
        record["source"]["listing_sha256"] = hashlib.sha256(listing.encode()).hexdigest()
        record["source"]["listing_note"] = "SHA-256 of the sorted '<number> <size>' lines of the image files"
    return record


def _split_groups(record: dict, numbers: list[int], split: str, n_train: int | None, n_test: int | None,
                  partition_file: str | Path | None, verify_md5: bool) -> list[tuple[str, list[int], list[int]]]:
    """The split as ``[(label, file numbers, capacities)]``; adds ``partition`` to ``record`` for ``official``."""
    if split == "post":
        if n_train is None or n_test is None:
            raise ValueError("split='post' needs integer n_train and n_test")
        groups = [("train+test", numbers, [int(n_train), int(n_test)])]
    else:
        if partition_file is None:
            raise ValueError("split='official' needs partition_file (CelebA's list_eval_partition.txt)")
        codes, precord = read_partition(partition_file, verify_md5, record["standin"])
        record["partition"] = precord
        tr = [k for k in numbers if codes.get(k) == 0]
        te = [k for k in numbers if codes.get(k) == 2]
        groups = [("train", tr, [len(tr) if n_train is None else int(n_train)]),
                  ("test", te, [len(te) if n_test is None else int(n_test)])]
    if any(c < 0 for _, _, caps in groups for c in caps):
        raise ValueError("n_train and n_test must be >= 0")
    return groups


def _draft_decision(src: ImageSource, numbers: list[int], draft: str) -> tuple[bool, dict]:
    """Whether to decode with ``Image.draft``, and the manifest's ``draft_check`` record (checked on a sample)."""
    use_draft = draft == "always"
    _worker_init(src.kind, str(src.path), False)
    if draft == "auto":
        sample = []
        for k in numbers[:DRAFT_SAMPLE]:
            try:
                sample.append(_read(src.names[k]))
            except SkippedImage:
                pass
        check = draft_check(sample)
        use_draft = check["within_tolerance"]
        check["used"] = use_draft
        check["note"] = ("Image.draft within tolerance: reduced-size decoding used" if use_draft else
                         "Image.draft NOT within tolerance of the full decode: full decoding used")
    else:
        check = {"used": use_draft, "note": f"draft={draft!r} (no check)"}
    if _WORKER.get("zip") is not None:
        _WORKER["zip"].close()
    return use_draft, check


def _start_workers(src: ImageSource, use_draft: bool, threads: int):
    """``(pool, map function)``: a process pool's ``imap`` for ``threads`` > 1, else ``(None, map)`` in-process."""
    if threads > 1:  # start the workers before tqdm's monitor thread exists
        pool = mp.get_context("fork" if os.name != "nt" else "spawn").Pool(
            int(threads), initializer=_worker_init, initargs=(src.kind, str(src.path), use_draft))
        return pool, pool.imap
    _worker_init(src.kind, str(src.path), use_draft)
    return None, map


def _group_writers(label: str, caps: list[int], train_npy: str | Path, test_npy: str | Path) -> dict[str, _Writer]:
    """The writers one split group fills, by split name: train and test for ``train+test``, else the one named."""
    if label == "train+test":
        return {"train": _Writer(train_npy, caps[0]), "test": _Writer(test_npy, caps[1])}
    if label == "train":
        return {"train": _Writer(train_npy, caps[0])}
    return {"test": _Writer(test_npy, caps[0])}


def _crop_resize(src: ImageSource, groups, train_npy: str | Path, test_npy: str | Path, use_draft: bool,
                 threads: int):
    """Crop and resize every group's images in chunks into ``.npy`` writers (removed again on any error).

    Returns ``(train_w, test_w, writers, skipped, examined, loop_seconds)``.
    """
    from tqdm import tqdm
    skipped: list = []
    examined = 0
    writers: list[_Writer] = []
    pool = progress = None
    t_loop = time.perf_counter()
    try:
        pool, pool_map = _start_workers(src, use_draft, threads)
        progress = tqdm(total=sum(sum(c) for _, _, c in groups), desc="CelebA 96x96", unit="img",
                        mininterval=0.5 if sys.stderr.isatty() else 10.0, file=sys.stderr)
        train_w = test_w = None
        for label, nums, caps in groups:
            named = _group_writers(label, caps, train_npy, test_npy)
            train_w, test_w = named.get("train", train_w), named.get("test", test_w)
            ws = list(named.values())
            writers += ws
            examined += _fill(pool_map, [(k, src.names[k]) for k in nums], ws, progress, skipped,
                              int(threads) if pool is not None else 1)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        loop_seconds = time.perf_counter() - t_loop
        if progress is not None:
            progress.close()
        if pool is not None:
            pool.close()
            pool.join()
        if _WORKER.get("zip") is not None:
            _WORKER["zip"].close()
    return train_w, test_w, writers, skipped, examined, loop_seconds


def _check_counts(source_path: str | Path, src: ImageSource, writers: list[_Writer], train_w: _Writer,
                  test_w: _Writer, split: str, n_train: int | None, n_test: int | None, examined: int,
                  skipped: list, reasons: dict) -> None:
    """Remove the outputs and raise DataIntegrityError when no image was usable or a split came out short."""
    if train_w.n + test_w.n == 0:
        for w in writers:
            w.abort()
        raise DataIntegrityError(
            f"{source_path}: zero usable images among {examined:,} files examined in {src.path} "
            f"(skipped: {', '.join(f'{k} {v}' for k, v in reasons.items() if v) or 'none'}). "
            "Expected CelebA's 178x218 JPEGs named 000001.jpg, 000002.jpg, ...; these are empty, not images or "
            f"damaged: re-extract img_align_celeba.zip. {WHAT_TO_DO}")
    # a split may come out short only when it was asked for as "all of the partition" (None)
    short = [name for w, name, asked in ((train_w, "train", n_train), (test_w, "test", n_test))
             if w.n < w.capacity and (split == "post" or asked is not None)]
    if short:
        for w in writers:
            w.abort()
        raise DataIntegrityError(
            f"{source_path}: asked for {train_w.capacity:,} train + {test_w.capacity:,} test images, but only "
            f"{train_w.n:,} + {test_w.n:,} usable ones were found ({examined:,} examined, {len(skipped):,} skipped: "
            f"{reasons}). Lower e3.n_train / e3.n_test in the config.")


def _result_record(split: str, train_w: _Writer, test_w: _Writer, train_npy: str | Path, test_npy: str | Path,
                   examined: int, skipped: list, reasons: dict, seconds: float, loop_seconds: float,
                   threads: int) -> dict:
    """The manifest's split, preprocessing, file, output (with SHA-256) and timing fields."""
    return {
        "split": split, "n_train": train_w.n, "n_test": test_w.n,
        "preprocessing": {"crop_box_ltrb": list(CROP_BOX), "resize": list(OUT_SIZE), "resample": "LANCZOS",
                          "library": f"Pillow {Image.__version__}", "source": "post IX"},
        "train_files": {"count": train_w.n, "ranges": _ranges(train_w.numbers)},
        "test_files": {"count": test_w.n, "ranges": _ranges(test_w.numbers)},
        "files_examined": examined, "files_skipped": len(skipped), "skipped_by_reason": reasons,
        "skipped": skipped,
        "outputs": {
            "train_npy": {"path": str(train_npy), "shape": [train_w.n, OUT_SIZE[1], OUT_SIZE[0], 3], "dtype": "uint8",
                          "sha256": file_digest(train_npy)},
            "test_npy": {"path": str(test_npy), "shape": [test_w.n, OUT_SIZE[1], OUT_SIZE[0], 3], "dtype": "uint8",
                         "sha256": file_digest(test_npy)},
        },
        "timing": {"seconds_total": round(seconds, 2), "seconds_decode_resize": round(loop_seconds, 2),
                   "processes": int(threads),
                   "images_per_second": round(examined / loop_seconds, 1),
                   "images_per_second_per_process": round(examined / loop_seconds / max(1, int(threads)), 1),
                   "note": "rates over the decode/crop/resize/write loop (files examined / its wall time)",
                   "machine": platform.machine(), "python": platform.python_version()},
    }


def _write_manifest(manifest: str | Path, record: dict) -> None:
    """Write ``record`` as indented JSON to ``manifest`` (under a temporary name, then renamed)."""
    manifest = Path(manifest)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(manifest)


def preprocess(source_path: str | Path, train_npy: str | Path, test_npy: str | Path, manifest: str | Path,
               n_train: int | None = 170_000, n_test: int | None = 10_000, split: str = "post",
               partition_file: str | Path | None = None, verify_md5: bool = True, draft: str = "auto",
               threads: int = 1) -> dict:
    """CelebA (zip or folder, or the stand-in folder) -> ``train_npy``, ``test_npy``, ``manifest``.

    Args:
        source_path: ``img_align_celeba.zip`` or a folder (see :func:`locate_images`).
        train_npy, test_npy: output ``.npy`` paths; uint8 ``(n, 96, 96, 3)``, written under a
            temporary name and renamed when complete.
        manifest: output JSON path.
        n_train, n_test: images per split. ``split="post"``: the first ``n_train`` usable
            images in file-number order, then the next ``n_test`` (post IX: 170,000 /
            10,000); both must be ints. ``split="official"``: the first ``n_train`` usable
            images of partition 0 and the first ``n_test`` of partition 2 (None = all).
        split: ``"post"`` or ``"official"`` (needs ``partition_file``).
        partition_file: CelebA's ``list_eval_partition.txt`` (or Kaggle's ``.csv``).
        verify_md5: check the zip's size/MD5 and the partition file's MD5 (False for
            re-packed copies; the MD5 is then recorded, not compared).
        draft: ``"auto"`` (use ``Image.draft`` only if :func:`draft_check` on the first
            :data:`DRAFT_SAMPLE` images passes), ``"never"``, or ``"always"``.
        threads: worker processes.

    Returns:
        The manifest (dict).

    Raises:
        DataIntegrityError: no images found, zero usable images, MD5/size mismatch, or fewer
            usable images than requested (the message says how many there are).
        ValueError: bad ``split``/``draft``/counts.
    """
    t0 = time.perf_counter()
    if split not in ("post", "official"):
        raise ValueError(f"split must be 'post' or 'official', got {split!r}")
    if draft not in ("auto", "never", "always"):
        raise ValueError(f"draft must be 'auto', 'never' or 'always', got {draft!r}")
    src = locate_images(source_path)
    record = _source_record(source_path, src, verify_md5)
    numbers = sorted(src.names)
    groups = _split_groups(record, numbers, split, n_train, n_test, partition_file, verify_md5)
    use_draft, record["draft_check"] = _draft_decision(src, numbers, draft)
    train_w, test_w, writers, skipped, examined, loop_seconds = _crop_resize(src, groups, train_npy, test_npy,
                                                                             use_draft, threads)
    reasons = {r: sum(1 for s in skipped if s["reason"] == r) for r in SKIP_REASONS}
    _check_counts(source_path, src, writers, train_w, test_w, split, n_train, n_test, examined, skipped, reasons)
    for w in writers:
        w.finish()
    seconds = time.perf_counter() - t0
    record.update(_result_record(split, train_w, test_w, train_npy, test_npy, examined, skipped, reasons, seconds,
                                 loop_seconds, threads))
    _write_manifest(manifest, record)
    print(f"[celeba] {record['dataset']}: {train_w.n:,} train + {test_w.n:,} test images, {len(skipped):,} skipped "
          f"of {examined:,} examined, {seconds:.1f} s ({threads} process(es)) -> {train_npy}, {test_npy}", flush=True)
    return record


def data_label(manifest: str | Path) -> str:
    """The label for figures: ``"CelebA"`` or ``"synthetic stand-in, not CelebA"`` (from the manifest)."""
    return json.loads(Path(manifest).read_text())["data_label"]


__all__ = ["preprocess", "preprocess_image", "locate_images", "verify_zip", "read_partition", "draft_check",
           "data_label", "SkippedImage", "ImageSource", "CROP_BOX", "OUT_SIZE", "ZIP_MD5", "ZIP_SIZE",
           "PARTITION_MD5", "DRAFT_TOLERANCE"]
