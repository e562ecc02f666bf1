"""Stand-in generation and CelebA preprocessing in parallel: same bytes for any worker count.

The paper profile draws 180,000 stand-in faces and preprocesses them with ``threads:
workflow.cores`` (16 on the GPU machine). The work is split into chunks of file numbers and
each worker is a pure function of its chunk, so the files, arrays and the data part of the
manifest must not depend on the number of workers -- checked here with sets large enough to
span several chunks per worker (and, for preprocessing, with bad files among them).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from klvae.data import celeba, standin
from klvae.data.integrity import file_digest

N = 40  # several chunks per worker for 1, 2 and 3 workers
TIMING_KEYS = {"threads", "seconds", "images_per_second"}  # the only marker fields allowed to differ


@pytest.fixture(scope="module")
def standin_sets(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("standin_parallel")
    folders = {}
    for t in (1, 2, 3):
        folders[t] = root / f"t{t}" / "img_align_celeba"
        standin.generate_standin(folders[t], N, seed=5, threads=t)
    return folders


def test_standin_files_are_bitwise_identical_for_1_2_3_workers(standin_sets):
    names = sorted(p.name for p in standin_sets[1].glob("*.jpg"))
    assert names == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    for t in (2, 3):
        assert sorted(p.name for p in standin_sets[t].glob("*.jpg")) == names
        for n in names:
            assert (standin_sets[1] / n).read_bytes() == (standin_sets[t] / n).read_bytes(), (t, n)
    m1 = json.loads((standin_sets[1] / standin.MARKER_NAME).read_text())
    m2 = json.loads((standin_sets[2] / standin.MARKER_NAME).read_text())
    assert m1["threads"] == 1 and m2["threads"] == 2 and m1["n_images"] == m2["n_images"] == N
    assert ({k: v for k, v in m1.items() if k not in TIMING_KEYS}
            == {k: v for k, v in m2.items() if k not in TIMING_KEYS})


def test_standin_worker_chunks_cover_every_file_once(tmp_path):
    # more workers than images, and a count that does not divide into the chunks
    standin.generate_standin(tmp_path / "a" / "img_align_celeba", 7, seed=2, threads=4)
    standin.generate_standin(tmp_path / "b" / "img_align_celeba", 7, seed=2, threads=1)
    for i in range(1, 8):
        n = f"{i:06d}.jpg"
        assert ((tmp_path / "a" / "img_align_celeba" / n).read_bytes()
                == (tmp_path / "b" / "img_align_celeba" / n).read_bytes())
    assert len(list((tmp_path / "a" / "img_align_celeba").glob("*.jpg"))) == 7


@pytest.fixture(scope="module")
def damaged_set(standin_sets, tmp_path_factory) -> Path:
    """The 40 stand-in faces plus bad files in the middle of chunks (skipped, in file order)."""
    folder = tmp_path_factory.mktemp("damaged") / "img_align_celeba"
    folder.mkdir()
    for p in standin_sets[1].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "000004.jpg").write_bytes(b"")  # empty
    data = (folder / "000013.jpg").read_bytes()
    (folder / "000013.jpg").write_bytes(data[: len(data) // 3])  # truncated
    (folder / "000027.jpg").write_text("not a jpeg\n")  # not an image
    return folder


def _data_part(manifest: dict) -> dict:
    m = {k: v for k, v in manifest.items() if k not in ("timing", "source", "standin_marker")}
    m["outputs"] = {k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in manifest["outputs"].items()}
    return m


@pytest.mark.parametrize("threads", [2, 3])
def test_preprocess_gives_identical_bytes_for_1_and_n_workers(damaged_set, tmp_path, threads):
    out = {}
    for t in (1, threads):
        d = tmp_path / f"t{t}"
        rec = celeba.preprocess(damaged_set, d / "train.npy", d / "test.npy", d / "manifest.json",
                                n_train=25, n_test=10, threads=t)
        assert rec["timing"]["processes"] == t
        out[t] = (d, rec)
    (d1, r1), (dn, rn) = out[1], out[threads]
    assert (d1 / "train.npy").read_bytes() == (dn / "train.npy").read_bytes()
    assert (d1 / "test.npy").read_bytes() == (dn / "test.npy").read_bytes()
    assert _data_part(r1) == _data_part(rn)
    assert r1["files_skipped"] == 3 and [s["file"] for s in r1["skipped"]] == ["000004.jpg", "000013.jpg", "000027.jpg"]
    assert r1["n_train"] == 25 and r1["n_test"] == 10 and r1["files_examined"] == 38
    assert r1["outputs"]["train_npy"]["sha256"] == file_digest(dn / "train.npy")


def test_preprocess_from_zip_in_parallel_matches_the_folder(damaged_set, tmp_path):
    z = tmp_path / "repacked.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_STORED) as zf:
        for p in sorted(damaged_set.glob("*.jpg")):
            zf.write(p, f"img_align_celeba/{p.name}")
    celeba.preprocess(damaged_set, tmp_path / "f_tr.npy", tmp_path / "f_te.npy", tmp_path / "f.json",
                      n_train=25, n_test=10, threads=1)
    celeba.preprocess(z, tmp_path / "z_tr.npy", tmp_path / "z_te.npy", tmp_path / "z.json",
                      n_train=25, n_test=10, verify_md5=False, threads=2)
    assert (tmp_path / "f_tr.npy").read_bytes() == (tmp_path / "z_tr.npy").read_bytes()
    assert (tmp_path / "f_te.npy").read_bytes() == (tmp_path / "z_te.npy").read_bytes()


@pytest.mark.parametrize("n, workers, expected", [(1, 1, 1), (40, 1, 10), (40, 2, 5), (40, 16, 1),
                                                   (180_000, 16, celeba._CHUNK), (5000, 16, 79)])
def test_chunk_size_balances_workers_and_is_capped(n, workers, expected):
    assert celeba._chunk_size(n, workers) == expected
