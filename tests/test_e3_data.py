"""E3 data: the CelebA stand-in, CelebA ingestion (crop, bad files, MD5, layouts, splits) and the stream."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from klvae.data import celeba, standin
from klvae.data.integrity import DataIntegrityError, file_digest


def _jpeg(arr: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _face_bytes(i: int) -> bytes:
    buf = io.BytesIO()
    standin.draw_face(seed=7, index=i).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --- the fixture: a small CelebA-format folder with good and bad files ---------------------
GOOD = [1, 3, 7, 8, 9, 10]
BAD = {2: "truncated", 4: "empty", 5: "not_an_image", 6: "wrong_size"}


def _write_fixture(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in GOOD:
        (folder / f"{i:06d}.jpg").write_bytes(_face_bytes(i))
    full = _face_bytes(2)
    (folder / "000002.jpg").write_bytes(full[: len(full) // 2])  # truncated JPEG, header intact
    (folder / "000004.jpg").write_bytes(b"")  # zero bytes
    (folder / "000005.jpg").write_text("this is not an image, just text named .jpg\n")
    (folder / "000006.jpg").write_bytes(_jpeg(np.full((100, 100, 3), 128, np.uint8)))  # wrong size
    return folder


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    return _write_fixture(tmp_path_factory.mktemp("celeba") / "img_align_celeba")


def _expected(folder: Path, numbers) -> np.ndarray:
    return np.stack([celeba.preprocess_image((folder / f"{i:06d}.jpg").read_bytes()) for i in numbers])


# --- preprocessing of one image ---------------------------------------------------------------
def test_crop_box_keeps_rows_40_to_218_and_output_is_96x96_uint8():
    arr = np.zeros((218, 178, 3), np.uint8)
    arr[:40] = (255, 0, 0)  # the rows the post's crop box (0, 40, 178, 218) removes
    arr[40:, :, 2] = 200
    arr[40:, :, 1] = np.linspace(0, 255, 178).astype(np.uint8)[None, :]  # a known horizontal ramp
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")  # lossless, so the pixels are known exactly
    out = celeba.preprocess_image(buf.getvalue())
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    assert out[..., 0].max() == 0, "red rows above y=40 leaked into the crop"
    expected = np.asarray(Image.fromarray(arr[40:218, 0:178]).resize((96, 96), Image.LANCZOS))
    np.testing.assert_array_equal(out, expected)
    assert celeba.CROP_BOX == (0, 40, 178, 218)


@pytest.mark.parametrize("i,reason", sorted(BAD.items()))
def test_each_bad_file_raises_skip_with_its_reason(fixture_dir, i, reason):
    with pytest.raises(celeba.SkippedImage) as err:
        celeba.preprocess_image((fixture_dir / f"{i:06d}.jpg").read_bytes())
    assert err.value.reason == reason


# --- the folder pipeline ---------------------------------------------------------------------
def test_bad_files_are_skipped_counted_and_listed(fixture_dir, tmp_path):
    rec = celeba.preprocess(fixture_dir, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                            n_train=3, n_test=2, threads=1)
    assert rec["skipped_by_reason"] == {"empty": 1, "not_an_image": 1, "truncated": 1, "unreadable": 0,
                                        "wrong_size": 1}
    assert {s["file"]: s["reason"] for s in rec["skipped"]} == {f"{i:06d}.jpg": r for i, r in BAD.items()}
    # first 3 usable files in file order -> train, next 2 -> test
    assert rec["train_files"]["ranges"] == [[1, 1], [3, 3], [7, 7]]
    assert rec["test_files"]["ranges"] == [[8, 9]]
    tr, te = np.load(tmp_path / "tr.npy", mmap_mode="r"), np.load(tmp_path / "te.npy", mmap_mode="r")
    assert tr.shape == (3, 96, 96, 3) and te.shape == (2, 96, 96, 3) and tr.dtype == te.dtype == np.uint8
    np.testing.assert_array_equal(tr, _expected(fixture_dir, [1, 3, 7]))
    np.testing.assert_array_equal(te, _expected(fixture_dir, [8, 9]))
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["outputs"]["train_npy"]["sha256"] == file_digest(tmp_path / "tr.npy")
    assert manifest["outputs"]["test_npy"]["sha256"] == file_digest(tmp_path / "te.npy")
    assert manifest["standin"] is False and manifest["data_label"] == "CelebA"
    assert manifest["files_skipped"] == 4 and manifest["files_examined"] == 9
    assert manifest["draft_check"]["used"] is False  # half-size draft upsamples 89 -> 96 px


def test_parallel_processing_gives_identical_arrays(fixture_dir, tmp_path):
    for t in (1, 2):
        celeba.preprocess(fixture_dir, tmp_path / f"tr{t}.npy", tmp_path / f"te{t}.npy", tmp_path / f"m{t}.json",
                          n_train=4, n_test=2, threads=t)
    assert file_digest(tmp_path / "tr1.npy") == file_digest(tmp_path / "tr2.npy")
    assert file_digest(tmp_path / "te1.npy") == file_digest(tmp_path / "te2.npy")


def test_too_few_usable_images_is_a_clear_error(fixture_dir, tmp_path):
    with pytest.raises(DataIntegrityError, match=r"asked for 5 train \+ 5 test images, but only 5 \+ 1 usable"):
        celeba.preprocess(fixture_dir, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                          n_train=5, n_test=5)
    assert not (tmp_path / "tr.npy").exists() and not (tmp_path / "m.json").exists()


def test_zero_usable_files_names_the_path_and_what_to_do(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "000001.jpg").write_bytes(b"")
    (folder / "000002.jpg").write_text("not an image")
    with pytest.raises(DataIntegrityError) as err:
        celeba.preprocess(folder, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json", n_train=1, n_test=0)
    msg = str(err.value)
    assert "zero usable images" in msg and str(folder) in msg and "stand-in" in msg
    assert "empty 1" in msg and "not_an_image 1" in msg


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataIntegrityError, match="no NNNNNN.jpg images"):
        celeba.locate_images(tmp_path / "empty")
    with pytest.raises(DataIntegrityError, match="no such file or folder"):
        celeba.locate_images(tmp_path / "missing")


def test_kaggle_nested_layout_is_found(tmp_path):
    root = tmp_path / "kaggle"
    _write_fixture(root / "img_align_celeba" / "img_align_celeba")
    (root / "list_attr_celeba.csv").write_text("image_id,x\n")
    src = celeba.locate_images(root)
    assert src.kind == "dir" and src.path == root / "img_align_celeba" / "img_align_celeba"
    assert sorted(src.names) == list(range(1, 11))
    rec = celeba.preprocess(root, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json", n_train=2, n_test=1)
    assert rec["n_train"] == 2 and rec["train_files"]["ranges"] == [[1, 1], [3, 3]]


# --- the zip input -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_zip(fixture_dir, tmp_path_factory) -> Path:
    z = tmp_path_factory.mktemp("zip") / "img_align_celeba.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("img_align_celeba/", "")
        for f in sorted(fixture_dir.iterdir()):
            zf.write(f, f"img_align_celeba/{f.name}")
    return z


def test_zip_input_matches_folder_input(fixture_dir, fixture_zip, tmp_path):
    rec = celeba.preprocess(fixture_zip, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                            n_train=3, n_test=2, verify_md5=False, threads=2)
    assert rec["source"]["kind"] == "zip"
    assert rec["source"]["zip"] == {"size": fixture_zip.stat().st_size, "md5": file_digest(fixture_zip, "md5"),
                                    "md5_verified": False}
    assert rec["files_skipped"] == 4
    np.testing.assert_array_equal(np.load(tmp_path / "tr.npy"), _expected(fixture_dir, [1, 3, 7]))
    np.testing.assert_array_equal(np.load(tmp_path / "te.npy"), _expected(fixture_dir, [8, 9]))


def test_wrong_zip_fails_the_size_and_md5_checks_with_a_clear_message(fixture_zip, tmp_path, monkeypatch):
    with pytest.raises(DataIntegrityError) as err:
        celeba.preprocess(fixture_zip, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                          n_train=1, n_test=1)
    msg = str(err.value)
    assert "1,443,490,838 bytes" in msg and celeba.ZIP_MD5 in msg and "verify_md5" in msg and str(fixture_zip) in msg
    # same size as the official file but other content: the MD5 comparison must catch it
    monkeypatch.setattr(celeba, "ZIP_SIZE", fixture_zip.stat().st_size)
    with pytest.raises(DataIntegrityError, match=f"MD5 mismatch \\(expected {celeba.ZIP_MD5}, got "
                                                 f"{file_digest(fixture_zip, 'md5')}"):
        celeba.verify_zip(fixture_zip, verify_md5=True)
    assert not (tmp_path / "tr.npy").exists()


# --- the official partition -------------------------------------------------------------------
def test_official_split_uses_partitions_0_and_2(fixture_dir, tmp_path):
    part = tmp_path / "list_eval_partition.txt"
    codes = {1: 0, 2: 0, 3: 1, 4: 0, 5: 2, 6: 2, 7: 0, 8: 1, 9: 2, 10: 2}
    part.write_text("".join(f"{k:06d}.jpg {v}\n" for k, v in codes.items()))
    with pytest.raises(DataIntegrityError, match="MD5 mismatch"):  # not the official file
        celeba.preprocess(fixture_dir, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                          n_train=None, n_test=None, split="official", partition_file=part)
    rec = celeba.preprocess(fixture_dir, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                            n_train=None, n_test=None, split="official", partition_file=part, verify_md5=False)
    # partition 0: files 1, 2(bad), 4(bad), 7 ; partition 2: 5(bad), 6(bad), 9, 10
    assert rec["train_files"]["ranges"] == [[1, 1], [7, 7]] and rec["test_files"]["ranges"] == [[9, 10]]
    assert np.load(tmp_path / "tr.npy").shape == (2, 96, 96, 3)
    np.testing.assert_array_equal(np.load(tmp_path / "te.npy"), _expected(fixture_dir, [9, 10]))
    assert rec["partition"]["counts"] == [4, 2, 4] and rec["partition"]["md5_verified"] is False


# --- the stand-in --------------------------------------------------------------------------------
def test_standin_is_deterministic_celeba_format_and_marked(tmp_path):
    a = standin.generate_standin(tmp_path / "a" / "img_align_celeba", 10, seed=3, threads=1,
                                 partition_file=tmp_path / "a" / "list_eval_partition.txt")
    standin.generate_standin(tmp_path / "b" / "img_align_celeba", 10, seed=3, threads=2)
    standin.generate_standin(tmp_path / "c" / "img_align_celeba", 10, seed=4, threads=1)
    names = sorted(p.name for p in (tmp_path / "a" / "img_align_celeba").glob("*.jpg"))
    assert names == [f"{i:06d}.jpg" for i in range(1, 11)]
    for n in names:
        fa = (tmp_path / "a" / "img_align_celeba" / n).read_bytes()
        assert fa == (tmp_path / "b" / "img_align_celeba" / n).read_bytes()  # bitwise, any thread count
        assert fa != (tmp_path / "c" / "img_align_celeba" / n).read_bytes()  # the seed matters
        im = Image.open(io.BytesIO(fa))
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (178, 218)
    marker = json.loads((tmp_path / "a" / "img_align_celeba" / standin.MARKER_NAME).read_text())
    assert marker["standin"] is True and marker["n_images"] == 10 and a["seed"] == 3
    lines = (tmp_path / "a" / "list_eval_partition.txt").read_text().splitlines()
    assert len(lines) == 10 and lines[0] == "000001.jpg 0" and lines[-1] == "000010.jpg 2"
    # faces differ from each other (varied), and a re-run replaces a stand-in folder in place
    arrs = [np.asarray(Image.open(tmp_path / "a" / "img_align_celeba" / n), np.float32) for n in names]
    assert min(np.abs(arrs[i] - arrs[j]).mean() for i in range(10) for j in range(i)) > 10
    standin.generate_standin(tmp_path / "a" / "img_align_celeba", 3, seed=3)
    assert len(list((tmp_path / "a" / "img_align_celeba").glob("*.jpg"))) == 3


def test_standin_refuses_to_overwrite_a_real_folder(fixture_dir):
    with pytest.raises(FileExistsError, match="not a generated stand-in"):
        standin.generate_standin(fixture_dir, 2, seed=0)


def test_standin_is_recognised_by_the_ingestion(tmp_path):
    folder = tmp_path / "si" / "img_align_celeba"
    standin.generate_standin(folder, 6, seed=1, partition_file=tmp_path / "si" / "list_eval_partition.txt")
    rec = celeba.preprocess(tmp_path / "si", tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                            n_train=4, n_test=2)
    assert rec["standin"] is True and "NOT CelebA" in rec["dataset"]
    assert celeba.data_label(tmp_path / "m.json") == "synthetic stand-in, not CelebA"
    # the stand-in's generated partition file has no official MD5: accepted for the stand-in only
    rec = celeba.preprocess(tmp_path / "si", tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json",
                            n_train=None, n_test=None, split="official",
                            partition_file=tmp_path / "si" / "list_eval_partition.txt")
    assert rec["n_train"] + rec["n_test"] <= 6 and rec["partition"]["md5_verified"] is False


def test_the_reports_face_source_is_the_users_path_or_the_stand_ins_folder_in_the_project(
        fixture_dir, tmp_path, monkeypatch):
    """The data table names CelebA by the path the user gave (resolved), and the stand-in by the
    folder the pipeline drew it into, relative to the project: never the machine's own path."""
    from klvae.report.e3 import data_table

    monkeypatch.chdir(tmp_path)
    standin.generate_standin(Path("results/p/data/standin/img_align_celeba"), 6, seed=1)
    rec = celeba.preprocess("results/p/data/standin", "tr.npy", "te.npy", "m.json", n_train=4, n_test=2)
    assert rec["source"]["path"] == str(tmp_path / "results/p/data/standin")  # kept in the manifest
    table = data_table(rec)
    assert "`results/p/data/standin/img_align_celeba` (dir)" in table and str(tmp_path) not in table
    rec = celeba.preprocess(fixture_dir, "tr.npy", "te.npy", "m.json", n_train=3, n_test=2)
    assert f"`{Path(fixture_dir).resolve()}` (dir)" in data_table(rec)


