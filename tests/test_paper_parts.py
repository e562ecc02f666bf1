"""The paper profile in parts (klvae.paper) and part bundles (klvae.bundle.part): targets, estimates
from benchmark files, and a part packed as verified data without weights."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO
from klvae import paper, registry
from klvae.bundle import core as kb
from klvae.bundle import part as kp


@pytest.fixture(scope="module")
def paper_config():
    return paper.load_config(REPO / "config" / "paper.yaml")


def test_e1_part_is_every_replicate_of_every_c(paper_config):
    targets = paper.part_targets("e1", paper_config)
    assert len(targets) == 3 * 8 * 4 and len(set(targets)) == len(targets)
    assert "results/paper/e1/r2/c0.02/grid.npz" in targets and "results/paper/e1/r0/c20/latent.npz" in targets


def test_e2_parts_split_the_ten_trainings_two_per_part(paper_config):
    from klvae.registry import e2

    runs = [e2.part_runs(p, e2.runs(paper_config)) for p in ("e2-a", "e2-b", "e2-c", "e2-d", "e2-e")]
    assert [len(r) for r in runs] == [2, 2, 2, 2, 2]
    assert runs[0] == [(2, paper_config["e2"]["strategies"][0]), (2, paper_config["e2"]["strategies"][1])]
    assert sum(runs, []) == e2.runs(paper_config) and len(set(sum(runs, []))) == 10
    with pytest.raises(KeyError, match="no part 'e4'; the parts: e1, e2-a"):
        paper.part_targets("e4", paper_config)


def _tsv(path, s, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{s}\t0:00:01\t1\t1\t1\t1\t0\t0\t99\t{cpu}\n")


def test_estimate_scales_this_machines_rate_by_the_papers_work(tmp_path, paper_config):
    # results/paper/benchmarks: two E1 trainings at the paper's settings (40 epochs x 60,000 images)
    _tsv(tmp_path / "paper" / "benchmarks" / "e1_train" / "r0_c1.tsv", 200, 190.0)
    _tsv(tmp_path / "paper" / "benchmarks" / "e1_train" / "r0_c2.tsv", 220, 210.0)
    rates = paper.measured_rates(tmp_path)
    assert rates["e1_train"]["n"] == 2
    assert rates["e1_train"]["rate"] == pytest.approx(200.0 / (40 * 60_000))  # the median of 190 and 210
    cpu, missing = paper.estimate("e1", paper_config, rates)
    assert cpu == pytest.approx(24 * 200.0) and missing == ["e1_analyse", "e1_init_weights"]
    rows = {r["part"]: r for r in paper.plan(paper_config, tmp_path)}
    assert rows["e1"]["width"] == 2 and rows["e1"]["hours"] == pytest.approx(24 * 200 / 7200)
    assert rows["e2-a"]["cpu_s"] is None and not rows["e1"]["over_limit"]
    text = paper.format_plan(list(rows.values()))
    assert "e2-timing" in text and "timing: nothing else on the machine" in text


def test_an_e3_model_part_trains_on_both_cores_and_the_plan_times_it_so(tmp_path, paper_config):
    """One face training on one thread keeps one core busy: at the paper's 10 epochs x 170,000
    faces its wall time is its CPU-s, over a part's 2 hours. So each E3 model part runs its
    training on two threads (its own config change), and the plan times it on two cores."""
    # one face VAE measured at 1 epoch x 1,000 faces: 6.1 ms of CPU per image and epoch (as here)
    _tsv(tmp_path / "paper" / "benchmarks" / "e3_train" / "vae.tsv", 6.2, 6.1)
    config = {**paper_config, "e3": {**paper_config["e3"], "epochs": 1, "n_train": 1000}}
    (tmp_path / "paper" / "report" / "generated").mkdir(parents=True)
    (tmp_path / "paper" / "report" / "generated" / "config.yaml").write_text(yaml.safe_dump(config))
    assert paper_config["threads"]["train"] == 1
    for kind in ("vae", "ae"):
        assert paper.part_config(f"e3-{kind}", paper_config)["threads"] == {"train": 2}
    assert paper.part_config("e2-a", paper_config) is paper_config and paper_config["threads"]["train"] == 1
    vae = {r["part"]: r for r in paper.plan(paper_config, tmp_path)}["e3-vae"]
    assert vae["width"] == 2
    assert vae["cpu_s"] == pytest.approx(6.1 / 1000 * 10 * 170_000, rel=1e-3)  # plus unmeasured analyses
    assert vae["hours"] == pytest.approx(vae["cpu_s"] / 2 / 3600) and not vae["over_limit"]  # 1.4 h
    # the same training on one thread: one core, over 2 h, flagged
    one_thread = registry.get("e3").paper_parts[1].width({**paper_config, "threads": {"train": 1}})
    assert one_thread == 1
    slow = {**vae, "width": 1, "hours": vae["cpu_s"] / 3600, "over_limit": vae["cpu_s"] / 3600 > paper.MAX_PART_HOURS}
    assert slow["over_limit"]
    assert "over 2 h: run it again, its training resumes from its epoch checkpoint" in paper.format_plan([slow])


def _run_config(profile_dir, config):
    (profile_dir / "report" / "generated").mkdir(parents=True, exist_ok=True)
    (profile_dir / "report" / "generated" / "config.yaml").write_text(yaml.safe_dump(config))


def test_the_face_data_part_is_estimated_per_image_not_per_job(tmp_path, paper_config):
    """The stand-in and the preprocessing cost per face: measured on a small profile's 18,000 faces
    they scale to the paper's 180,000 (a per-job rate would call the paper's data part 10x cheaper
    than it is). With CelebA named, no stand-in is drawn."""
    small = {**paper_config, "profile": "default",
             "e3": {**paper_config["e3"], "standin_images": 18_000, "n_train": 16_000, "n_test": 2_000}}
    _run_config(tmp_path / "default", small)
    _tsv(tmp_path / "default" / "benchmarks" / "e3_standin.tsv", 48.4, 90.0)  # 5 ms per face
    _tsv(tmp_path / "default" / "benchmarks" / "e3_preprocess.tsv", 10.5, 18.0)  # 1 ms per face
    rates = paper.measured_rates(tmp_path, "paper")
    assert rates["e3_standin"]["unit"] == "CPU-s per image" and rates["e3_standin"]["profiles"] == ["default"]
    assert rates["e3_standin"]["rate"] == pytest.approx(90.0 / 18_000)
    cpu, missing = paper.estimate("e3-data", paper_config, rates)
    assert cpu == pytest.approx(90.0 * 10 + 18.0 * 10) and missing == []
    celeba = {**paper_config, "data": {**paper_config["data"], "celeba": {**paper_config["data"]["celeba"],
                                                                         "path": "img_align_celeba.zip"}}}
    assert paper.estimate("e3-data", celeba, rates) == (pytest.approx(18.0 * 10), [])


def test_a_resumed_training_is_rated_over_its_epochs_after_the_resume(tmp_path, paper_config):
    """A training's benchmark file and log hold its last run only: a VAE that resumed after epoch 2
    of 10 measured 8 epochs' CPU-s. The profile's own measurement outranks another profile's."""
    _run_config(tmp_path / "paper", paper_config)
    _tsv(tmp_path / "paper" / "benchmarks" / "e3_train" / "vae.tsv", 5000, 9600.0)
    log = tmp_path / "paper" / "logs" / "e3_train" / "vae.log"
    log.parent.mkdir(parents=True)
    log.write_text("[checkpoint] resuming after epoch 2 from x\n" + "".join(f"Epoch {e}/10\n" for e in range(3, 11)))
    small = {**paper_config, "profile": "default", "e3": {**paper_config["e3"], "epochs": 1, "n_train": 1000}}
    _run_config(tmp_path / "default", small)
    _tsv(tmp_path / "default" / "benchmarks" / "e3_train" / "vae.tsv", 6.2, 6.1)
    rate = paper.measured_rates(tmp_path, "paper")["e3_train"]
    assert rate["profiles"] == ["paper"] and rate["n"] == 1
    assert rate["rate"] == pytest.approx(9600.0 / (8 * 170_000))  # not over 10 epochs
    assert paper.measured_rates(tmp_path)["e3_train"]["n"] == 2  # no profile named: every one pooled
    cpu, _ = paper.estimate("e3-vae", paper_config, {"e3_train": rate})
    assert cpu == pytest.approx(12_000.0)


