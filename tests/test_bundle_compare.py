"""Two bundles side by side (``python -m klvae.bundle diff``) and per-experiment bundles joined into one
(``python -m klvae.bundle merge``), on small bundles made by ``create_bundle`` from hand-written results
trees in the pipeline's table formats (no training)."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from klvae.bundle import compare as bc
from klvae.bundle import core as kb
from klvae.bundle.__main__ import _main as bundle_cli
from test_bundle import _flip_one_byte, rewrite

E1_LOSSES = ("c,loss,reconstruction_loss,kl_loss,loss_sd,reconstruction_loss_sd,kl_loss_sd,replicates,"
             "post_loss,post_reconstruction,post_kl,epochs,n_train,n_test\n"
             "0.0,140.0,139.9,25.0,0.4,0.4,0.2,3,143.7,143.7,30.1,2,3000,1000\n"
             "0.5,150.0,135.0,15.0,0.5,0.45,0.1,3,152.9,137.6,15.3,2,3000,1000\n")
E2_METRICS = ("strategy,post,z_dim,epochs,n_train,n_test,test_loss,test_kl_loss,s_per_epoch_median\n"
              "end_layer,post IV,2,1,1024,512,180.5,5.25,1.5\n"
              "gradient_tape,post VI,2,1,1024,512,180.5,5.25,2.5\n")
E3_METRICS = "model,loss,reconstruction_loss,kl_loss,c,mse,n_test\nvae,0.55,0.54,0.01,1.0,0.02,64\n" \
             "ae,0.5,0.5,30.0,0.0,0.01,64\n"
SCORECARD = ("id,experiment,claim,compared,post_value,ours,sd,n,interval,basis,verdict,unit,profile,note\n"
             "e1_loss_c0.5,E1,post III loss,test c=0.5,152.9,150.00,0.50,3,147.52 to 152.48,"
             "\"prediction interval, n = 3\",differs,nats,quick,\n"
             "e2_runs_end_layer,E2,post IV runs,Keras 3,yes,yes,,1,,as the post,reproduced,,quick,\n"
             "e3_mse,E3,post IX mse,vae,0.02,0.02,,1,0.01 to 0.03,\"tolerance ±2 %, single run\",reproduced,,quick,\n")
SCORECARD_VARS = {"scorecard": {"n_claims": 3, "n_reproduced": 2, "n_differs": 1, "n_not_comparable": 0,
                                "n_paper_only": 0, "n_judged": 3,
                                "by_experiment": {"E1": {"n_claims": 1, "n_reproduced": 0, "n_differs": 1}}}}
CONFIG = {"profile": "quick", "seed": 1, "threads": {"train": 1},
          "data": {"mnist": {"source": "pypi"}, "celeba": {"path": None, "split": "post"}},
          "e1": {"coefficients": [0, 0.5], "epochs": 2}, "e2": {"epochs": 1}, "e3": {"epochs": 1},
          "scorecard": {"loss_rel": 0.02}, "report": {"renderer": "pandoc"}}


def _run(commit="0123456789ab-dirty", host="gpu-node-7", backend="jax", gpu="NVIDIA H100") -> dict:
    return {"recorded_utc": "2025-01-02T03:04:05Z", "host": host, "profile": "quick", "keras_backend": backend,
            "git_commit": commit, "hardware": {"CPU": "Test CPU", "GPU": gpu, "OS": "Linux 6"}}


def fake_run(root: Path, experiments=kb.EXPERIMENTS, run: dict | None = None, config: dict | None = None,
             tables: dict | None = None, old_layout: bool = False) -> Path:
    """A finished run's results/<profile>/ under ``root`` holding only ``experiments``' outputs (every report
    fragment is there, as in a finished run); ``tables`` replaces file contents by name; ``old_layout``:
    its benchmark files under benchmarks/<profile>/, as before each profile had its own folder."""
    run = run or _run()
    files = {
        "report/generated/run.json": json.dumps(run), "report/generated/config.yaml": yaml.safe_dump(config or CONFIG),
        "report/generated/scorecard.vars.yml": yaml.safe_dump(SCORECARD_VARS), "tables/scorecard.csv": SCORECARD,
        "data/mnist_provenance.json": '{"source": "pypi"}',
        "benchmarks/report/scorecard.tsv": "s\n0.5\n",
    }
    per_exp = {
        "e1": {"tables/e1_losses.csv": E1_LOSSES, "e1/r0/c0.5/metrics.json": '{"loss": 150.0}',
               "e1/r0/c0.5/history.csv": "epoch,loss\n1,200\n", "figures/e1/scatter_panel.png": b"\x89PNG e1",
               "benchmarks/e1_train/r0_c0.5.tsv": "s\n3.0\n"},
        "e2": {"tables/e2_metrics.csv": E2_METRICS, "e2/z2/end_layer/metrics.json": '{"strategy": "end_layer"}',
               "figures/e2/latent_panel.png": b"\x89PNG e2"},
        "e3": {"tables/e3_metrics.csv": E3_METRICS, "e3/vae/history.csv": "epoch,loss\n1,0.6\n",
               "data/faces/manifest.json": '{"n_train": 256}', "figures/e3/random_faces.png": b"\x89PNG e3"},
    }
    for e in experiments:
        files.update(per_exp[e])
    for rel in kb.required_files():
        files.setdefault(rel, f"fragment {rel} of the run on {run['host']}\n")
    files.update(tables or {})
    if old_layout:
        files = {re.sub(r"^benchmarks/", f"benchmarks/{run['profile']}/", k): v for k, v in files.items()}
    r = root / "results" / run["profile"]
    for rel, data in files.items():
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        (r / rel).write_bytes(data if isinstance(data, bytes) else data.encode())
    return r


def make_bundle(tmp_path: Path, tag: str, **kw) -> Path:
    results = fake_run(tmp_path / tag, **kw)
    return Path(kb.create_bundle(results, out_dir=tmp_path / "bundles" / tag,
                                 created_utc="2025-01-02T04:00:00Z")["path"])


def _row(rows, table, row, metric) -> dict:
    return next(r for r in rows if (r["table"], r["row"], r["metric"]) == (table, row, metric))


# ----------------------------------------------------------------------------------------------
# which experiment a file belongs to


@pytest.mark.parametrize("rel, owner", [
    ("e1/r0/c0.5/metrics.json", "e1"), ("tables/e1_losses.csv", "e1"), ("figures/e2/latent_panel.png", "e2"),
    ("report/generated/e1.md", "e1"), ("report/generated/e1.vars.yml", "e1"), ("report/generated/e2_timing.md", "e2"),
    ("benchmarks/e3_train/vae.tsv", "e3"), ("benchmarks/e1_table.tsv", "e1"), ("data/faces/manifest.json", "e3"),
    ("report/generated/run.json", None), ("report/generated/scorecard.md", None), ("tables/scorecard.csv", None),
    ("data/mnist_provenance.json", None), ("benchmarks/report/methods.tsv", None), ("benchmarks/report/e1.tsv", None),
    ("report/generated/methods.vars.yml", None), ("tables/e10_x.csv", None),
])
def test_experiment_of(rel, owner):
    assert kb.experiment_of(rel) == owner


def test_experiments_in_and_names():
    assert kb.experiments_in(["e2/z2/a/metrics.json", "tables/e1_losses.csv", "figures/e3/x.png",
                              "report/generated/e3.md"]) == ["e1", "e2"]
    assert kb.bundle_name(_run(), ["e1", "e2", "e3"]) == "klvae-quick-jax-0123456-dirty"
    assert kb.bundle_name(_run(), ["e1"]) == "klvae-quick-jax-0123456-dirty-e1"
    assert kb.bundle_name({"profile": "paper", "keras_backend": ["jax", "jax", "tensorflow"],
                           "git_commit": ["aaaaaaa1111", "bbbbbbb2222"]}, ["e1", "e3"]) == \
        "klvae-paper-jax+tensorflow-aaaaaaa+bbbbbbb-e1+e3"


def test_new_bundles_record_experiments_and_provenance(tmp_path):
    manifest, _, _ = kb.read_bundle(make_bundle(tmp_path, "full"))
    assert manifest["experiments"] == ["e1", "e2", "e3"]
    assert [p["experiment"] for p in manifest["provenance"]] == ["e1", "e2", "e3"]
    assert manifest["provenance"][2]["hardware"]["GPU"] == "NVIDIA H100"
    assert manifest["provenance"][0]["config"]["seed"] == 1 and manifest["provenance"][0]["run_commit"] == \
        "0123456789ab-dirty"
    only_e2, _, _ = kb.read_bundle(make_bundle(tmp_path, "e2", experiments=("e2",)))
    assert only_e2["experiments"] == ["e2"] and only_e2["name"] == "klvae-quick-jax-0123456-dirty-e2"


# ----------------------------------------------------------------------------------------------
# diff


def test_diff_of_a_bundle_with_itself_is_all_zero(tmp_path):
    a = make_bundle(tmp_path, "a")
    rows = bc.diff_rows(a, a)
    assert {r["table"] for r in rows} == {"e1_losses", "e2_metrics", "e3_metrics", "scorecard", "scorecard counts"}
    assert {r["status"] for r in rows} == {"in interval", "n = 1", "same"}
    assert all(r["diff"] == 0 for r in rows if r["status"] != "same")
    # E1: mean 150.0, sd 0.5, n = 3: 150 ± t(2, 0.975) · 0.5 · sqrt(1 + 1/3) = 150 ± 4.302653 · 0.577350
    #     = 150 ± 2.484138
    loss = _row(rows, "e1_losses", "c=0.5", "loss")
    assert loss["a_lo"] == pytest.approx(147.515862, abs=1e-6) and loss["a_hi"] == pytest.approx(152.484138, abs=1e-6)
    assert (loss["a"], loss["b"], loss["a_n"], loss["status"]) == ("150.0", "150.0", 3, "in interval")
    assert _row(rows, "e1_losses", "c=0.5", "epochs")["status"] == "n = 1"
    assert not [r for r in rows if r["metric"] in ("post_loss", "loss_sd", "replicates", "post", "claim")]
    assert _row(rows, "e2_metrics", "z_dim=2 strategy=gradient_tape", "test_loss")["a"] == "180.5"
    ours = _row(rows, "scorecard", "e1_loss_c0.5", "ours")
    assert ours["status"] == "in interval" and ours["a_hi"] == pytest.approx(152.484138, abs=1e-6)
    assert _row(rows, "scorecard", "e2_runs_end_layer", "ours")["status"] == "same"  # "yes" compared as text
    assert _row(rows, "scorecard counts", "E1", "n_differs")["a"] == 1


def test_diff_finds_the_one_changed_metric(tmp_path):
    a = make_bundle(tmp_path, "a")
    b = make_bundle(tmp_path, "b", tables={"tables/e1_losses.csv": E1_LOSSES.replace("0.5,150.0,", "0.5,153.0,")})
    rows = bc.diff_rows(a, b)
    changed = [r for r in rows if r["status"] not in ("same", "in interval", "n = 1") or r["diff"] not in (0, None)]
    assert len(changed) == 1
    r = changed[0]
    assert (r["table"], r["row"], r["metric"], r["a"], r["b"]) == ("e1_losses", "c=0.5", "loss", "150.0",
                                                                  "153.0")
    assert r["diff"] == pytest.approx(3.0) and r["status"] == "outside interval"  # 153 > 152.484
    assert len(rows) == len(bc.diff_rows(a, a))
    inside = make_bundle(tmp_path, "c", tables={"tables/e1_losses.csv": E1_LOSSES.replace("0.5,150.0,", "0.5,152.0,")})
    assert _row(bc.diff_rows(a, inside), "e1_losses", "c=0.5", "loss")["status"] == "in interval"


def test_diff_of_an_old_scorecard_against_one_with_the_new_columns(tmp_path):
    """A bundle made before the scorecard had rel_width, basis_kind and nonnegative, beside one with
    them: the same claims are compared (ours, verdict), the added columns are not listed."""
    lines = SCORECARD.splitlines()
    header = lines[0].replace("interval,basis,verdict,unit,", "interval,rel_width,basis,basis_kind,verdict,unit,"
                              "nonnegative,")
    added = [("1.65", "runs of the setting", "yes"), ("", "", "no"), ("50.00", "fixed tolerance", "yes")]
    body = []
    for line, (rel, kind, nonneg) in zip(lines[1:], added, strict=True):
        row = next(csv.reader([line]))
        row = row[:9] + [rel] + row[9:10] + [kind] + row[10:12] + [nonneg] + row[12:]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(row)
        body.append(out.getvalue())
    new = "\n".join([header, *body]) + "\n"
    assert list(csv.DictReader(io.StringIO(new)))[0]["basis_kind"] == "runs of the setting"
    a = make_bundle(tmp_path, "a")
    b = make_bundle(tmp_path, "b", tables={"tables/scorecard.csv": new})
    rows = [r for r in bc.diff_rows(a, b) if r["table"] == "scorecard"]
    assert {r["metric"] for r in rows} == {"ours", "verdict"}
    assert {r["status"] for r in rows} <= {"in interval", "n = 1", "same"}
    assert {"rel_width", "basis_kind", "nonnegative"} <= bc.SKIP_COLUMNS


def test_compare_value_text_numbers_and_missing():
    def v(x, sd=None, n=None):
        return {"value": x, "sd": sd, "n": n}
    assert bc.compare_value(v("differs"), v("reproduced"))["status"] == "different"
    assert bc.compare_value(v("True"), v("True"))["status"] == "same"
    assert bc.compare_value(v("nan"), v("nan"))["status"] == "same"
    assert bc.compare_value(v("1.5"), v("2"))["diff"] == 0.5 and bc.compare_value(v("1.5"), v("2"))["status"] == "n = 1"
    assert bc.compare_value(v("1.5", sd=0.1, n=1), v("1.5"))["status"] == "n = 1"
    assert bc.compare_value(None, v("1"))["status"] == "only in B" and bc.compare_value(v("1"), None)["status"] == \
        "only in A"
    # 10 ± t(1, 0.975) · 1 · sqrt(1 + 1/2) = 10 ± 12.706205 · 1.224745 = 10 ± 15.561859
    r = bc.compare_value(v("10", sd=1.0, n=2), v("22.7"))
    assert r["a_hi"] == pytest.approx(25.561859, abs=1e-5) and r["status"] == "in interval"
    assert bc.compare_value(v("10", sd=1.0, n=2), v("25.6"))["status"] == "outside interval"


def test_diff_cli_prints_both_bundles_and_writes_csv(tmp_path, capsys):
    a = make_bundle(tmp_path, "a")
    b = make_bundle(tmp_path, "b", run=_run(commit="fedcba9876543", host="laptop", backend="tensorflow"),
                    tables={"tables/e1_losses.csv": E1_LOSSES.replace("0.5,150.0,", "0.5,153.0,")})
    out = tmp_path / "diff.csv"
    assert bundle_cli(["diff", str(a), str(b), "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "A: klvae-quick-jax-0123456-dirty.tar.gz: profile quick, backend jax, commit 0123456789ab-dirty, " \
           "host gpu-node-7, experiments E1, E2, E3" in text
    assert "B: klvae-quick-tensorflow-fedcba9.tar.gz: profile quick, backend tensorflow, commit fedcba9876543" in text
    assert re.search(r"c=0\.5\s+loss\s+150\.0\s+153\.0\s+3\s+outside interval \[147\.516, 152\.484\], "
                     r"n = 3", text)
    with open(out) as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == len(bc.diff_rows(a, b)) and tuple(written[0]) == bc.DIFF_COLUMNS
    assert [w["status"] for w in written if w["diff"] not in ("", "0.0")] == ["outside interval"]


# ----------------------------------------------------------------------------------------------
# merge


def test_merge_of_an_e1_and_an_e2_bundle(tmp_path):
    e1 = make_bundle(tmp_path, "e1", experiments=("e1",), run=_run(commit="aaaaaaa1111", host="node-a"))
    cfg2 = {**CONFIG, "e1": {"coefficients": [0], "epochs": 99}, "threads": {"train": 4}}
    e2 = make_bundle(tmp_path, "e2", experiments=("e2",), config=cfg2,
                     run=_run(commit="bbbbbbb2222", host="node-b", gpu="NVIDIA H200"))
    r = bc.merge_bundles(None, [e2, e1], out_dir=tmp_path / "m", created_utc="2025-01-03T00:00:00Z")
    assert Path(r["path"]).name == "klvae-quick-jax-aaaaaaa+bbbbbbb-e1+e2.tar.gz"
    v = kb.verify_bundle(r["path"])  # verified on read like any bundle
    manifest, contents, _ = kb.read_bundle(r["path"])
    assert manifest["experiments"] == ["e1", "e2"] and v["members"] == len(contents)
    assert {"tables/e1_losses.csv", "e1/r0/c0.5/metrics.json", "tables/e2_metrics.csv",
            "e2/z2/end_layer/metrics.json", "figures/e1/scatter_panel.png", "tables/scorecard.csv"} <= set(contents)
    assert not [p for p in contents if kb.experiment_of(p) == "e3"]
    runs = {json.loads(contents[kb.RUN_RECORD])["host"]}  # shared files from the first experiment's run
    assert runs == {"node-a"} and not [p for p in contents if p.startswith("report/") and p not in
                                       (kb.RUN_RECORD, kb.RUN_CONFIG)]  # data only: no report fragments
    prov = {p["experiment"]: p for p in manifest["provenance"]}
    assert (prov["e1"]["run_commit"], prov["e1"]["run_host"], prov["e1"]["bundle"]) == ("aaaaaaa1111", "node-a",
                                                                                        e1.name)
    assert (prov["e2"]["run_commit"], prov["e2"]["hardware"]["GPU"]) == ("bbbbbbb2222", "NVIDIA H200")
    assert prov["e2"]["config"]["threads"] == {"train": 4} and prov["e1"]["config"]["threads"] == {"train": 1}
    config = yaml.safe_load(contents["report/generated/config.yaml"])
    assert config["e1"]["epochs"] == 2 and config["seed"] == 1  # E1's section from the E1 run
    assert manifest["merged"]["shared_from"] == e1.name and "report/generated/run.json" in \
        manifest["merged"]["shared_differing"]
    assert r["complete"] is False and r["missing"] == ["e3/ (no E3 outputs)"]
    # ... and with an E3 run: all three, complete
    e3 = make_bundle(tmp_path, "e3", experiments=("e3",), run=_run(commit="ccccccc3333", host="node-c"))
    full = bc.merge_bundles(None, [r["path"], e3], out_dir=tmp_path / "m")
    assert Path(full["path"]).name == "klvae-quick-jax-aaaaaaa+bbbbbbb+ccccccc.tar.gz" and full["complete"]
    m3, _, _ = kb.read_bundle(full["path"])
    assert [(p["experiment"], p["run_host"], p["bundle"]) for p in m3["provenance"]] == [
        ("e1", "node-a", e1.name), ("e2", "node-b", e2.name), ("e3", "node-c", e3.name)]
    rows = bc.diff_rows(make_bundle(tmp_path, "whole"), full["path"])
    assert all(r["diff"] == 0 for r in rows if r["diff"] is not None) and {r["status"] for r in rows} == \
        {"in interval", "n = 1", "same"}


def test_merge_names_the_benchmarks_of_an_older_bundle_as_todays(tmp_path):
    """A bundle made when every profile wrote into results/ keeps its benchmark files under
    benchmarks/<profile>/; merged with today's, they are renamed benchmarks/<rule>..., and each
    experiment's still comes from its own run."""
    old = make_bundle(tmp_path, "old", experiments=("e1",), old_layout=True)
    assert "benchmarks/quick/e1_train/r0_c0.5.tsv" in kb.verify_bundle(old)["paths"]  # still verifies
    new = make_bundle(tmp_path, "new", experiments=("e2", "e3"), run=_run(commit="ccccccc3333"))
    merged = bc.merge_bundles(None, [new, old], out_dir=tmp_path / "m")
    paths = kb.verify_bundle(merged["path"])["paths"]
    assert "benchmarks/e1_train/r0_c0.5.tsv" in paths and "benchmarks/report/scorecard.tsv" in paths
    assert not [p for p in paths if p.startswith("benchmarks/quick/")]
    assert kb.benchmarks_folder(paths, "quick") == "benchmarks"


