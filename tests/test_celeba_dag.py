"""Pointing the config at a CelebA-format zip runs the same face DAG on it (no stand-in)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml

from conftest import QUICK, REPO, run_snakemake, seed_raw_data

pytestmark = pytest.mark.pipeline


def _celeba_zip(path, n_good: int = 48):
    from klvae.data import standin

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("img_align_celeba/", "")
        for i in range(1, n_good + 1):
            buf = io.BytesIO()
            standin.draw_face(seed=11, index=i).save(buf, format="JPEG", quality=90)
            data = buf.getvalue()
            if i == 5:
                data = data[: len(data) // 2]  # truncated JPEG
            elif i == 9:
                data = b""  # zero bytes
            elif i == 13:
                data = b"not an image\n"
            zf.writestr(f"img_align_celeba/{i:06d}.jpg", data)
    return path


def test_user_celeba_zip_runs_the_face_branch(tmp_path):
    archive = _celeba_zip(tmp_path / "img_align_celeba.zip")
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    cfg["data"]["celeba"] = {"path": str(archive), "verify_md5": False, "split": "post"}
    cfg["e3"].update({"n_train": 32, "n_test": 8, "batch_size": 16, "epochs": 1})
    config = tmp_path / "celeba.yaml"
    config.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "run"
    work.mkdir()
    seed_raw_data(work)
    targets = [str(QUICK / "figures/e3/random_faces.png"), str(QUICK / "figures/e3/reconstructions.png")]
    run_snakemake(work, *targets, configfile=config)
    manifest = json.loads((work / QUICK / "data/faces/manifest.json").read_text())
    assert manifest["standin"] is False and manifest["data_label"] == "CelebA"
    assert manifest["source"]["kind"] == "zip"
    assert manifest["files_skipped"] == 3
    assert {k for k, n in manifest["skipped_by_reason"].items() if n} == {"truncated", "empty", "not_an_image"}
    assert manifest["n_train"] == 32 and manifest["n_test"] == 8
    assert not (work / QUICK / "data/standin").exists()  # the stand-in was never generated
    for t in targets:
        assert (work / t).read_bytes()[:4] == b"\x89PNG"


def test_missing_celeba_path_is_a_clear_error(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    cfg["data"]["celeba"] = {"path": str(tmp_path / "nowhere.zip")}
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, "-n", configfile=config, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "nowhere.zip" in out and "does not exist" in out and "stand-in" in out