def test_a_benchmark_file_reads_as_numbers_and_a_broken_one_as_nothing(tmp_path):
    from klvae.record import benchmark_rows, job_cpu_seconds, resumed_training

    _tsv(tmp_path / "a.tsv", 12.5, 20.25)
    rows = benchmark_rows(tmp_path / "a.tsv")
    assert len(rows) == 1 and rows[0]["s"] == 12.5 and rows[0]["cpu_time"] == 20.25 and rows[0]["max_rss"] == 1.0
    (tmp_path / "b.tsv").write_text("s\tcpu_time\n3.0\t-\n")  # Snakemake writes "-" where it measured nothing
    assert math.isnan(benchmark_rows(tmp_path / "b.tsv")[0]["cpu_time"]) and job_cpu_seconds(tmp_path / "b.tsv") is None
    (tmp_path / "c.tsv").write_bytes(b"\xff\xfe\x00")
    assert benchmark_rows(tmp_path / "c.tsv") == [] and benchmark_rows(tmp_path / "missing.tsv") == []
    assert job_cpu_seconds(tmp_path / "a.tsv") == 20.25
    assert resumed_training(tmp_path / "missing.log") == (None, None)


def test_a_parts_configfile_is_the_profiles_or_its_own_written_beside_its_results(tmp_path, paper_config,
                                                                                   monkeypatch):
    """``make paper-part`` runs Snakemake with ``python -m klvae.paper configfile <part>``: the profile's
    own file for a part that changes nothing, else the part's config, complete and valid."""
    from klvae.config import validate_config

    monkeypatch.chdir(tmp_path)
    assert paper.part_configfile("e2-a", paper_config, "config/paper.yaml") == Path("config/paper.yaml")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert paper._main(["configfile", "e3-ae", "--config", str(REPO / "config" / "paper.yaml")]) == 0
    path = Path(out.getvalue().strip())
    assert path == Path("results/paper/parts/e3-ae.config.yaml") and path.is_file()
    written = validate_config(yaml.safe_load(path.read_text()), registry.config_schema())
    assert written["threads"]["train"] == 2
    assert kb.config_differences(paper_config, written) == ["threads.train: 1 vs 2"]


