"""The backend study (workflow/rules/study.smk): per-job backend, shared init, Welch table,
KL decomposition, study bundle and report section. Fast tests; the one that trains is marked
``pipeline``."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import QUICK, QUICK_TARGETS, REPO, run_snakemake, seed_raw_data
from klvae.legacy import migrate_csv

ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _python(code: str, backend: str, timeout: int = 300) -> str:
    """Run ``code`` in a fresh Python with ``KERAS_BACKEND=backend``; its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], env={**ENV, "KERAS_BACKEND": backend}, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


# ----------------------------------------------------------------------------------------------
# The backend of a job


def test_select_keras_backend_refuses_a_switch_after_keras_is_imported():
    import keras

    from klvae.backend_select import select_keras_backend

    active = keras.backend.backend()
    other = "jax" if active != "jax" else "tensorflow"
    assert select_keras_backend(None) is None and select_keras_backend("") is None
    assert select_keras_backend(active) == active
    with pytest.raises(RuntimeError, match=f"already imported in this process with the '{active}' backend, so the "
                                           f"'{other}' backend cannot be selected"):
        select_keras_backend(other)
    with pytest.raises(ValueError, match="unknown Keras backend 'mxnet'; expected one of tensorflow, jax, torch"):
        select_keras_backend("mxnet")


def test_call_backend_runs_the_function_on_the_rules_backend(tmp_path):
    """call_backend.py with params.keras_backend=jax, in a process whose KERAS_BACKEND is tensorflow:
    the library function (klvae.io:write_text) runs, and Keras comes up on JAX."""
    out = tmp_path / "out.txt"
    code = f"""
import runpy, sys, types
class Named(dict):
    def __getattr__(self, k): return self[k]
smk = types.SimpleNamespace(
    params=Named(func="klvae.io:write_text", keras_backend="jax", kwargs={{"text": "hello"}}),
    input=Named(), output=Named(path={str(out)!r}), log=[{str(tmp_path / 'job.log')!r}], rule="fake", threads=1,
    wildcards=Named())
runpy.run_path({str(REPO / 'workflow/scripts/call_backend.py')!r}, init_globals={{"snakemake": smk}})
import os, keras
print(os.environ["KERAS_BACKEND"], keras.backend.backend())
"""
    assert _python(code, "tensorflow").split()[-2:] == ["jax", "jax"]
    assert out.read_text() == "hello"
    assert "[fake] klvae.io:write_text(path, text)" in (tmp_path / "job.log").read_text()


def test_shared_init_weights_load_identically_on_jax(tmp_path):
    """One .weights.h5 written on TensorFlow; loaded on TensorFlow and on JAX (separate processes),
    every encoder/decoder array and the sampling state are bitwise equal."""
    init = tmp_path / "s3.weights.h5"
    dump = ("from klvae.experiments import backend_study as s\n"
            "from klvae.models.mlp import build_mlp_vae\n"
            "v = build_mlp_vae(0.0, seed=3, intermediate_dim=16)\n"
            f"v.load_weights({str(init)!r})\n"
            "s.save_weights_state(v, {out!r})\n")
    _python(f"from klvae.experiments.e1 import init_weights\ninit_weights({str(init)!r}, seed=3, intermediate_dim=16)\n"
            + dump.format(out=str(tmp_path / "tf.npz")), "tensorflow")
    _python(dump.format(out=str(tmp_path / "jax.npz")), "jax")
    with np.load(tmp_path / "tf.npz") as a, np.load(tmp_path / "jax.npz") as b:
        assert sorted(a.files) == sorted(b.files) and len(a.files) == 11  # 3 + 2 dense layers x 2 + seed state
        for k in a.files:
            if k == "seed_generator_state":  # each backend keeps it in its own integer type (int64, uint32)
                assert a[k].tolist() == b[k].tolist() == [3, 0]
            else:
                assert a[k].dtype == b[k].dtype == np.float32 and np.array_equal(a[k], b[k]), k
        assert np.abs(a["encoder/0"]).max() > 0  # real weights, not zeros


# ----------------------------------------------------------------------------------------------
# Numbers