def test_merge_refuses_two_bundles_of_one_experiment(tmp_path):
    a = make_bundle(tmp_path, "a", experiments=("e1",))
    b = make_bundle(tmp_path, "b", experiments=("e1", "e3"), run=_run(commit="fedcba9876543"))
    with pytest.raises(kb.BundleError) as err:
        bc.merge_bundles(tmp_path / "m.tar.gz", [a, b])
    assert str(err.value).startswith(f"{a} and {b} both hold E1: a merged bundle takes each experiment from one run")
    assert not (tmp_path / "m.tar.gz").exists()


@pytest.mark.parametrize("change, message", [
    (dict(config={**CONFIG, "seed": 2}), "profile mismatch: config key 'seed' is 1 in {a} but 2 in {b}"),
    (dict(config={**CONFIG, "data": {**CONFIG["data"], "mnist": {"source": "url"}}}),
     "profile mismatch: config key 'data.mnist.source' is 'pypi' in {a} but 'url' in {b}"),
    (dict(run={**_run(), "profile": "default"}), "profile mismatch: {a} has profile 'quick', {b} has 'default'"),
])
def test_merge_refuses_a_profile_mismatch(tmp_path, change, message):
    a = make_bundle(tmp_path, "a", experiments=("e1",))
    b = make_bundle(tmp_path, "b", experiments=("e2",), **change)
    with pytest.raises(kb.BundleError) as err:
        bc.merge_bundles(tmp_path / "m.tar.gz", [a, b])
    assert str(err.value).startswith(message.format(a=a, b=b))