def _fake_e1_part(root, config):
    for target in paper.part_targets("e1", config):
        rel = target.removeprefix("results/paper/")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".npz"):
            np.savez(path, images=np.zeros((2, 2), np.float32), c=np.float64(1))
        else:
            path.write_text("{}\n" if rel.endswith(".json") else "epoch,c\n1,1\n")
        (path.parent / "model.keras").write_bytes(b"weights")
        (path.parent / "model.keras.ckpt").mkdir(exist_ok=True)
        (path.parent / "model.keras.ckpt" / "state.json").write_text("{}")
        r, c = rel.split("/")[1:3]
        _tsv(root / "benchmarks" / "e1_train" / f"{r}_{c}.tsv", 100, 95.5)
    _tsv(root / "benchmarks" / "e2_train" / "z2_end_layer.tsv", 100, 1.0)  # another experiment's job: left out
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "mnist_provenance.json").write_text('{"source": "pypi"}')
    (root / "data" / "mnist.npz").write_bytes(b"raw")
    (root / "logs" / "e1_train").mkdir(parents=True, exist_ok=True)
    (root / "logs" / "e1_train" / "r1_c0.log").write_text(
        "[checkpoint] resuming after epoch 17 from x\n" + "".join(f"Epoch {e}/40\nloss\n" for e in range(18, 41)))