def test_kl_decomposition_hand_computed():
    from klvae.experiments.backend_study import kl_decomposition

    mu = np.array([[1.0, 2.0], [0.0, 0.0]])
    lv = np.array([[0.0, math.log(4.0)], [0.0, 0.0]])
    d = kl_decomposition(mu, lv)
    # image 1: 1/2 (1 + 4) = 2.5 and 1/2 ((1 - 1 - 0) + (4 - 1 - log 4)); image 2: 0 and 0; mean over 2 images
    assert d["kl_mean_part"] == pytest.approx(1.25)
    assert d["kl_variance_part"] == pytest.approx(0.25 * (3 - math.log(4.0)))
    assert d["kl_sum"] == pytest.approx(1.25 + 0.25 * (3 - math.log(4.0)))
    assert d["z_mean_sd"] == pytest.approx([0.5, 1.0])
    assert d["z_log_var_median"] == pytest.approx([0.0, 0.5 * math.log(4.0)])
    assert d["sigma_median"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="must be equal 2-D shapes"):
        kl_decomposition(mu, lv[:, :1])


def test_kl_decomposition_adds_up_to_the_loss_kl_of_a_tiny_model():
    from klvae.experiments.backend_study import kl_decomposition, loss_kl
    from klvae.models.mlp import build_mlp_vae
    from klvae.seeding import set_global_seed

    set_global_seed(5, threads=1)
    vae = build_mlp_vae(0.0, intermediate_dim=8, seed=5)
    x = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    z_mean, z_log_var = vae.encoder.predict(x, verbose=0)
    parts = kl_decomposition(z_mean * 30, z_log_var - 5)  # a spread-out code with small sigma, as at c = 0
    kl = loss_kl(z_mean * 30, z_log_var - 5)
    assert parts["kl_mean_part"] > 10 * parts["kl_variance_part"] > 0
    assert parts["kl_sum"] == pytest.approx(kl, rel=1e-5)


def _runs(values: dict) -> pd.DataFrame:
    rows = []
    for (backend, c), xs in values.items():
        for seed, x in enumerate(xs, start=1):
            rows.append({"backend": backend, "seed": seed, "c": c, "loss": x})
    return pd.DataFrame(rows)


def test_welch_rows_hand_computed():
    from klvae.experiments.backend_study import welch_rows

    runs = _runs({("tensorflow", 0.0): [1.0, 2.0, 3.0], ("jax", 0.0): [4.0, 6.0],
                  ("tensorflow", 1.0): [10.0, 10.1, 9.9], ("jax", 1.0): [0.0, 0.1, -0.1]})
    rows = {r["c"]: r for r in welch_rows(runs, quantities=("loss",), post_values={(0.0, "loss"): 5.5})}
    r = rows[0.0]
    # means 2 and 5, sample variances 1 and 2: se^2 = 1/3 + 2/2 = 4/3, Welch df = (4/3)^2 / ((1/3)^2/2 + 1^2/1) = 32/19
    half = stats.t.ppf(0.975, 32 / 19) * math.sqrt(4 / 3)
    assert (r["mean_tensorflow"], r["sd_tensorflow"], r["n_tensorflow"]) == (2.0, 1.0, 3)
    assert (r["mean_jax"], r["sd_jax"], r["n_jax"]) == (5.0, pytest.approx(math.sqrt(2)), 2)
    assert r["difference"] == -3.0
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(-3 - half), pytest.approx(-3 + half))
    assert r["differ"] == "no"  # the interval (-9.3, 3.3) holds 0
    # prediction intervals: 2 +- t(2, .975) * 1 * sqrt(4/3) = [-2.97, 6.97]; 5 +- t(1, .975) * sqrt(2) * sqrt(3/2)
    pi_tf = stats.t.ppf(0.975, 2) * math.sqrt(4 / 3)
    assert (r["pi_low_tensorflow"], r["pi_high_tensorflow"]) == (pytest.approx(2 - pi_tf), pytest.approx(2 + pi_tf))
    assert r["post_inside_tensorflow"] == "yes" and r["post_inside_jax"] == "yes"
    r = rows[1.0]
    # difference 10 with sds 0.1 / 0.1, n 3 / 3: se = 0.1 * sqrt(2/3), df 4
    half = stats.t.ppf(0.975, 4) * 0.1 * math.sqrt(2 / 3)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(10 - half), pytest.approx(10 + half))
    assert r["differ"] == "yes" and r["post_inside_jax"] == "n/a" and math.isnan(r["post"])


def test_welch_rows_need_two_runs_per_backend():
    from klvae.experiments.backend_study import welch_rows

    (r,) = welch_rows(_runs({("tensorflow", 0.02): [1.0], ("jax", 0.02): [2.0, 3.0]}), quantities=("loss",))
    assert r["differ"] == "n/a" and math.isnan(r["ci_low"]) and math.isnan(r["sd_tensorflow"])