# --- the memmap stream (keras.utils.PyDataset, backend-neutral) ------------------------------------
def test_memmap_stream_is_float32_in_unit_range_and_a_seeded_permutation(tmp_path):
    from klvae.data.stream import ImageBatches, _RowReader, epoch_order, memmap_row_reader

    x = np.random.default_rng(0).integers(0, 256, (50, 96, 96, 3), dtype=np.uint8)
    x[0] = 0
    x[1] = 255
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(memmap_row_reader(mm[10:]), _RowReader)  # pread path, also for row slices

    ds = ImageBatches(mm, batch_size=16, shuffle=True, seed=5, epochs=2)
    assert ds.steps_per_epoch == 4 and len(ds) == 8  # ceil(50 / 16) batches per epoch, epochs back to back
    first = ds[0]
    assert first.dtype == np.float32 and first.shape == (16, 96, 96, 3)
    assert ds[3].shape == (2, 96, 96, 3)  # an epoch's last batch is short; batches never straddle epochs
    e1, e2 = np.concatenate([ds[i] for i in range(4)]), np.concatenate([ds[i] for i in range(4, 8)])
    assert e1.min() == 0.0 and e1.max() == 1.0 and np.all((e1 >= 0.0) & (e1 <= 1.0))
    # every image exactly once per epoch, scaled by 1/255, in the order epoch_order(n, seed, k) gives
    np.testing.assert_array_equal(e1, x[epoch_order(50, 5, 0)].astype(np.float32) * np.float32(1 / 255))
    np.testing.assert_array_equal(e2, x[epoch_order(50, 5, 1)].astype(np.float32) * np.float32(1 / 255))
    assert sorted(epoch_order(50, 5, 0)) == list(range(50)) and not np.array_equal(e1, e2)
    # a pure function of (seed, epoch, batch): a resumed run (start_epoch=1) sees epoch 2's batches;
    # reading batches in any order gives the same arrays
    resumed = ImageBatches(mm, 16, shuffle=True, seed=5, epochs=2, start_epoch=1)
    assert len(resumed) == 4
    np.testing.assert_array_equal(np.concatenate([resumed[i] for i in (3, 2, 1, 0)][::-1]), e2)
    np.testing.assert_array_equal(ImageBatches(mm, 16, shuffle=True, seed=5)[0], first)
    assert not np.array_equal(ImageBatches(mm, 16, shuffle=True, seed=6)[0], first)
    # the memmap path and the in-RAM path give the same batches
    np.testing.assert_array_equal(np.concatenate(list(ImageBatches(mm[5:45], 16, True, seed=2))),
                                  np.concatenate(list(ImageBatches(np.asarray(x[5:45]), 16, True, seed=2))))
    ordered = np.concatenate(list(ImageBatches(mm, 16)))
    np.testing.assert_allclose(ordered, x.astype(np.float32) / 255.0, rtol=0, atol=1e-7)
    with pytest.raises(IndexError, match="batch 8 outside"):
        ds[8]
    with pytest.raises(ValueError, match="start_epoch 2 outside"):
        ImageBatches(mm, 16, epochs=2, start_epoch=2)