def test_a_part_bundle_carries_the_data_and_the_record_never_the_weights(tmp_path, paper_config):
    results = tmp_path / "results" / "paper"
    _fake_e1_part(results, paper_config)
    facts = tmp_path / "backend.json"
    facts.write_text(json.dumps({"keras_backend": "tensorflow", "KERAS_BACKEND": "", "accelerators": []}))
    with pytest.raises(kb.BundleError, match="part e1 is not finished: 1 of 96 targets missing"):
        os.replace(results / "e1/r0/c0/grid.npz", tmp_path / "g.npz")
        kp.create_part_bundle("e1", results, tmp_path / "out", REPO / "config" / "paper.yaml", facts)
    os.replace(tmp_path / "g.npz", results / "e1/r0/c0/grid.npz")
    made = kp.create_part_bundle("e1", results, tmp_path / "out", REPO / "config" / "paper.yaml", facts,
                                 created_utc="2026-01-01T00:00:00+00:00")
    manifest, contents, _ = kb.read_bundle(made["path"])  # verified like every bundle
    assert manifest["kind"] == kb.PART_KIND and manifest["experiments"] == ["e1"] and manifest["part"] == "e1"
    names = set(contents)
    assert "e1/r2/c20/grid.npz" in names and "e1/r0/c0/metrics.json" in names
    assert not [n for n in names if n.endswith(".keras") or ".ckpt" in n or n.endswith("mnist.npz")]
    assert "benchmarks/e1_train/r0_c0.tsv" in names and "benchmarks/e2_train/z2_end_layer.tsv" not in names
    with np.load(io.BytesIO(contents["e1/r2/c20/grid.npz"]), allow_pickle=False) as grid:
        assert grid["images"].dtype == np.uint8 and float(grid["c"]) == 1.0  # 8-bit, the other arrays as they were
    record = json.loads(contents["parts/e1/part.json"])
    assert len(record["quantized"]["arrays"]) == 24
    assert record["times"]["jobs"] == 24 and record["times"]["cpu_s"] == pytest.approx(24 * 95.5)
    # 23 epochs after the resume took 95.5 CPU-s: the 17 before it, which no file counts, ~70.6
    assert record["resumed"] == [{"log": "logs/e1_train/r1_c0.log", "after_epoch": 17, "epochs": 40,
                                  "cpu_s_after": 95.5, "cpu_s_before_est": round(95.5 * 17 / 23, 1)}]
    assert record["times"]["cores_busy"] is None  # its wall time spans the pause before the resume
    assert kp.part_summary(record)["cpu_s_before_resume_est"] == round(95.5 * 17 / 23, 1)
    assert set(record["training_code"]) == {"mnist_canonical", "e1_init_weights", "e1_train", "e1_analyse"}
    assert record["run"]["keras_backend"] == "tensorflow" and record["run"]["hardware"]["CPU"]
    assert os.path.basename(made["path"]).startswith("klvae-paper-part-e1-")
    assert (tmp_path / "out" / (os.path.basename(made["path"]) + ".sha256")).is_file()
    # a run bundle's reader refuses a grid outside a part bundle: the allow-lists differ only there
    assert kb.member_kind("e1/r0/c0/grid.npz") == (False, "decoded image grid")
    assert kb.member_kind("e1/r0/c0/grid.npz", part=True)[0]
    with tarfile.open(made["path"]) as tar:
        assert tar.getnames()[0] == kb.MANIFEST_NAME


@pytest.fixture(scope="module")
def paper_rules(tmp_path_factory):
    """Every rule of the paper profile's workflow (parsed, nothing runs): its input and output patterns."""
    from conftest import workflow_rules

    return workflow_rules(tmp_path_factory.mktemp("parse"), "paper")


def test_each_e3_part_stands_alone(paper_rules, paper_config, tmp_path):
    """A rule that loads a face model takes exactly one (wildcard kind) and is the parts' own; E3's
    assembly rules load none, and every file they read is made by another assembly rule or packed
    by one of E3's part bundles -- a model's files by that model's own part."""
    from klvae.registry import e3 as e3_registry

    e3_rules = {name: r for name, r in paper_rules.items() if name.startswith("e3_")}
    loading = {name for name, r in e3_rules.items() if any(f.endswith("model.keras") for f in r["inputs"])}
    assert loading == {"e3_evaluate", "e3_ae_latents", "e3_decode"}
    for name in loading:
        models = [f for f in e3_rules[name]["inputs"] if f.endswith(".keras")]
        assert len(models) == 1 and name in e3_registry.EXPERIMENT.part_rules, (name, models)
    allowed = kp.assembly_rules("e3", list(paper_rules))
    assert allowed == ["e3_ae_latents_table", "e3_ae_random_points", "e3_latent_histogram", "e3_outputs",
                       "e3_random_faces", "e3_reconstructions", "e3_table"]
    assert not [(n, f) for n in allowed for f in paper_rules[n]["inputs"] if f.endswith(".keras")]

    # what each of E3's part bundles would pack, from fake files at every target
    results, prefix = tmp_path / "paper", "results/paper/"
    packed = {}
    for part in (p.name for p in paper.PARTS if p.experiment == "e3"):
        targets = [t.removeprefix(prefix) for t in paper.part_targets(part, paper_config)]
        for rel in targets:
            (results / rel).parent.mkdir(parents=True, exist_ok=True)
            (results / rel).write_text("x")
            if rel.startswith("e3/"):  # the weights beside the run's files: never packed
                (results / rel).with_name("model.keras").write_bytes(b"weights")
        packed[part] = {m for m, _ in kp.part_files(results, "e3", *kp.split_targets("e3", targets))}
    assert {"e3/vae/metrics.json", "e3/vae/decoded_faces.npz"} <= packed["e3-vae"]
    assert not [m for ms in packed.values() for m in ms if m.endswith((".keras", ".npy"))]

    def expanded(files):
        return {f.removeprefix(prefix).replace("{kind}", k) for f in files for k in ("vae", "ae")}

    made = expanded(f for n in allowed for f in paper_rules[n]["outputs"])
    for name in allowed:
        for rel in expanded(paper_rules[name]["inputs"]) - made:
            owner = f"e3-{rel.split('/')[1]}" if rel.startswith("e3/") else None
            where = [owner] if owner else list(packed)
            assert any(rel in packed[p] for p in where), f"{name} reads {rel}, which no part packs ({where})"