# ----------------------------------------------------------------------------------------------
# A synthetic finished study: tables, figure, bundle, report section


def _fake_study(results: Path, seeds=(1, 2, 3)) -> list[Path]:
    """Per-run files as study_train/study_evaluate write them: at c = 0 the KL is almost all mean part and
    JAX's is half of TF's; at c = 0.02 sigma is tiny; at c = 1 the backends agree."""
    from klvae.io import write_json, write_rows

    rng = np.random.default_rng(1)
    run_dir = results / "study/backend"
    for b in ("tensorflow", "jax"):
        for s in seeds:
            for c in (0.0, 0.02, 1.0):
                d = run_dir / b / f"s{s}" / f"c{c:g}"
                kl = {0.0: 500.0 if b == "tensorflow" else 260.0, 0.02: 26.0, 1.0: 6.1}[c] + rng.normal(0, 1)
                var_part = {0.0: 22.0, 0.02: 7.0, 1.0: 3.0}[c]
                loss = {0.0: 138.4 if b == "tensorflow" else 140.0, 0.02: 141.0, 1.0: 151.0}[c] + rng.normal(0, 0.1)
                train = loss - 1.5 + rng.normal(0, 0.1)
                write_json(d / "metrics.json", {"c": c, "seed": s, "backend": b, "epochs": 3, "batch_size": 128,
                                                "n_train": 60000, "n_test": 10000, "loss": loss,
                                                "reconstruction_loss": loss - c * kl, "kl_loss": kl})
                write_json(d / "timing.json", {"backend": b, "seed": s, "c": c,
                                               "epoch_seconds": [6.0, 4.5, 4.7], "total_seconds": 15.2, "threads": 1})
                lv = {0.0: -21.5, 0.02: -8.3, 1.0: -2.0}[c]
                write_json(d / "latent.json", {
                    "backend": b, "seed": s, "c": c, "epochs": 3, "n_test": 10000,
                    "kl_mean_part": kl - var_part, "kl_variance_part": var_part, "kl_sum": kl,
                    "z_mean_sd": [20.0, 11.0] if c == 0 else [4.0, 4.0],
                    "z_log_var_median": [lv, lv], "z_log_var_median_all": lv, "sigma_median": math.exp(lv / 2),
                    "kl_loss_fn": kl, "kl_evaluate": kl, "final_loss_training": loss, "final_loss_evaluated": loss,
                    "final_train_loss": train})
                write_rows(d / "epochs.csv", [{"backend": b, "seed": s, "c": c, "epoch": e,
                                               "train_loss": train + 10 / e, "train_reconstruction_loss": 0,
                                               "train_kl_loss": 0, "loss": loss + 8 / e,
                                               "reconstruction_loss": 0, "kl_loss": kl} for e in (1, 2, 3)])
                (d / "history.csv").write_text("epoch,kl_loss,loss,reconstruction_loss\n1,1,1,1\n")
                (d / "final.weights.npz").write_bytes(b"not packed")
    return sorted(run_dir.glob("*/s*/c*"))


def _finish_fake_study(results: Path) -> None:
    from klvae.experiments.backend_study import collect, record
    from klvae.figures.study import loss_curves

    runs = _fake_study(results)
    study = results / "study/backend"
    collect([str(r / "latent.json") for r in runs], [str(r / "metrics.json") for r in runs],
            str(study / "tables/runs.csv"), str(study / "tables/backends.csv"), str(study / "tables/latent.csv"),
            ["tensorflow", "jax"])
    loss_curves([str(r / "epochs.csv") for r in runs], str(study / "figures/losses.png"), ["tensorflow", "jax"])
    bench = results / "benchmarks/study_train"
    bench.mkdir(parents=True)
    (bench / "jax_s1_c0.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n200.0\t0:03:20\t900\t190.0\n")
    record(str(study / "run.json"), str(study / "config.yaml"), {"profile": "backend_study", "seed": 1},
           str(results / "benchmarks"), str(REPO), {"backends": ["tensorflow", "jax"], "epochs": 3})