def test_merge_refuses_an_unfinished_member(tmp_path):
    a = make_bundle(tmp_path, "a", experiments=("e1",))
    results = fake_run(tmp_path / "p", experiments=("e2",))
    (results / kb.RUN_RECORD).unlink()  # rule run_record writes it once every result is there
    b = kb.create_bundle(results, out_dir=tmp_path / "p", partial=True)["path"]
    with pytest.raises(kb.BundleError, match=r"an unfinished run \(report/generated/run\.json missing\)"):
        bc.merge_bundles(tmp_path / "m.tar.gz", [a, b])


def test_a_tampered_member_is_refused_by_diff_and_merge(tmp_path, capsys):
    a = make_bundle(tmp_path, "a", experiments=("e1",))
    b = make_bundle(tmp_path, "b", experiments=("e2",))
    bad = rewrite(a, tmp_path / "bad.tar.gz", change=_flip_one_byte)
    message = r"bad\.tar\.gz: refused: member 'tables/e1_losses\.csv' has SHA-256"
    with pytest.raises(kb.BundleError, match=message):
        bc.diff_rows(b, bad)
    with pytest.raises(kb.BundleError, match=message):
        bc.merge_bundles(tmp_path / "m.tar.gz", [bad, b])
    assert bundle_cli(["merge", str(tmp_path / "m.tar.gz"), str(b), str(bad)]) == 1
    assert bundle_cli(["diff", str(bad), str(b)]) == 1
    assert "member 'tables/e1_losses.csv' has SHA-256" in capsys.readouterr().err
    assert not (tmp_path / "m.tar.gz").exists()