def test_an_e3_model_part_packs_its_analyses_with_the_faces_in_8_bits(tmp_path, paper_config):
    """The e3-vae part: the VAE's metrics, history, facts and decoded faces (8-bit), its own jobs'
    benchmark files, never the weights nor the AE's files."""
    results = tmp_path / "results" / "paper"
    rng = np.random.default_rng(0)
    for kind in ("vae", "ae"):
        run = results / "e3" / kind
        run.mkdir(parents=True)
        for name in ("history.csv", "model.json", "metrics.json", *(("latents.json",) if kind == "ae" else ())):
            (run / name).write_text("{}\n" if name.endswith(".json") else "epoch,loss\n1,0.5\n")
        faces = {"random_faces" if kind == "vae" else "ae_points": rng.random((60 if kind == "vae" else 90, 96, 96, 3),
                                                                             dtype=np.float32)}
        np.savez(run / "decoded_faces.npz", **faces, test_faces=rng.random((10, 96, 96, 3), dtype=np.float32),
                 reconstructions=rng.random((10, 96, 96, 3), dtype=np.float32), test_index=np.arange(10),
                 kind=np.str_(kind), z_dim=np.int64(200), seed=np.int64(0), fact=np.float64(0))
        (run / "model.keras").write_bytes(b"weights")
        for rule in ("e3_train", "e3_evaluate", "e3_decode"):
            _tsv(results / "benchmarks" / rule / f"{kind}.tsv", 100, 90.0)
    facts = tmp_path / "backend.json"
    facts.write_text(json.dumps({"keras_backend": "tensorflow", "KERAS_BACKEND": "", "accelerators": []}))
    made = kp.create_part_bundle("e3-vae", results, tmp_path / "out", REPO / "config" / "paper.yaml", facts)
    _, contents, _ = kb.read_bundle(made["path"])
    assert {f"e3/vae/{n}" for n in ("history.csv", "model.json", "metrics.json", "decoded_faces.npz")} <= set(contents)
    assert not [n for n in contents if n.startswith("e3/ae/") or n.endswith((".keras", ".npy"))]
    assert {"benchmarks/e3_evaluate/vae.tsv", "benchmarks/e3_decode/vae.tsv"} <= set(contents)
    assert "benchmarks/e3_decode/ae.tsv" not in contents
    with np.load(io.BytesIO(contents["e3/vae/decoded_faces.npz"]), allow_pickle=False) as d:
        assert {k: d[k].dtype for k in ("random_faces", "test_faces", "reconstructions")} == dict.fromkeys(
            ("random_faces", "test_faces", "reconstructions"), np.uint8)
        assert str(d["kind"]) == "vae" and d["test_index"].tolist() == list(range(10))
    assert made["record"]["quantized"]["arrays"] == ["e3/vae/decoded_faces.npz"]
    assert os.path.getsize(made["path"]) < kp.MAX_PART_BYTES


def _part(name, config, code="abc", backend="tensorflow", versions=None, gpu="none"):
    manifest = {"part": name, "config": f"parts/{name}/config.yaml"}
    contents = {manifest["config"]: yaml.safe_dump(config).encode()}
    record = {"training_code": {"e2_train": code}, "run": {"keras_backend": backend,
                                                          "versions": versions or {"keras": "3.15.0"},
                                                          "hardware": {"GPU": gpu}}}
    return (Path(f"klvae-paper-part-{name}-x.tar.gz"), manifest, contents, record)