def test_collect_writes_the_welch_table_and_the_latent_evidence(tmp_path):
    _finish_fake_study(tmp_path)
    welch = pd.read_csv(tmp_path / "study/backend/tables/backends.csv")
    assert len(welch) == 3 * 5  # c x quantities
    row = welch[(welch["c"] == 0) & (welch["quantity"] == "kl_loss")].iloc[0]
    assert row["differ"] == "yes" and row["difference"] == pytest.approx(240, abs=5)
    assert row["post"] == 506.82 and row["post_inside_tensorflow"] == "no"  # 500 +- a few: the post is outside
    latent = pd.read_csv(tmp_path / "study/backend/tables/latent.csv")
    tf0 = latent[(latent["c"] == 0) & (latent["backend"] == "tensorflow")].iloc[0]
    assert tf0["n"] == 3 and tf0["mean_share"] == pytest.approx(478 / 500, abs=0.01) and tf0["z_mean_sd"] == 15.5
    run = json.loads((tmp_path / "study/backend/run.json").read_text())
    assert run["cpu_seconds"] == 190.0 and run["rule_times"][0]["rule"] == "study_train"
    assert (tmp_path / "study/backend/figures/losses.png").read_bytes()[:4] == b"\x89PNG"


def _expand_section(build: Path, variables: dict) -> str:
    from klvae.report.render import expand_shortcodes

    for qmd in (REPO / "report").glob("_backend_study*.qmd"):  # the section and the prose it may include
        (build / qmd.name).write_text(qmd.read_text())
    made_by = {"made_by": {"study_table": "(rule `study_table`)", "study_figure": "(rule `study_figure`)"}}
    return expand_shortcodes(build / "_backend_study.qmd", {**variables, **made_by})