def test_kaggle_partition_csv_is_read_and_checked_by_its_counts(tmp_path):
    part = tmp_path / "list_eval_partition.csv"
    part.write_text("image_id,partition\n000001.jpg,0\n000002.jpg,1\n000003.jpg,2\n")
    with pytest.raises(DataIntegrityError, match=r"counts \(1, 1, 1\) are not CelebA's"):
        celeba.read_partition(part)
    codes, rec = celeba.read_partition(part, verify_md5=False)
    assert codes == {1: 0, 2: 1, 3: 2} and rec["counts"] == [1, 1, 1]
    bad = tmp_path / "bad.txt"
    bad.write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(DataIntegrityError, match="line 2"):
        celeba.read_partition(bad, verify_md5=False)


def test_draft_never_and_always_skip_the_check_and_say_so(fixture_dir, tmp_path):
    """draft="never" decodes at full size, "always" at half size (Image.draft), neither samples
    the check; "always" gives other pixels than the full decode (the reason "auto" checks)."""
    out = {}
    for mode in ("never", "always"):
        d = tmp_path / mode
        d.mkdir()
        celeba.preprocess(fixture_dir, d / "tr.npy", d / "te.npy", d / "m.json", n_train=3, n_test=2, threads=1,
                          draft=mode)
        check = json.loads((d / "m.json").read_text())["draft_check"]
        assert check == {"used": mode == "always", "note": f"draft={mode!r} (no check)"}
        out[mode] = np.load(d / "tr.npy")
    np.testing.assert_array_equal(out["never"], _expected(fixture_dir, [1, 3, 7]))
    assert not np.array_equal(out["always"], out["never"])