def test_parts_of_one_experiment_are_refused_when_they_are_not_one_run(paper_config):
    names = ("e2-a", "e2-b", "e2-c", "e2-d", "e2-e", "e2-timing")
    parts = [_part(n, paper_config) for n in names]
    kp.check_parts("e2", parts, paper_config)  # six parts of one run: accepted
    with pytest.raises(kb.BundleError, match=r"e2: parts e2-c, e2-d, e2-e, e2-timing are not in \(have: e2-a, e2-b\)"):
        kp.check_parts("e2", parts[:2], paper_config)
    with pytest.raises(kb.BundleError, match="part e2-b is there twice"):
        kp.check_parts("e2", parts + [parts[1]], paper_config)
    other = yaml.safe_load(yaml.safe_dump(paper_config))
    other["e2"]["epochs"] = 36
    with pytest.raises(kb.BundleError, match=r"klvae-paper-part-e2-b-x\.tar\.gz: its config differs from the "
                                             r"profile's \(1 keys\): e2\.epochs: 37 vs 36"):
        kp.check_parts("e2", [parts[0], _part("e2-b", other), *parts[2:]], paper_config)
    # an E3 model part must have run with its own change (two threads), and only with it
    e3 = [_part(n, paper.part_config(n, paper_config)) for n in ("e3-data", "e3-vae", "e3-ae", "e3-bench")]
    kp.check_parts("e3", e3, paper_config)
    with pytest.raises(kb.BundleError, match=r"part-e3-vae-x\.tar\.gz: its config differs .*threads\.train: 2 vs 1"):
        kp.check_parts("e3", [e3[0], _part("e3-vae", paper_config), *e3[2:]], paper_config)
    for kw, what in (({"code": "abd"}, "training code differs from klvae-paper-part-e2-a-x.tar.gz's: "
                                       "e2_train: 'abc' vs 'abd'"),
                     ({"backend": "jax"}, "Keras backend differs .*'tensorflow' vs 'jax'"),
                     ({"versions": {"keras": "3.14.0"}}, "package versions differ.*keras: '3.15.0' vs '3.14.0'"),
                     ({"gpu": "NVIDIA H100"}, "accelerator differs .*'none' vs 'NVIDIA H100'")):
        with pytest.raises(kb.BundleError, match=what):
            kp.check_parts("e2", [parts[0], _part("e2-b", paper_config, **kw), *parts[2:]], paper_config)


def _assemble_in(work: Path, experiment: str) -> dict:
    """:func:`klvae.bundle.part.assemble` of ``experiment`` from the committed part bundles, run in
    the new, empty folder ``work`` (its ``results/paper``): nothing but the parts' data is there."""
    work.mkdir()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        return kp.assemble(experiment, REPO / "bundles" / "paper", "results/paper", REPO / "config" / "paper.yaml",
                           cores=2)
    finally:
        os.chdir(cwd)


def _shipped_paper_bundle_with(experiment: str) -> tuple[dict, dict]:
    """The members and run record of the newest paper bundle in ``bundles/`` holding ``experiment``."""
    shipped = [p for p in sorted((REPO / "bundles").glob("klvae-paper-*.tar.gz"))
               if experiment in kb.read_bundle(p)[0]["experiments"]]
    assert shipped, (f"{experiment.upper()}'s parts are committed, but no paper bundle holding it is shipped in "
                     "bundles/")
    contents = kb.read_bundle(shipped[-1])[1]
    return contents, json.loads(contents[kb.RUN_RECORD])


def _assembled_once_all_parts_are_in(work: Path, experiment: str) -> tuple[set[str], dict, Path]:
    """Skips until every part of ``experiment`` is committed under ``bundles/paper/``; then assembles
    it in ``work`` (:func:`_assemble_in`). Returns its parts' names, what the assembly made, and the
    assembled results folder."""
    names = {p.name for p in paper.PARTS if p.experiment == experiment}
    committed = {rec["part"] for _, _, _, rec in kp.part_bundles(experiment, REPO / "bundles" / "paper")}
    if committed != names:
        pytest.skip(f"{experiment.upper()} parts not all committed yet: {sorted(names - committed)} missing")
    return names, _assemble_in(work, experiment), work / "results" / "paper"


def _shipped_as_assembled(work: Path, experiment: str, table: str, names: set[str]) -> None:
    """No weights anywhere under ``work``, and the shipped paper bundle holding ``experiment``
    carries the assembled ``tables/<table>.csv`` byte for byte and lists each of ``names`` among its parts."""
    assert not list(work.rglob("*.keras")) and not list(work.rglob("*.weights.h5"))
    contents, record = _shipped_paper_bundle_with(experiment)
    assert contents[f"tables/{table}.csv"] == (work / "results" / "paper" / "tables" / f"{table}.csv").read_bytes()
    assert names <= {p["part"] for p in record["parts"]}