def test_section_from_a_verified_study_bundle_and_when_not_run(tmp_path):
    from klvae.bundle.core import BundleError
    from klvae.bundle.study import create_study_bundle, read_study_bundle
    from klvae.report.study import choose_source, write_study

    results, bundles, gen = tmp_path / "results/backend_study", tmp_path / "bundles", tmp_path / "build/_generated"
    this_run = tmp_path / "results/default"  # another profile's run finds the study in the study's own folder
    # not run: no bundle, no results
    assert choose_source("auto", bundles, results) == ("none", None)
    assert choose_source("auto", bundles, this_run, others=[results]) == ("none", None)
    write_study(str(gen / "backend_study.md"), str(gen / "study_backends.md"), str(gen / "study_latent.md"),
                str(gen / "v.yml"), "none",
                settings={"coefficients": [0.02, 0, 1], "seeds": [1, 2, 3], "backends": ["tensorflow", "jax"],
                          "epochs": 40, "n_train": 60000, "n_test": 10000})
    text = _expand_section(tmp_path / "build", yaml.safe_load((gen / "v.yml").read_text()))
    assert "The backend study has not been run" in text and "`make backend-study`" in text
    # without numbers no hypothesis verdicts and no "n/a" sentences: the section says what to run
    assert "n/a" not in text and "## Hypotheses" not in text and "{{<" not in text
    assert "$c$ = 0, 0.02, 1" in text and "with seeds 1, 2, 3 (3 per backend)" in text  # the planned design

    _finish_fake_study(results)
    # this checkout's results, before any bundle: the section names their folder
    values = write_study(str(gen / "backend_study.md"), str(gen / "study_backends.md"), str(gen / "study_latent.md"),
                         str(gen / "v.yml"), "results", str(results), figure=[str(tmp_path / "fig.png")])
    assert (values["status"], values["results_dir"]) == ("results", f"`{results.as_posix()}/study/backend/`")
    text = _expand_section(tmp_path / "build", yaml.safe_load((gen / "v.yml").read_text()))
    assert (f"Source of the numbers below: this checkout's study results (`{results.as_posix()}/study/backend/`, from "
            "`make backend-study`).") in " ".join(text.split())
    assert "committed study bundle" not in text and "{{<" not in text
    assert choose_source("auto", bundles, results) == ("results", str(results))
    assert choose_source("auto", bundles, this_run, others=[results]) == ("results", str(results))
    assert choose_source("results", bundles, this_run, others=[results]) == ("results", str(this_run))
    made = create_study_bundle(results, out_dir=bundles)
    with tarfile.open(made["path"]) as tar:
        names = tar.getnames()
    assert names[0] == "MANIFEST.json" and "study/backend/tables/backends.csv" in names
    assert not [n for n in names if "weights" in n or n.endswith(".npz")]
    assert "benchmarks/study_train/jax_s1_c0.tsv" in names  # named relative to the study run's folder
    assert Path(made["path"] + ".sha256").read_text().split()[0] == made["sha256"]

    kind, path = choose_source("auto", bundles, results)
    assert (kind, path) == ("bundle", made["path"])  # the committed bundle comes first
    values = write_study(str(gen / "backend_study.md"), str(gen / "study_backends.md"), str(gen / "study_latent.md"),
                         str(gen / "v.yml"), kind, path, figure=[str(tmp_path / "fig.png")])
    assert values["status"] == "bundle" and values["n_seeds"] == 3
    _, _, info = read_study_bundle(made["path"])
    assert (values["bundle"], values["bundle_members"], values["manifest_sha256"]) == (
        f"`bundles/{Path(made['path']).name}`", info["members"], f"`{info['manifest_sha256'][:16]}…`")
    assert (values["h1_verdict"], values["h2a_verdict"], values["h3_verdict"], values["control_verdict"]) == \
        ("supported", "supported", "refuted", "agree")
    assert values["s_per_epoch"] == "tensorflow 4.7 s, jax 4.7 s"
    text = _expand_section(tmp_path / "build", yaml.safe_load((gen / "v.yml").read_text()))
    assert "{{<" not in text and "n/a" not in text
    assert "#tbl-study-backends" in text and "figures/study/backend_losses.png" in text
    # the tables' bodies come from here, their captions from the qmd, right after them
    for label, first in (("tbl-study-backends", "| c | quantity | tensorflow | jax |"),
                         ("tbl-study-latent", "| c | backend | KL |")):
        assert re.search(re.escape(first) + r".*\n(\|.*\n)+\n+: [^\n]*\{#" + label + r"\}", text), label
    assert "the difference tensorflow − jax with its 95 % Welch interval" in text
    assert "{#tbl-" not in (gen / "study_backends.md").read_text() + (gen / "study_latent.md").read_text()
    assert text.index("Source of the numbers below: the committed study bundle") < text.index("#tbl-study-backends")
    assert (f"Source of the numbers below: the committed study bundle `bundles/{Path(made['path']).name}` "
            f"({info['members']} files, each verified against its manifest, SHA-256 `{info['manifest_sha256'][:16]}…`; "
            f"packed {values['packed']}).") in " ".join(text.split())
    assert info["created_utc"].startswith(values["packed"][:10]) and "this checkout's study results" not in text
    assert (tmp_path / "fig.png").read_bytes() == (results / "study/backend/figures/losses.png").read_bytes()

    # one changed byte in a member: refused before anything is read
    raw = Path(made["path"]).read_bytes()
    with tarfile.open(made["path"]) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    name = "study/backend/tables/backends.csv"
    members[name] = members[name].replace(b"yes", b"no ", 1)
    with tarfile.open(made["path"], "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert Path(made["path"]).read_bytes() != raw
    with pytest.raises(BundleError, match="member 'study/backend/tables/backends.csv' has SHA-256"):
        choose_source("auto", bundles, results)


# ----------------------------------------------------------------------------------------------
# The workflow


def test_dry_run_of_the_study_lists_both_backends_training_jobs(tmp_path):
    proc = run_snakemake(tmp_path, "backend_study", "-n", timeout=300)
    out = proc.stdout + proc.stderr
    for backend in ("tensorflow", "jax"):
        for s in (1, 2):
            for c in ("0.02", "1"):
                assert f"{QUICK}/study/backend/{backend}/s{s}/c{c}/metrics.json" in out
    assert out.count("rule study_train:") == 8 and out.count("rule study_init_weights:") == 2
    report = run_snakemake(tmp_path, QUICK_TARGETS[0], "-n", timeout=300)
    assert "rule report_study:" in report.stdout and "rule study_train:" not in report.stdout


@pytest.mark.pipeline
def test_quick_backend_study_runs_and_packs(tmp_path):
    """The quick settings (2 seeds, 2 epochs, 1,000 images, both backends) end to end, then a study bundle."""
    from klvae.bundle.study import create_study_bundle
    from klvae.report.study import write_study

    seed_raw_data(tmp_path)
    run_snakemake(tmp_path, "backend_study", timeout=3600)
    study = tmp_path / QUICK / "study/backend"
    welch = pd.read_csv(study / "tables/backends.csv")
    assert set(welch["c"]) == {0.02, 1.0} and (welch[["n_tensorflow", "n_jax"]] == 2).all().all()
    for latent in study.glob("*/s*/c*/latent.json"):
        r = json.loads(latent.read_text())
        assert r["final_loss_evaluated"] == pytest.approx(r["final_loss_training"], rel=1e-6)
        assert r["kl_sum"] == pytest.approx(r["kl_evaluate"], rel=1e-4)
    assert not list(study.glob("*/s*/c*/epochs"))  # per-epoch weights are temporary
    made = create_study_bundle(tmp_path / QUICK, out_dir=tmp_path / "bundles")
    gen = tmp_path / "gen"
    values = write_study(str(gen / "a.md"), str(gen / "b.md"), str(gen / "c.md"), str(gen / "v.yml"), "bundle",
                         made["path"], figure=str(gen / "fig.png"))
    assert values["n_seeds"] == 2 and values["epochs"] == 2


def test_the_committed_study_judges_e1_single_runs_of_its_setting(tmp_path):
    """The committed study bundle gives E1's scorecard a same-backend spread per claim (only for
    a run of the study's E1 setting), and a note on what the study found there."""
    from klvae.bundle.study import find_study_bundle
    from klvae.report import e1 as report_e1
    from klvae.report.study import read_source, study_spreads

    bundle = find_study_bundle(REPO / "bundles")
    assert bundle is not None, "no committed study bundle under bundles/"
    contents, _ = read_source("bundle", str(bundle))
    where = "the backend study"
    from klvae.config import validate_config
    from klvae.registry import config_schema

    def e1_of(profile):  # the profile's e1 section as the workflow sees it (schema defaults filled)
        config = yaml.safe_load((REPO / "config" / f"{profile}.yaml").read_text())
        validate_config(config, config_schema())
        return config["e1"]

    default, quick = e1_of("default"), e1_of("quick")
    assert study_spreads(contents, where, quick) == []  # 2 epochs on 3,000 images: not the study's setting
    rows = {(r["id"], r["backend"]): r for r in study_spreads(contents, where, default)}
    welch = pd.read_csv(io.BytesIO(migrate_csv("backends.csv", contents["study/backend/tables/backends.csv"])))
    kl0 = welch[(welch["c"] == 0) & (welch["quantity"] == "kl_loss")].iloc[0]
    row = rows[("e1-c0-kl", "tensorflow")]
    assert (row["mean"], row["sd"], row["n"]) == (kl0["mean_tensorflow"], kl0["sd_tensorflow"], kl0["n_tensorflow"])
    assert row["source"] == "the backend study"  # as the caller names it
    assert {i for i, _ in rows} == {f"e1-c{c}-{q}" for c in ("0", "0.02", "1") for q in ("loss", "rec", "kl")}
    # one TensorFlow run of the default setting at c = 0 with the post's KL + 300 nats: inside the study's spread,
    # which is wider than the KL itself (sd 306 nats on a mean of 527): inconclusive, it does not reproduce run to run
    spreads = tmp_path / "study_spreads.csv"
    pd.DataFrame(list(rows.values())).to_csv(spreads, index=False)
    table = tmp_path / "e1_losses.csv"
    pd.DataFrame([{"c": 0.0, "loss": 138.35, "reconstruction_loss": 138.35, "kl_loss": 811.2,
                   "loss_sd": np.nan, "reconstruction_loss_sd": np.nan, "kl_loss_sd": np.nan, "replicates": 1,
                   "epochs": 40, "n_train": 60000, "n_test": 10000}]).to_csv(table, index=False)
    part = tmp_path / "scorecard_e1.csv"
    tolerances = config_schema()  # the base schema plus each experiment's settings and tolerances
    tol = {k: v["default"] for k, v in tolerances["properties"]["scorecard"]["properties"].items() if "default" in v}
    report_e1.write_e1_scorecard(str(part), str(table), tol, "default", "tensorflow", str(spreads))
    got = pd.read_csv(part, keep_default_na=False).set_index("id").loc["e1-c0-kl"]
    assert got["verdict"] == "inconclusive", got.to_dict()
    assert got["basis"].startswith("prediction interval, single run ± spread of n = 3 runs of the same setting on "
                                   "tensorflow from the backend study")
    assert got["basis_kind"] == "the backend study" and float(got["rel_width"]) > 50
    assert got["note"].startswith(f"does not reproduce run to run (sd {kl0['sd_tensorflow']:,.0f}, n = 3 runs from "
                                  "the backend study")
    assert "backend study (n = 3 seeds per backend, shared initial weights): the backends do not differ" in got["note"]