def test_merge_cli_writes_a_verifiable_bundle(tmp_path, capsys):
    a = make_bundle(tmp_path, "a", experiments=("e1", "e2"))
    b = make_bundle(tmp_path, "b", experiments=("e3",), run=_run(commit="ccccccc3333", host="node-c"))
    (tmp_path / "out").mkdir()
    assert bundle_cli(["merge", str(tmp_path / "out"), str(a), str(b)]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "out" / "klvae-quick-jax-0123456-dirty+ccccccc.tar.gz"
    assert f">>> merged bundle: {path}" in text and "E3: " + b.name + " (commit ccccccc3333" in text
    assert f"make report BUNDLE={path}" in text
    capsys.readouterr()
    assert bundle_cli(["verify", str(path)]) == 0
    with tarfile.open(path, "r:gz") as tar:
        assert tar.getnames()[0] == kb.MANIFEST_NAME
    rows = bc.diff_rows(a, path)  # the E1 and E2 numbers unchanged, E3's only in the merged bundle
    assert [r for r in rows if r["status"] == "only in B"] == [r for r in rows if r["table"] == "e3_metrics"] != []
    assert len(rows) == len(bc.diff_rows(a, a)) + 12 and all(r["diff"] in (0, None) for r in rows)
    assert "commit 0123456789ab-dirty + ccccccc3333" in capsys.readouterr().out


def _paper_member(tmp_path: Path, exp: str, config_edit=None, **run_changes) -> Path:
    """An experiment's bundle of a paper run made in parts (klvae.bundle.part.create_experiment_bundle's
    run record: parts, training code, versions), with the profile's config as used."""
    from conftest import REPO
    from klvae import paper

    config = paper.load_config(REPO / "config" / "paper.yaml")
    if config_edit:
        config_edit(config)
    commit = {"e1": "aaaaaaa1111", "e2": "bbbbbbb2222", "e3": "ccccccc3333"}[exp]
    run = {**_run(commit=commit, host=f"node-{exp}", backend="tensorflow", gpu="none"), "profile": "paper",
           "versions": {"keras": "3.15.0", "tensorflow": "2.20.0"},
           "training_code": {"mnist_canonical": "m1", f"{exp}_train": f"t-{exp}"},
           "parts": [{"part": f"{exp}-a", "commit": commit, "host": f"node-{exp}", "cpu": "Test CPU",
                      "cpu_s": 100.0, "wall_s": 60.0, "resumed": 0}]}
    run.update(run_changes)
    return make_bundle(tmp_path, exp + str(len(list(tmp_path.glob("*")))), experiments=(exp,), run=run,
                       config=config)


def test_merge_of_experiments_made_in_parts_lists_every_part_and_refuses_two_runs(tmp_path):
    """A paper run made in parts: merging its experiments' bundles keeps every part in the run record
    and the manifest's provenance, and refuses members that are not one run -- a config that is not
    config/paper.yaml's, another package version, other training code for a rule both ran."""
    e1, e2 = _paper_member(tmp_path, "e1"), _paper_member(tmp_path, "e2")
    r = bc.merge_bundles(None, [e2, e1], out_dir=tmp_path / "m")
    manifest, contents, _ = kb.read_bundle(r["path"])
    run = json.loads(contents[kb.RUN_RECORD])
    assert [(p["part"], p["host"]) for p in run["parts"]] == [("e1-a", "node-e1"), ("e2-a", "node-e2")]
    assert run["assembled"] == {"experiments": ["e1", "e2"], "from_parts": ["e1-a", "e2-a"]}
    assert {p["experiment"]: [q["part"] for q in p["parts"]] for p in manifest["provenance"]} == {
        "e1": ["e1-a"], "e2": ["e2-a"]}

    def epochs(c):
        c["e2"]["epochs"] = 36

    for other, message in (
            (_paper_member(tmp_path, "e2", config_edit=epochs),
             r"its config differs from config/paper\.yaml \(1 keys\): e2\.epochs: 37 vs 36"),
            (_paper_member(tmp_path, "e2", versions={"keras": "3.14.0", "tensorflow": "2.20.0"}),
             r"not one run: the version of keras is '3\.15\.0' vs '3\.14\.0'"),
            (_paper_member(tmp_path, "e2", training_code={"mnist_canonical": "m2", "e2_train": "t"}),
             r"not one run: the training code of rule mnist_canonical is 'm1' vs 'm2'"),
            (_paper_member(tmp_path, "e2", keras_backend="jax"),
             r"not one run: the Keras backend is 'tensorflow' vs 'jax'")):
        with pytest.raises(kb.BundleError, match=message):
            bc.merge_bundles(tmp_path / "refused.tar.gz", [e1, other])
        assert not (tmp_path / "refused.tar.gz").exists()