@pytest.mark.pipeline
def test_every_committed_part_bundle_verifies_and_e1_assembles_from_its_parts_alone(tmp_path, paper_config):
    """The shipped part bundles (bundles/paper/) are data that today's code reads: each verifies, and
    E1's tables and figures are built from its parts in an empty folder, with no weights and no
    training, evaluation or timing job allowed to run."""
    parts = sorted((REPO / "bundles" / "paper").glob("*.tar.gz"))
    if not parts:
        pytest.skip("no part bundle committed")
    for path in parts:
        assert kb.read_bundle(path)[0]["kind"] == kb.PART_KIND
    if not kp.part_bundles("e1", REPO / "bundles" / "paper"):
        pytest.skip("no part of E1 committed")
    work = tmp_path / "work"
    made = _assemble_in(work, "e1")
    assert made["allowed_rules"] == ["e1_loss_curves", "e1_manifold", "e1_manifold_panel", "e1_outputs",
                                     "e1_reference_scatter", "e1_scatter", "e1_scatter_panel", "e1_table"]
    res = work / "results" / "paper"
    import pandas as pd

    table = pd.read_csv(res / "tables" / "e1_losses.csv")
    assert sorted(table["c"]) == sorted(paper_config["e1"]["coefficients"]) and set(table["replicates"]) == {3}
    assert (table["kl_loss_sd"] > 0).all() and (table["loss"] > 0).all()
    for fig in ("scatter_panel.png", "manifold_panel.png", "loss_curves.png"):
        assert (res / "figures" / "e1" / fig).stat().st_size > 10_000
    assert not list(work.rglob("*.keras")) and not list(work.rglob("*.weights.h5"))

    # packed as E1's report bundle: the parts' data and the assembled tables, nothing of E2/E3
    made = kp.create_experiment_bundle("e1", REPO / "bundles" / "paper", res, tmp_path / "out",
                                       REPO / "config" / "paper.yaml")
    assert made["experiments"] == ["e1"] and not made["complete"]
    assert made["missing"] == ["e2/ (no E2 outputs)", "e3/ (no E3 outputs)"]
    parts = made["record"]["parts"]
    assert [p["part"] for p in parts] == ["e1"] and parts[0]["cpu_s"] > 1000 and parts[0]["resumed"] == 0
    assert parts[0]["threads"] == 1  # not in that part's record (packed before it said): its packed config says it
    assert made["record"]["assembled"] == {"experiment": "e1", "from_parts": ["e1"]}
    with pytest.raises(kb.BundleError, match="no complete report bundle"):
        kb.newest_report_bundle(tmp_path / "out")  # what `make read` renders: never an experiment alone

    # the shipped paper bundle's E1 table is exactly what today's code assembles from the shipped parts
    contents, record = _shipped_paper_bundle_with("e1")
    assert contents["tables/e1_losses.csv"] == (res / "tables" / "e1_losses.csv").read_bytes()
    assert [p["part"] for p in record["parts"] if p["part"].split("-")[0] == "e1"] == ["e1"]
    assert record["profile"] == "paper"



@pytest.mark.pipeline
def test_e2_assembles_from_its_committed_parts_alone(tmp_path, paper_config):
    """Once every E2 part is committed: E2's table and figures are built from the parts alone, in an
    empty folder with no weights and only E2's table and figure rules allowed; its table holds all
    ten trainings at the paper's 37 epochs, and the shipped paper bundle holding E2 carries exactly
    that table."""
    work = tmp_path / "work"
    names, made, res = _assembled_once_all_parts_are_in(work, "e2")
    assert made["allowed_rules"] == ["e2_latent", "e2_latent_panel", "e2_loss_curves", "e2_outputs",
                                     "e2_reconstructions", "e2_table"]
    import pandas as pd

    table = pd.read_csv(res / "tables" / "e2_metrics.csv")
    cfg = paper_config["e2"]
    assert sorted(zip(table["z_dim"], table["strategy"], strict=True)) == sorted(
        (z, s) for z in cfg["z_dims"] for s in cfg["strategies"])
    assert set(table["epochs"]) == {37} and (table["test_loss"] > 0).all()
    for fig in ("latent_panel.png", "reconstructions.png", "loss_curves_z2.png", "loss_curves_z12.png"):
        assert (res / "figures" / "e2" / fig).stat().st_size > 10_000
    _shipped_as_assembled(work, "e2", "e2_metrics", names)


@pytest.mark.pipeline
def test_e3_assembles_from_its_committed_parts_alone(tmp_path, paper_config):
    """Once every E3 part is committed: E3's tables and figures are built from the parts alone, in an
    empty folder with no weights and only E3's table and figure rules allowed; both face models
    trained the paper's epochs on its 170,000 faces and were tested on its 10,000, and the shipped
    paper bundle holding E3 carries exactly that table."""
    work = tmp_path / "work"
    names, made, res = _assembled_once_all_parts_are_in(work, "e3")
    assert made["allowed_rules"] == ["e3_ae_latents_table", "e3_ae_random_points", "e3_latent_histogram",
                                     "e3_outputs", "e3_random_faces", "e3_reconstructions", "e3_table"]
    import pandas as pd

    cfg = paper_config["e3"]
    table = pd.read_csv(res / "tables" / "e3_metrics.csv")
    assert sorted(table["model"]) == ["ae", "vae"] and set(table["n_test"]) == {cfg["n_test"]}
    assert json.loads((res / "data" / "faces" / "manifest.json").read_text())["n_train"] == cfg["n_train"]
    for kind in ("vae", "ae"):
        assert len(pd.read_csv(res / "e3" / kind / "history.csv")) == cfg["epochs"]
    for fig in ("random_faces.png", "ae_random_points.png", "reconstructions.png", "ae_latent_histogram.png"):
        assert (res / "figures" / "e3" / fig).stat().st_size > 10_000
    _shipped_as_assembled(work, "e3", "e3_metrics", names)


def test_a_parts_times_leave_out_jobs_an_earlier_part_ran(tmp_path):
    """The MNIST preparation runs in the first part that needs it; a later part packs its benchmark
    file too (its data are shared) but does not count its CPU-seconds or its hour as its own."""
    early, late = tmp_path / "benchmarks" / "mnist_canonical.tsv", tmp_path / "benchmarks" / "e2_train" / "z2.tsv"
    _tsv(early, 30, 29.0)
    _tsv(late, 4000, 3990.0)
    os.utime(early, (1_000_000, 1_000_000))
    os.utime(late, (1_100_000, 1_100_000))
    files = [("benchmarks/mnist_canonical.tsv", early), ("benchmarks/e2_train/z2.tsv", late)]
    both = kp.job_times(files)
    assert both["jobs"] == 2 and both["cpu_s"] == 4019.0 and both["wall_s"] == 100_000 + 30
    own = kp.job_times(files, since=1_050_000)
    assert (own["jobs"], own["cpu_s"], own["wall_s"]) == (1, 3990.0, 4000.0)
    assert kp.earlier_parts_made(tmp_path / "none", "e2-a") is None


def test_a_parts_resumed_trainings_are_its_own(tmp_path):
    """Training logs of every part share one folder: a part lists only its own jobs' resumes (those
    of its benchmark files), each with the CPU-s of its epochs before the resume estimated from the
    finishing run's CPU-s per epoch; a record without a resume has nothing to add."""
    logs, bench = tmp_path / "logs" / "e2_train", tmp_path / "benchmarks" / "e2_train"
    logs.mkdir(parents=True)
    (logs / "z2_a.log").write_text("[e2] train\n[checkpoint] resuming after epoch 29 from y\n"
                                   + "".join(f"Epoch {e}/37\n235/235 - 80s\n" for e in range(30, 38)))
    (logs / "z2_b.log").write_text("[checkpoint] resuming after epoch 3 from z\nEpoch 4/37\n")  # another part's
    (logs / "z2_c.log").write_text("".join(f"Epoch {e}/37\n" for e in range(1, 38)))  # never resumed
    _tsv(bench / "z2_a.tsv", 650, 640.0)
    _tsv(bench / "z2_c.tsv", 3000, 2900.0)
    own = kp.resumed_runs(tmp_path, "e2", ["benchmarks/e2_train/z2_a.tsv", "benchmarks/e2_train/z2_c.tsv"])
    assert own == [{"log": "logs/e2_train/z2_a.log", "after_epoch": 29, "epochs": 37, "cpu_s_after": 640.0,
                    "cpu_s_before_est": 2320.0}]  # 640 CPU-s for 8 epochs: 29 epochs ~ 2,320
    every = kp.resumed_runs(tmp_path, "e2")
    assert [(r["log"], r["cpu_s_before_est"]) for r in every] == [("logs/e2_train/z2_a.log", 2320.0),
                                                                 ("logs/e2_train/z2_b.log", None)]
    run = {"run": {"hardware": {}}, "times": {}, "part": "e2-c"}
    assert kp.part_summary({**run, "resumed": own})["cpu_s_before_resume_est"] == 2320.0
    assert kp.part_summary({**run, "resumed": every})["cpu_s_before_resume_est"] is None
    assert kp.part_summary({**run, "resumed": []})["cpu_s_before_resume_est"] == 0
