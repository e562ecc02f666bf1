"""Results bundles (klvae.bundle): the allow-list, the manifest, verification before extraction,
and -- on the session's real quick-profile run (fixture ``quick_run``) -- ``make bundle``'s
library function and ``make report BUNDLE=...`` in a fresh checkout without results/ and with
TensorFlow, Keras, JAX and torch made unimportable."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import QUICK, REPO, SNAKEFILE
from klvae import record as provenance
from klvae.bundle import core as kb
from klvae.bundle.__main__ import _main as bundle_cli
from klvae.report import methods
from klvae.report.escape import write_variables
from klvae.report.render import render_notes

# ----------------------------------------------------------------------------------------------
# helpers


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


RUN = {"recorded_utc": "2025-01-02T03:04:05Z", "host": "gpu-node-7", "profile": "quick", "seed": 1,
       "keras_backend": "jax", "KERAS_BACKEND": "jax", "git_commit": "0123456789ab-dirty",
       "hardware": {"CPU": "Test CPU", "logical CPUs": "16", "memory": "125.0 GiB",
                    "GPU": "gpu:NVIDIA H100 (NVIDIA H100, 81559 MiB)", "OS": "Linux 6"},
       "versions": {"python": "3.11.7", "keras": "3.12.0"}, "python": {"executable": "x", "version": "3.11.7"},
       "packages": {"keras": "3.12.0"}}


def fake_results(root: Path) -> Path:
    """A small results/quick/ tree of a finished run, with every kind of file the allow-list sorts."""
    r = root / QUICK
    files = {
        "tables/e1_losses.csv": "c,loss\n0,150.1\n1,160.2\n",
        "e1/r0/c0/history.csv": "epoch,loss\n1,200\n", "e1/r0/c0/metrics.json": '{"loss": 150.1}',
        "e2/z2/end_layer/metrics.json": '{"strategy": "end_layer"}', "tables/e2_metrics.csv": "strategy,z_dim\n",
        "e3/vae/history.csv": "epoch,loss\n1,0.5\n", "tables/e3_metrics.csv": "model,loss\nvae,0.5\n",
        "e1/r0/c0/latent.npz": b"PK\x03\x04npz", "e1/r0/c0/grid.npz": b"PK\x03\x04images",
        "figures/e1/scatter_c0.png": b"\x89PNG\r\n\x1a\n" + b"x" * 3000,
        "benchmarks/e1_train/r0_c0.tsv": "s\tmax_rss\n1.0\t10\n", "benchmarks/report/e1.tsv": "s\n0.1\n",
        "data/mnist_provenance.json": '{"source": "pypi"}', "data/faces/manifest.json": "{}",
        "report/generated/e1.md": "| c | loss |\n", "report/generated/e1.vars.yml": "e1: {epochs: 2}\n",
        "report/generated/banner.md": "", "report/generated/run.json": json.dumps(RUN),
        "report/generated/config.yaml": (REPO / "config" / "quick.yaml").read_text() + "report: {renderer: pandoc}\n",
        # never packed:
        "e1/r0/c0/model.keras": b"model", "e1/r0/init.weights.h5": b"h5", "e2/z2/init.weights.npz": b"w",
        "e1/r0/c0/model.keras.ckpt/state.json": "{}", "data/mnist.npz": b"arrays", "data/faces/train.npy": b"a",
        "data/standin/img_align_celeba/000001.jpg": b"jpg", "e3/ae/test_latents.npy": b"z",
        "e1/r0/c0/.history.tmp123.csv": "partial", "report/build/_klvae.md": "x",
        "bundle/old.tar.gz": b"gz", "from_bundle/old/tables/e1_losses.csv": "x", "report/klvae.html": "x",
    }
    for rel in kb.required_files():  # every fragment the report includes
        files.setdefault(rel, f"fragment {rel}\n")
    for rel, data in files.items():
        _write(r / rel, data)
    return r


def rewrite(src: Path, dst: Path, change=None, add: dict | None = None, drop=(), first=None,
            extra: list[tarfile.TarInfo] = ()) -> Path:
    """Copy the tar.gz ``src`` to ``dst`` member by member, keeping its manifest: ``change(name, data)``
    returns new bytes, ``add`` appends files, ``drop`` leaves members out, ``first`` puts a member first,
    ``extra`` appends raw TarInfo entries (links, directories)."""
    with tarfile.open(src, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    if first:
        members.sort(key=lambda md: md[0].name != first)
    with tarfile.open(dst, "w:gz") as out:
        for m, data in members:
            if m.name in drop:
                continue
            if change:
                data = change(m.name, data)
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        for info in extra:
            out.addfile(info)
    return dst


def with_manifest(src: Path, dst: Path, edit) -> Path:
    """``src`` with its manifest edited by ``edit(manifest)`` (the other members unchanged)."""
    def change(name, data):
        if name != kb.MANIFEST_NAME:
            return data
        m = json.loads(data)
        edit(m)
        return json.dumps(m).encode()
    return rewrite(src, dst, change=change)


@pytest.fixture
def made(tmp_path):
    results = fake_results(tmp_path)
    info = kb.create_bundle(results, out_dir=tmp_path / "out", created_utc="2025-01-02T04:00:00Z")
    return results, Path(info["path"]), info


# ----------------------------------------------------------------------------------------------
# unit tests: allow-list, manifest, verification


def test_compare_fragment_sets_this_runs_tables_beside_a_bundle(made, tmp_path):
    """klvae.report.compare on a small bundle: differences, a changed number, a NaN, the fragment."""
    from klvae.report.compare import choose_reference, compare_fragment

    RESULTS_QMD, NONE_QMD = "_compare_results.qmd", "_compare_none.qmd"  # chosen by klvae.report.includes

    results, archive, _ = made
    tables = tmp_path / "this" / "tables"
    tables.mkdir(parents=True)
    (tables / "e1_losses.csv").write_text("c,loss\n0,152.1\n1,nan\n")
    (tables / "e3_metrics.csv").write_text("model,loss\nvae,0.5\n")
    md, table, values, rows = compare_fragment(str(archive), tables)
    assert md.strip() == f"{{{{< include /{RESULTS_QMD} >}}}}"
    # the table's body; its caption and id are in the qmd, right after the include of the body
    assert table.startswith("| table | row | quantity |") and "{#tbl-" not in table
    assert re.search(r"\{\{< include /_generated/compare_table\.md >\}\}\n\n: This run beside the shipped run.*"
                     r"\{#tbl-compare\}$", (REPO / "report" / RESULTS_QMD).read_text(), re.M)
    got = {(r["table"], r["row"], r["metric"]): r for r in rows}
    assert got[("e1_losses", "c=0", "loss")]["diff"] == pytest.approx(2.0)
    assert got[("e1_losses", "c=1", "loss")]["b"] == "nan" and "| nan |" in table
    assert got[("e3_metrics", "model=vae", "loss")]["diff"] == 0
    assert values["available"] == "yes" and values["n_values"] == len(rows) and archive.name in values["reference"]
    md, table, values, rows = compare_fragment(None, tables)
    assert (md.strip(), table, values, rows) == (f"{{{{< include /{NONE_QMD} >}}}}", "", {"available": "no"}, [])
    md, *_ = compare_fragment(None, tables, itself=True)  # the shipped paper run's own report
    assert md.strip() == "{{< include /_compare_self.qmd >}}"
    assert choose_reference("auto", tmp_path / "no-bundles") is None and choose_reference("none", ".") is None


def test_a_report_rendered_from_the_shipped_paper_bundle_is_not_set_beside_itself(made, tmp_path):
    """`make read` / `make report BUNDLE=` of the shipped paper bundle: ``auto`` chooses another paper
    bundle or none, never the rendered one (nor a copy of it elsewhere), and the section says why."""
    from klvae.report.compare import choose_reference, renders_the_reference, same_bundle

    _, archive, _ = made
    shipped = tmp_path / "bundles"
    shipped.mkdir()
    paper = shipped / "klvae-paper-tensorflow-aaaaaaa.tar.gz"
    shutil.copy2(archive, paper)
    elsewhere = tmp_path / "elsewhere.tar.gz"  # the same bytes under another name and folder
    shutil.copy2(archive, elsewhere)
    assert same_bundle(paper, elsewhere) and not same_bundle(paper, REPO / "README.md")
    assert choose_reference("auto", shipped) == str(paper)  # a run's own report: the shipped paper run
    for rendered in (paper, elsewhere):
        assert choose_reference("auto", shipped, rendered) is None
        assert renders_the_reference("auto", shipped, rendered)
    assert choose_reference(str(paper), shipped, paper) == str(paper)  # named explicitly: as asked
    assert not renders_the_reference(str(paper), shipped, paper) and not renders_the_reference("auto", shipped, None)
    other = tmp_path / "other.tar.gz"
    rewrite(archive, other, add={"figures/e1/extra.png": b"\x89PNG"})  # different bytes: another run
    assert not renders_the_reference("auto", shipped, other) and choose_reference("auto", shipped, other) == str(paper)
    text = (REPO / "report" / "_compare_self.qmd").read_text()
    assert "This report is the shipped run's own" in text and "`make report` sets your own run beside it" in text


def test_the_comparison_lists_the_parts_a_shipped_run_was_made_in(tmp_path):
    """A shipped run made in parts (the paper run, klvae.bundle.part) gets a table of its parts from
    its run record, every string shown as text; the repository's shipped paper bundle, where one
    holds only some experiments, says which are in it."""
    from klvae.report.compare import choose_reference, compare_fragment, parts_table

    run = {"parts": [{"part": "e1", "commit": "953da1b6313d", "host": "<b>vm</b>", "cpu": "AMD EPYC",
                      "logical_cpus": "2", "first_start_utc": "2026-12-06T05:15:41+00:00",
                      "last_end_utc": "2026-12-06T06:16:05+00:00", "jobs": 52, "cpu_s": 4890.3, "wall_s": 3624.0,
                      "cores_busy": None, "resumed": 1, "cpu_s_before_resume_est": 1730.4, "threads": 2}]}
    body = parts_table(run).splitlines()
    assert body[0].startswith("| part | commit | host | CPU |") and len(body) == 3
    from klvae.report.escape import md_text

    assert body[2].startswith("| e1 | 953da1b |")  # the short commit, as in the bundles' names
    assert f"| AMD EPYC (2 logical) | {md_text('2026-12-06 05:15:41')} |" in body[2]
    assert "| 52 | 4,890 + ≈1,730 | 1.01 | – | 1 | 2 |" in body[2] and "<b>" not in body[2]
    run["parts"][0].update(resumed=0, cores_busy=0.67)  # not resumed: the benchmark files count it all
    assert "| 52 | 4,890 | 1.01 | 67% | 0 | 2 |" in parts_table(run).splitlines()[2]
    del run["parts"][0]["threads"]  # a record that does not say its threads
    assert parts_table(run).splitlines()[2].endswith("| 67% | 0 | – |")
    run["parts"][0].update(resumed=2, cores_busy=None, cpu_s_before_resume_est=None)  # an older record
    assert "| 52 | 4,890 + ? | 1.01 | – | 2 | – |" in parts_table(run).splitlines()[2]
    assert parts_table({}) == parts_table({"parts": "e1"}) == parts_table({"parts": []}) == ""

    shipped = choose_reference("auto", REPO / "bundles")
    if shipped is None:
        pytest.skip("no paper bundle shipped")
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "e1_losses.csv").write_text("c,loss\n0,140\n")
    md, _, values, _ = compare_fragment(shipped, tables)
    manifest = kb.read_bundle(shipped)[0]
    assert values["held"] == ", ".join(e.upper() for e in manifest["experiments"])
    if "parts" in json.loads(kb.read_bundle(shipped)[1][kb.RUN_RECORD]):
        assert "{{< include /_compare_parts.qmd >}}" in md and values["n_parts"] >= 1
    with pytest.raises(FileNotFoundError, match="report.compare_with = 'missing.tar.gz': no such bundle file"):
        choose_reference("missing.tar.gz", ".")


@pytest.mark.parametrize("rel, included", [
    ("tables/e1_losses.csv", True), ("figures/e2/latent_panel.png", True), ("e1/r0/c0.5/latent.npz", True),
    ("e2/z2/end_layer/metrics.json", True), ("e3/vae/history.csv", True), ("report/generated/e1.md", False),
    ("report/generated/run.json", True), ("benchmarks/e1_train/r0_c0.tsv", True),
    ("benchmarks/quick/e1_train/r0_c0.tsv", True),  # a bundle made before each profile had its own folder
    ("data/mnist_provenance.json", True), ("data/faces/manifest.json", True),
    ("e1/r0/c0/model.keras", False), ("e1/r0/init.weights.h5", False), ("e2/z2/init.weights.npz", False),
    ("e1/r0/c0/model.keras.ckpt/weights.npz", False), ("data/mnist.npz", False), ("data/faces/train.npy", False),
    ("e3/ae/test_latents.npy", False), ("report/klvae.html", False), ("report/klvae.pdf", False),
    ("report/build/figures/e1/a.png", False), ("bundle/x.tar.gz", False), ("from_bundle/x/tables/a.csv", False),
    ("e1/.x.tmp1.csv", False), ("MANIFEST.json", False), ("raw/mnist.whl", False), ("notes.docx", False),
    ("e1/r0/c0.5/grid.npz", False), ("e2/z2/end_layer/recon.npz", True), ("e3/decoded_faces.npz", False),
    ("e3/vae/decoded_faces.npz", False), ("e3/ae/decoded_faces.npz", False), ("e3/ae/metrics.json", True),
    ("e3/ae/latent_histogram.npz", True), ("e3/ae/latents.json", True),
    ("e3/vae/model.json", True), ("figures/study/backend_losses.png", False), ("figures/e1/scatter_panel.png", True),
])
def test_allow_list_sorts_files_by_folder_and_extension(rel, included):
    assert kb.member_kind(rel)[0] is included, kb.member_kind(rel)


def test_benchmarks_in_todays_bundles_and_in_those_made_before_profiles_had_their_own_folders():
    """Today a bundle names the run's benchmark files benchmarks/<rule>...; one made when every profile
    wrote into results/ names them benchmarks/<profile>/<rule>...: bundle mode reads them there, and a
    merge renames them."""
    today = ["tables/e1_losses.csv", "benchmarks/e1_train/r0_c0.tsv", "benchmarks/mnist_canonical.tsv"]
    before = ["tables/e1_losses.csv", "benchmarks/quick/e1_train/r0_c0.tsv", "benchmarks/quick/mnist_canonical.tsv"]
    assert kb.benchmarks_folder(today, "quick") == "benchmarks"
    assert kb.benchmarks_folder(before, "quick") == "benchmarks/quick"
    assert kb.benchmarks_folder(before, None) == "benchmarks"
    assert [kb.current_member_name(p, "quick") for p in before] == today
    assert [kb.current_member_name(p, "quick") for p in today] == today
    assert kb.current_member_name("benchmarks/default/e1_table.tsv", "quick") == "benchmarks/default/e1_table.tsv"
    assert [kb.experiment_of(p) for p in today] == ["e1", "e1", None]
    assert kb.experiment_of("benchmarks/e1_table.tsv") == "e1" and kb.experiment_of("benchmarks/report/e1.tsv") is None


def test_the_folder_of_every_profile_is_not_a_run(tmp_path):
    """`--results results` (the folder that holds every profile's) is refused, naming the runs in it."""
    fake_results(tmp_path)
    with pytest.raises(kb.BundleError, match=r"the folder of every profile's; name one: --results \S+/results/quick"):
        kb.create_bundle(tmp_path / "results", out_dir=tmp_path / "out")


def test_by_default_the_bundle_goes_into_the_runs_folder_and_never_into_the_next_bundle(tmp_path):
    results = fake_results(tmp_path)
    info = kb.create_bundle(results)
    assert Path(info["path"]).parent == results / "bundle"
    again = kb.create_bundle(results, out_dir=tmp_path / "out")
    assert again["members"] == info["members"]
    assert not [p for p in kb.verify_bundle(again["path"])["paths"] if p.startswith("bundle/")]


@pytest.mark.parametrize("name, ok", [
    ("tables/e1.csv", True), ("figures/e1/scatter_c0.02.png", True), ("../etc/passwd", False),
    ("/abs/file.csv", False), ("a/../b.csv", False), ("a//b.csv", False), ("a/./b.csv", False),
    (".hidden.csv", False), ("a\\b.csv", False), ("a/b c.csv", False), ("", False), ("a\x00.csv", False),
])
def test_safe_member_names(name, ok):
    assert kb.safe_member_name(name) is ok


def test_create_bundle_writes_manifest_first_with_every_hash(made):
    results, archive, info = made
    assert archive.name == "klvae-quick-jax-0123456-dirty.tar.gz"
    assert info["size"] == archive.stat().st_size <= kb.MAX_BUNDLE_BYTES
    assert (archive.parent / f"{archive.name}.sha256").read_text().split()[0] == hashlib.sha256(
        archive.read_bytes()).hexdigest() == info["sha256"]
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(kb.MANIFEST_NAME).read())
        assert names[0] == kb.MANIFEST_NAME
        for entry in manifest["members"]:
            data = tar.extractfile(entry["path"]).read()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] == kb.sha256_file(results / entry["path"])
            assert len(data) == entry["size"]
    paths = {e["path"] for e in manifest["members"]}
    assert paths == set(names[1:])
    assert {"tables/e1_losses.csv", "report/generated/run.json", "report/generated/config.yaml",
            "benchmarks/e1_train/r0_c0.tsv", "data/mnist_provenance.json", "e1/r0/c0/latent.npz"} <= paths
    assert not [p for p in paths if re.search(r"\.(keras|h5|npy)$|weights|ckpt|grid|^bundle/|^from_bundle/|/\.|"
                                              r"^report/(build|klvae)|^data/.*\.npz", p)]
    assert manifest["keras_backend"] == "jax" and manifest["run_commit"] == RUN["git_commit"]
    assert info["manifest_sha256"] == hashlib.sha256(
        tarfile.open(archive, "r:gz").extractfile(kb.MANIFEST_NAME).read()).hexdigest()
    assert info["excluded"]["model"] >= 1 and info["excluded"]["checkpoint"] == 1
    assert info["complete"] and manifest["complete"] and manifest["missing"] == []


def test_verify_and_extract_round_trip(made, tmp_path):
    results, archive, info = made
    v = kb.verify_bundle(archive)
    assert v["manifest_sha256"] == info["manifest_sha256"] and v["members"] == info["members"]
    assert v["config"]["report"]["renderer"] == "pandoc" and v["keras_backend"] == "jax"
    out = kb.extract_bundle(archive, tmp_path / "x")
    for p in out["paths"]:
        assert (tmp_path / "x" / p).read_bytes() == (results / p).read_bytes()
    with pytest.raises(kb.BundleError, match="not empty"):
        kb.extract_bundle(archive, tmp_path / "x")
    kb.extract_bundle(archive, tmp_path / "x", replace=True)
    with pytest.raises(kb.BundleError, match="expected"):
        kb.verify_bundle(archive, expected_manifest_sha256="0" * 64)


def test_unfinished_run_is_refused_unless_partial(tmp_path):
    results = fake_results(tmp_path)
    (results / "report/generated/run.json").unlink()  # rule run_record writes it once every result is there
    with pytest.raises(kb.BundleError, match=r"not a finished run: .*run\.json.*--partial"):
        kb.create_bundle(results, out_dir=tmp_path / "out")
    info = kb.create_bundle(results, out_dir=tmp_path / "out", partial=True)
    assert not info["complete"] and info["missing"] == ["report/generated/run.json"]
    # without a run record the run's folder names its profile (results/quick)
    assert Path(info["path"]).name.startswith("klvae-quick-") and info["path"].endswith("-partial.tar.gz")
    v = kb.verify_bundle(info["path"])
    assert v["complete"] is False and "report/generated/run.json" in v["missing"]
    work = tmp_path / "work"
    work.mkdir()
    proc = _snakemake(work, "-n", "--config", f"bundle={info['path']}")
    assert proc.returncode != 0 and "partial bundle" in proc.stdout + proc.stderr


def test_too_large_bundle_fails_naming_the_largest_files(tmp_path):
    results = fake_results(tmp_path)
    _write(results / "e1/r0/c0/latent.npz", os.urandom(200_000))
    with pytest.raises(kb.BundleTooLarge, match=r"over the limit of .*\n.*e1/r0/c0/latent\.npz") as err:
        kb.create_bundle(results, out_dir=tmp_path / "out", max_bytes=100_000)
    assert "0.20 MB  e1/r0/c0/latent.npz" in str(err.value).splitlines()[1]
    assert not list((tmp_path / "out").glob("*")), "a refused bundle must leave nothing behind"


def _flip_one_byte(name, data, target="tables/e1_losses.csv"):
    return data[:10] + bytes([data[10] ^ 1]) + data[11:] if name == target else data


@pytest.mark.parametrize("how, message", [
    (dict(change=_flip_one_byte), r"member 'tables/e1_losses\.csv' has SHA-256 [0-9a-f]{64}, the manifest says"),
    (dict(add={"tables/extra.csv": b"a,b\n"}), r"member 'tables/extra\.csv' is not in the manifest"),
    (dict(drop={"tables/e1_losses.csv"}), r"member 'tables/e1_losses\.csv' of the manifest is missing"),
    (dict(first="tables/e1_losses.csv"), r"first member is 'tables/e1_losses\.csv', not the manifest"),
    (dict(add={"../evil.csv": b"x"}), r"member '\.\./evil\.csv' has an unsafe path"),
    (dict(add={"/tmp/evil.csv": b"x"}), r"unsafe path"),
    (dict(add={"tables/e1_losses.csv": b"c,loss\n"}), r"'tables/e1_losses\.csv' appears twice"),
    (dict(change=lambda n, d: d + b"\n" if n == "e1/r0/c0/history.csv" else d),
     r"member 'e1/r0/c0/history\.csv' is \d+ bytes, the manifest says"),
])
def test_tampered_bundle_is_refused_naming_the_file(made, tmp_path, how, message):
    _, archive, _ = made
    bad = rewrite(archive, tmp_path / "bad.tar.gz", **how)
    with pytest.raises(kb.BundleError, match=message):
        kb.verify_bundle(bad)
    with pytest.raises(kb.BundleError, match="refused"):
        kb.extract_bundle(bad, tmp_path / "dest")
    assert not (tmp_path / "dest").exists(), "nothing may be extracted from a refused bundle"


def test_links_and_directories_are_refused_even_when_listed(made, tmp_path):
    _, archive, _ = made
    link = tarfile.TarInfo("tables/link.csv")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"

    def listed(m):
        m["members"].append({"path": "tables/link.csv", "size": 0, "sha256": "0" * 64})
    src = with_manifest(archive, tmp_path / "listed.tar.gz", listed)
    with pytest.raises(kb.BundleError, match=r"'tables/link\.csv' is a symlink"):
        kb.verify_bundle(rewrite(src, tmp_path / "bad.tar.gz", extra=[link]))
    hard = tarfile.TarInfo("tables/link.csv")
    hard.type, hard.linkname = tarfile.LNKTYPE, "tables/e1_losses.csv"
    with pytest.raises(kb.BundleError, match="hard link"):
        kb.verify_bundle(rewrite(src, tmp_path / "bad2.tar.gz", extra=[hard]))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["members"].append({"path": "e1/r0/c0/model.keras", "size": 1, "sha256": "0" * 64}),
     r"'e1/r0/c0/model\.keras', a model file that a bundle never carries"),
    (lambda m: m["members"].append({"path": "../x.csv", "size": 1, "sha256": "0" * 64}), "unsafe path"),
    (lambda m: m["members"].append(dict(m["members"][0])), "twice"),
    (lambda m: m.update(format="other/9"), "not a klvae-bundle/1 or klvae-bundle/2 manifest"),
    (lambda m: m["members"][0].update(sha256="xyz"), "no valid size and sha256"),
])
def test_bad_manifests_are_refused(made, tmp_path, edit, message):
    _, archive, _ = made
    with pytest.raises(kb.BundleError, match=message):
        kb.verify_bundle(with_manifest(archive, tmp_path / "bad.tar.gz", edit))


def test_a_manifest_edited_to_match_changes_the_manifest_hash(made, tmp_path):
    """Re-hashing a changed file into the manifest passes verification, but the manifest hash (printed
    by `make bundle`, shown in the report, checkable with expected_manifest_sha256) changes."""
    _, archive, info = made
    new = _flip_one_byte("tables/e1_losses.csv", (made[0] / "tables/e1_losses.csv").read_bytes())

    def edit(m):
        e = next(e for e in m["members"] if e["path"] == "tables/e1_losses.csv")
        e["sha256"] = hashlib.sha256(new).hexdigest()
    bad = rewrite(with_manifest(archive, tmp_path / "m.tar.gz", edit), tmp_path / "bad.tar.gz",
                  change=_flip_one_byte)
    assert kb.verify_bundle(bad)["manifest_sha256"] != info["manifest_sha256"]
    with pytest.raises(kb.BundleError, match="manifest SHA-256"):
        kb.verify_bundle(bad, expected_manifest_sha256=info["manifest_sha256"])


def test_not_a_tar_gz_is_refused(tmp_path):
    junk = _write(tmp_path / "junk.tar.gz", os.urandom(1000))
    with pytest.raises(kb.BundleError, match="not a readable tar.gz"):
        kb.verify_bundle(junk)
    with pytest.raises(kb.BundleError, match="no such bundle"):
        kb.verify_bundle(tmp_path / "gone.tar.gz")


def test_oversized_archive_is_refused_unread(made):
    _, archive, _ = made
    with pytest.raises(kb.BundleError, match="over the"):
        kb.read_bundle(archive, max_bytes=100)


def test_cli_create_and_verify(tmp_path, capsys):
    results = fake_results(tmp_path)
    (tmp_path / "o").mkdir()
    assert bundle_cli(["--results", str(results), "--out", str(tmp_path / "o")]) == 0  # create is the default
    out = capsys.readouterr().out
    assert str(tmp_path / "o" / "klvae-quick-jax-0123456-dirty.tar.gz") in out
    archive = re.search(r">>> bundle: (\S+)", out).group(1)
    assert "make report BUNDLE=" in out and "left out:" in out
    assert bundle_cli(["verify", archive]) == 0
    rewrite(Path(archive), tmp_path / "bad.tar.gz", change=_flip_one_byte)
    assert bundle_cli(["verify", str(tmp_path / "bad.tar.gz")]) == 1
    assert "tables/e1_losses.csv" in capsys.readouterr().err


def test_bundle_names_and_render_folder():
    assert kb.bundle_name(RUN) == "klvae-quick-jax-0123456-dirty"
    assert kb.bundle_stem("a/b/klvae-x.tar.gz") == "klvae-x" and kb.bundle_stem("y.tgz") == "y"
    assert kb.render_dir("/x/klvae-x.tar.gz") == "results/from_bundle/klvae-x"
    assert provenance.short_commit("5e71b1bdfd0d") == "5e71b1b"
    assert provenance.short_commit("v1.0-3-g5e71b1bdfd0d-dirty") == "5e71b1b-dirty"
    assert provenance.short_commit("not a git checkout") == "nogit"


def _expanded(fragments: dict[str, str], variables: dict, tmp: Path, main: str) -> str:
    """``main`` (a fragment's name) as the report shows it: fragments written into a copy of report/,
    then expanded as the pandoc path does."""
    from klvae.report.render import expand_shortcodes

    build = tmp / "build"
    shutil.copytree(REPO / "report", build, dirs_exist_ok=True)
    for name, text in fragments.items():
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_text(text)
    (build / "main.qmd").write_text(f"{{{{< include /{main} >}}}}\n")
    return expand_shortcodes(build / "main.qmd", variables)


def test_title_banner_says_where_when_backend_and_commit(tmp_path):
    env = {"env": methods.run_variables(RUN)}
    banner = _expanded({"_generated/banner.md": methods.banner_fragment({"profile": "quick"})}, env,
                       tmp_path / "quick", "_generated/banner.md")
    for part in ("Where these numbers come from", "gpu-node-7", "**jax** backend", "0123456789ab-dirty",
                 "2025-01-02 03:04:05 UTC", "NVIDIA H100", "Quick profile"):
        assert part in banner, part
    assert "{{<" not in banner
    banner = _expanded({"_generated/banner.md": methods.banner_fragment({"profile": "default"})}, env,
                       tmp_path / "default", "_generated/banner.md")
    assert "Quick profile" not in banner and "gpu-node-7" in banner
    assert "Where these numbers come from" not in methods.banner_fragment({"profile": "quick"})  # prose: report/


def test_a_run_made_in_parts_says_so_on_its_title_page(tmp_path):
    """The banner of a run assembled from parts (the paper run on a CPU): how many parts, from the
    first part's first job to the last part's last, on which hosts and at which commits (each once),
    not the one commit and date of the record kept from the first experiment merged."""
    parts = [{"part": "e1", "commit": "953da1b6313d", "host": "laptop", "first_start_utc": "2026-12-06T05:11:02+00:00",
              "last_end_utc": "2026-12-06T06:12:00+00:00"},
             {"part": "e3-vae", "commit": "b0515a8aaaaa", "host": "<b>node</b>",
              "first_start_utc": "2026-12-06T17:40:00+00:00", "last_end_utc": "2026-12-06T19:05:59+00:00"},
             {"part": "e3-ae", "commit": "953da1b6313d", "host": "laptop",
              "first_start_utc": "2026-12-06T20:59:30+00:00", "last_end_utc": "2026-12-06T21:50:59+00:00"}]
    run = {**RUN, "profile": "paper", "parts": parts}
    fragment = methods.banner_fragment({"profile": "paper"}, run)
    assert fragment.strip() == "{{< include /_banner_parts.qmd >}}"
    assert methods.banner_fragment({"profile": "paper"}, RUN).strip() == "{{< include /_banner_run.qmd >}}"
    variables = tmp_path / "vars.yml"
    write_variables(variables, {"env": methods.run_variables(run)})
    banner = " ".join(_expanded({"_generated/banner.md": fragment}, yaml.safe_load(variables.read_text()),
                                tmp_path, "_generated/banner.md").split())
    # (a colon is written &#58; so that no variable can open a link or a shortcode; a code span shows its text)
    assert ("in 3 parts, from 2026-12-06 05&#58;11 UTC to 2026-12-06 21&#58;50 UTC, on hosts `laptop`, "
            "`<b>node</b>` (Test CPU, 16 logical CPUs") in banner
    assert "at project commits `953da1b`, `b0515a8`:" in banner and "0123456789ab" not in banner
    assert "2025-01-02" not in banner and "{{<" not in banner
    one = {**run, "parts": parts[:1]}  # one part: one host
    write_variables(variables, {"env": methods.run_variables(one)})
    assert yaml.safe_load(variables.read_text())["env"]["part_hosts"] == "host `laptop`"
    # the subtitle: a run made in parts names no single commit
    assert methods.run_variables(run)["origin"] == "made in 3 parts"
    assert methods.run_variables(RUN)["origin"] == "commit `0123456789ab-dirty`"
    # the methods chapter and the citation name every part's commit and say when the record was written
    assert methods.run_variables(run)["commits"] == "project commits `953da1b`, `b0515a8`"
    assert methods.run_variables(RUN)["commits"] == "project commit `0123456789ab-dirty`"
    assert methods.run_variables(run)["recorded_when"].startswith("when its first experiment was assembled")
    assert methods.run_variables(RUN)["recorded_when"] == "at its end, 2025-01-02T03:04:05Z (UTC)"
    # a commit is shortened only where it is one; any other text is shown whole
    assert [methods.short_commit(c) for c in ("953da1b6313d", "0123456789ab-dirty", "# PWN <b>x</b>", "abc")] == \
        ["953da1b", "0123456-dirty", "# PWN <b>x</b>", "abc"]


def test_standin_banner_only_for_the_standin_faces(tmp_path):
    from klvae.report.e3 import banner

    shown = _expanded({"_generated/e3_banner.md": banner({"standin": True})}, {}, tmp_path, "_generated/e3_banner.md")
    assert "Synthetic stand-in data, not CelebA" in shown and "{{<" not in shown
    assert banner({"standin": False}) == ""


def _render_text(notes: dict[str, str], values: dict, tmp: Path) -> tuple[str, str]:
    """The banner and the methods paragraph as the report shows them: the fragments of
    :func:`render_notes` expanded in a copy of report/."""
    from klvae.report.render import RENDER_BANNER, RENDER_METHODS

    return tuple(_expanded(notes, values, tmp / name, name) for name in (RENDER_BANNER, RENDER_METHODS))


def test_render_notes_name_the_bundle_and_the_render_machine(tmp_path):
    from klvae.report.render import RENDER_TABLE

    record = provenance.render_record(REPO)
    notes, values = render_notes(record)
    assert notes[RENDER_TABLE] == "" and values["render"]["host"] == f"`{record['host']}`"  # a code span
    banner, methods_note = _render_text(notes, values, tmp_path / "run")
    assert banner.strip() == "" and "right after the run" in methods_note and record["host"] in methods_note
    assert "{{<" not in methods_note and "{#tbl-render}" not in methods_note
    b = {"name": "klvae-quick-jax-0123456.tar.gz", "archive_sha256": "a" * 64, "manifest_sha256": "b" * 64,
         "members": 12, "created_utc": "2025-01-02T04:00:00Z", "created_host": "gpu-node-7"}
    notes, values = render_notes(record, b)
    banner, methods_note = _render_text(notes, values, tmp_path / "bundle")
    for text in (banner, methods_note):
        assert "klvae-quick-jax-0123456.tar.gz" in text and "b" * 64 in text and record["host"] in text
        assert "{{<" not in text
    assert "Rendered from a results bundle" in banner
    # the table's body, then its caption and id (in report/_render_bundle.qmd)
    assert re.search(r"^\| render \| value \|\n(\|.*\|\n)+\n+: The bundle this report was rendered from .*"
                     r"\{#tbl-render\}$", methods_note, re.M)
    assert "`gpu-node-7`" in notes[RENDER_TABLE] and "{#tbl-" not in notes[RENDER_TABLE]


def test_run_record_names_the_keras_backend(monkeypatch, tmp_path):
    pytest.importorskip("keras")
    from klvae import backend

    monkeypatch.setattr(provenance, "hardware", lambda b: {"CPU": "c", "logical CPUs": "1", "memory": "1 GiB",
                                                           "GPU": provenance.gpus_visible(b), "OS": "x"})
    facts = backend.write_facts(tmp_path / "backend.json")  # what rule report_backend writes
    assert json.loads((tmp_path / "backend.json").read_text()) == facts
    rec = provenance.run_record({"profile": "quick", "seed": 1}, REPO, facts)
    assert rec["keras_backend"] in ("tensorflow", "jax", "torch")
    assert rec["keras_backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
    assert rec["KERAS_BACKEND"] == os.environ.get("KERAS_BACKEND", "")
    assert rec["versions"]["keras"] == facts["versions"]["keras"]
    assert rec["packages"]["snakemake"] and json.dumps(rec)


def test_cpu_vector_extensions_from_cpuinfo():
    """The run record names the CPU's vector extensions (what decides oneDNN's kernels, so whether two
    CPUs can train bitwise alike): the known ones in a fixed order, from the flags line."""
    intel = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx2 avx fma avx512f " \
            "avx512_bf16 amx_tile amx_bf16 avx512_fp16 ht\n"
    assert provenance.cpu_extensions(intel) == "avx avx2 fma avx512f avx512_bf16 avx512_fp16 amx_tile amx_bf16"
    assert provenance.cpu_extensions("processor\t: 0\nFeatures\t: fp asimd evtstrm sve\n") == "asimd sve"
    assert provenance.cpu_extensions("flags\t: fpu sse2\n").startswith("none of avx avx2")
    assert provenance.cpu_extensions("model name\t: x\n") == "unknown"
    assert provenance.hardware({"keras_backend": "jax", "accelerators": "none"})["CPU vector extensions"]


def test_gpus_visible_reads_the_recorded_accelerators():
    assert provenance.gpus_visible({"keras_backend": "jax", "accelerators": "none"}) == "none visible to jax"
    assert provenance.gpus_visible({"keras_backend": "jax", "accelerators": ""}) == "none visible to jax"
    assert provenance.gpus_visible({"keras_backend": "tensorflow", "accelerators": "/physical_device:GPU:0"}) \
        == "/physical_device:GPU:0"
    assert provenance.gpus_visible({"keras_backend": "torch", "accelerators": "unknown (ImportError)"}) \
        == "unknown (ImportError)"


def _snakemake(workdir: Path, *args, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--cores", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_bundle_mode_needs_the_reports_data_and_refuses_a_tampered_bundle(made, tmp_path):
    """Bundle mode remakes the report from the bundle's data: a bundle without the data the report
    rules read is refused while the workflow is parsed, naming what is missing; a tampered one too
    (the full DAG of a real bundle is checked on the quick run below)."""
    _, archive, _ = made
    work = tmp_path / "work"
    work.mkdir()
    proc = _snakemake(work, "-n", "--quiet", "rules", "--config", f"bundle={archive}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "the report needs files the bundle does not hold: " in out, out[-3000:]
    assert "e1/r0/c0.02/latent.npz" in out and re.search(r"and \d+ more", out) and "make the bundle" in out.lower()
    bad = rewrite(archive, tmp_path / "bad.tar.gz", change=_flip_one_byte)
    proc = _snakemake(work, "--config", f"bundle={bad}")  # a real run: refused while parsing
    assert proc.returncode != 0 and "member 'tables/e1_losses.csv' has SHA-256" in proc.stdout + proc.stderr
    assert not (work / "results").exists()


# ----------------------------------------------------------------------------------------------
# on the real quick-profile run


def _blocker(root: Path) -> Path:
    """A folder for PYTHONPATH whose tensorflow/keras/jax/torch packages refuse to import."""
    for name in ("tensorflow", "keras", "jax", "torch"):
        _write(root / name / "__init__.py",
               f"raise ImportError('{name} is blocked: rendering from a bundle must not need it')\n")
    return root


@pytest.fixture(scope="module")
def quick_bundle(quick_run, tmp_path_factory) -> dict:
    """`make bundle`'s library function on the session's quick-profile run."""
    return kb.create_bundle(quick_run / QUICK, out_dir=tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def fresh_checkout(tmp_path_factory) -> Path:
    """A copy of the repository's sources (git-tracked and untracked-not-ignored files), no results/."""
    dst = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if rel.startswith(("results/", "data/")) or not src.is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    assert not (dst / "results").exists()
    return dst


def _make_report(checkout: Path, archive: str | Path, tmp: Path) -> tuple[subprocess.CompletedProcess, float]:
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "PYTHONPATH": str(_blocker(tmp / "blocked")), "KERAS_BACKEND": "jax"}
    cmd = ["make", "-C", str(checkout), f"VENV={venv}", "-o", f"{venv}/.klvae-installed", "CORES=2", "report",
           f"BUNDLE={archive}"]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    return proc, time.time() - start


def _tables(html: str) -> dict[str, str]:
    """Every table by id; a caption's link to its function (relative to where the report was
    rendered, so it differs between two folders) is shown by its target file only."""
    def target(m: re.Match) -> str:
        return f'href="…/{m[1]}"'

    return {m.group(1): re.sub(r'href="[^"]*?(src/klvae/[^"#]+)[^"]*"', target, m.group(0))
            for m in re.finditer(r'<table[^>]*id="([\w-]+)".*?</table>', html, re.S)}


def broken_links(html_file: Path) -> list[str]:
    """The links and images of a rendered HTML that lead nowhere: a ``#id`` the page lacks, or a
    relative path (resolved from the HTML's folder) that is not a file. Web and data URLs are not followed."""
    html = html_file.read_text()
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    broken = []
    for ref in sorted(set(re.findall(r'\s(?:href|src)="([^"]+)"', html))):
        if ref.startswith(("data:", "http://", "https://", "mailto:")):
            continue
        path, _, anchor = ref.partition("#")
        if path and not (html_file.parent / path).is_file():
            broken.append(ref)
        elif not path and anchor not in ids:
            broken.append(ref)
    return broken


@pytest.mark.pipeline
def test_quick_bundle_is_small_complete_and_model_free(quick_run, quick_bundle):
    archive = Path(quick_bundle["path"])
    assert archive.stat().st_size <= kb.MAX_BUNDLE_BYTES
    print(f"\n[bundle] {archive.name}: {archive.stat().st_size / 1e6:.2f} MB, {quick_bundle['members']} members, "
          f"{quick_bundle['unpacked_bytes'] / 1e6:.2f} MB unpacked")
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(kb.MANIFEST_NAME).read())
    bad = [n for n in names if re.search(r"\.(keras|h5|npy|whl|jpg)$|\.weights\.|\.ckpt/|^data/.*\.npz$", n)]
    assert not bad, bad
    assert not [n for n in names if n.startswith("report/") and n not in (kb.RUN_RECORD, kb.RUN_CONFIG)]  # data only
    for needed in ("tables/e1_losses.csv", "tables/scorecard.csv", "report/generated/run.json",
                   "report/generated/config.yaml",
                   "figures/e1/scatter_panel.png", "figures/e3/random_faces.png", "e1/r0/c0.5/latent.npz",
                   "e1/r0/c0.5/history.csv", "e2/z2/end_layer/metrics.json", "data/mnist_provenance.json",
                   "benchmarks/e1_train/r0_c0.5.tsv"):
        assert needed in names, needed
    for entry in manifest["members"]:  # the manifest's hashes are the run's files'
        assert kb.sha256_file(quick_run / QUICK / entry["path"]) == entry["sha256"], entry["path"]
    run = json.loads((quick_run / QUICK / "report/generated/run.json").read_text())
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"  # quick_run runs with the session's backend
    assert run["keras_backend"] == backend and manifest["keras_backend"] == backend
    assert archive.name.startswith(f"klvae-quick-{backend}-")


@pytest.mark.pipeline
def test_report_from_bundle_in_a_fresh_checkout_has_the_runs_numbers(quick_run, quick_bundle, fresh_checkout,
                                                                     tmp_path):
    archive = Path(quick_bundle["path"])
    proc, seconds = _make_report(fresh_checkout, archive, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    print(f"\n[bundle] make report BUNDLE=... took {seconds:.1f} s")
    out = fresh_checkout / kb.render_dir(archive) / "report"
    assert f">>> report: {kb.render_dir(archive)}/report/klvae.html" in proc.stdout
    ran = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
    # the report remade from the bundle's data by today's code; nothing trained, analysed or plotted. Where
    # the checkout ships a paper bundle, the report sets the run beside it: its data are extracted and
    # each experiment it holds is judged by that experiment's scorecard rule (klvae.report.shipped)
    from klvae.report.compare import choose_reference

    paper = choose_reference("auto", fresh_checkout / "bundles")
    beside = set() if paper is None else {"report_shipped_extract", *(
        f"report_shipped_scorecard_{e}" for e in kb.read_bundle(paper)[0]["experiments"])}
    assert ran == {"bundle_extract", "report_e1", "report_e2", "report_e3", "report_scorecard_e1",
                   "report_scorecard_e2", "report_scorecard_e3", "report_scorecard", "report_methods",
                   "report_summary", "report_study", "report_compare", "report_made_by", "report_render",
                   "bundle_report", *beside}, ran
    assert not [p for p in (fresh_checkout / "results").iterdir() if p.name != "from_bundle"]
    assert not list(fresh_checkout.rglob("*.keras"))
    original = (quick_run / QUICK / "report/klvae.html").read_text()
    html = (out / "klvae.html").read_text()
    ours, theirs = _tables(html), _tables(original)
    assert "tbl-e1-losses" in theirs and theirs["tbl-e1-losses"] == ours["tbl-e1-losses"]
    for tid, table in theirs.items():  # every table of the run's report, byte for byte
        assert ours.get(tid) == table, tid
    assert set(ours) - set(theirs) == {"tbl-render"}
    for fig_id in ("fig-e1-scatter", "fig-e2-latent", "fig-e3-random"):
        assert re.search(rf'<figure[^>]*id="{fig_id}"[^>]*>.*?src="data:image/png;base64,', html, re.S), fig_id
    # title page and methods: where/when/backend/commit of the numbers, and the bundle it came from
    run = json.loads((quick_run / QUICK / "report/generated/run.json").read_text())
    assert "Where these numbers come from" in html and "Rendered from a results bundle" in html
    # the files named as the run named them (results/quick/...), not where the bundle was rendered
    methods = yaml.safe_load((out / "generated/methods.vars.yml").read_text())
    assert methods["env"]["benchmarks"] == f"`{QUICK}/benchmarks/`" and methods["results_dir"] == str(QUICK)
    assert f"<code>{QUICK}/benchmarks/</code>" in html
    assert "from_bundle" not in (out / "generated/made_by.vars.yml").read_text()
    assert archive.name in html and quick_bundle["manifest_sha256"] in html
    assert f"<strong>{run['keras_backend']}</strong> backend" in html and run["git_commit"] in html
    assert "Rendered from a results bundle" not in original and "Where these numbers come from" in original
    assert "?@" not in html and "{{<" not in html
    # every link and anchor works from where this report was rendered (the PDF, the code that made each table)
    assert not broken_links(out / "klvae.html"), broken_links(out / "klvae.html")
    assert 'href="klvae.pdf"' in html and re.search(r'href="[^"]*src/klvae/figures/e1\.py"', html)
    assert (out / "klvae.pdf").read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = " ".join(subprocess.run(["pdftotext", str(out / "klvae.pdf"), "-"], capture_output=True, text=True,
                                       check=True).stdout.split())
        assert "Rendered from a results bundle" in text and quick_bundle["manifest_sha256"][:16] in text
        assert "Table 4: E1 test-set losses" in text  # after the summary's three tables (verdicts, bases, headlines)


@pytest.mark.pipeline
def test_tampered_quick_bundle_is_refused_before_anything_is_extracted(quick_bundle, fresh_checkout, tmp_path):
    archive = Path(quick_bundle["path"])
    bad = rewrite(archive, tmp_path / "tampered.tar.gz", change=_flip_one_byte)
    proc, _ = _make_report(fresh_checkout, bad, tmp_path)
    assert proc.returncode != 0
    assert "member 'tables/e1_losses.csv' has SHA-256" in proc.stdout + proc.stderr
    assert not (fresh_checkout / kb.render_dir(bad)).exists()
    added = rewrite(archive, tmp_path / "added.tar.gz", add={"figures/e1/extra.png": b"\x89PNG"})
    proc, _ = _make_report(fresh_checkout, added, tmp_path)
    assert proc.returncode != 0 and "member 'figures/e1/extra.png' is not in the manifest" in proc.stdout + proc.stderr
    assert not (fresh_checkout / kb.render_dir(added)).exists()


@pytest.mark.pipeline
def test_the_report_sets_this_run_beside_a_shipped_bundle(quick_run, quick_bundle, tmp_path):
    """Section "This run against a shipped run" (klvae.report.compare), tried on two quick-profile
    runs: the session's run beside its own bundle gives a difference of 0 for every number and no
    changed verdict. The session's own report is set beside the repository's shipped paper bundle
    (report.compare_with: auto), or says that none is shipped."""
    import csv

    import yaml

    from conftest import QUICK_TARGETS, run_snakemake
    from klvae.report.compare import choose_reference

    own = (quick_run / QUICK / "report/klvae.html").read_text()
    paper = choose_reference("auto", REPO / "bundles")
    assert 'id="sec-compare"' in own
    if paper is None:
        assert "No shipped run to compare with" in own
    else:
        assert Path(paper).name in own and "No shipped run to compare with" not in own
    work = tmp_path / "work"
    shutil.copytree(quick_run, work, symlinks=True)
    archive = Path(quick_bundle["path"])
    proc = run_snakemake(work, *QUICK_TARGETS, "--config", f'report={{"compare_with": "{archive}"}}')
    ran = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
    assert "report_compare" in ran and not {r for r in ran if r.startswith(("e1_", "e2_", "e3_"))}, ran
    html = (work / QUICK / "report/klvae.html").read_text()
    table = re.search(r'<table[^>]*id="tbl-compare".*?</table>', html, re.S)
    assert table and archive.name in html and "No shipped run to compare with" not in html
    assert len(re.findall(r"<tr", table.group(0))) > 20  # E1 per c, E2 per strategy and z_dim, E3, verdict counts
    gen = work / QUICK / "report/generated"
    values = yaml.safe_load((gen / "compare.vars.yml").read_text())["compare"]
    assert values["available"] == "yes" and values["n_verdicts"] >= 30 and values["n_verdicts_changed"] == 0
    rows = list(csv.DictReader(open(gen / "compare.csv")))
    assert len(rows) == values["n_values"] > 100
    numeric = [r for r in rows if r["diff"] != ""]
    assert numeric and all(float(r["diff"]) == 0 for r in numeric), [r for r in numeric if float(r["diff"]) != 0][:5]
    assert {r["status"] for r in rows} <= {"n = 1", "in interval", "same"}
    # the scorecard's shipped column: the bundle's data judged anew by the experiments' own scorecard
    # functions -- here the same run, so the same verdicts and numbers, for every claim of every experiment
    assert {"report_shipped_extract", "report_scorecard"} <= ran
    assert {f"report_shipped_scorecard_{e}" for e in kb.EXPERIMENTS} <= ran, ran
    claims = list(csv.DictReader(open(work / QUICK / "tables/scorecard.csv")))
    assert claims and all((r["shipped_verdict"], r["shipped_ours"], r["shipped_n"]) == (r["verdict"], r["ours"], r["n"])
                          for r in claims), [r["id"] for r in claims if r["shipped_verdict"] != r["verdict"]]
    shipped = yaml.safe_load((gen / "scorecard.vars.yml").read_text())["scorecard"]["shipped"]
    assert shipped["n_changed"] == 0 and shipped["n_not_held"] == 0 and shipped["column"] == "shipped run"
    assert "judges the same claims for the shipped run" in " ".join(html.split())  # pandoc wraps lines
    # the summary counts the shipped run's verdicts beside this run's: here the same run, so the same counts
    assert "report_summary" in ran
    assert yaml.safe_load((gen / "summary.vars.yml").read_text())["summary"]["shipped_run"] == "yes"
    cells = {line.split("|")[1].strip(): line.split("|")[2:-1]
             for line in (gen / "summary_verdicts.md").read_text().splitlines()[2:]}
    assert "**all**, shipped run" in cells and len(cells) == 2 * len([k for k in cells if "shipped run" not in k])
    assert all(cells[k] == cells[f"{k}, shipped run"] for k in cells if "shipped run" not in k), cells
    # the session's own run is set beside the repository's shipped paper bundle, if there is one
    own_counts = (quick_run / QUICK / "report/generated/summary_verdicts.md").read_text()
    assert ("shipped run" in own_counts) == (paper is not None)


@pytest.mark.pipeline
def test_make_read_renders_the_newest_shipped_report_bundle_without_a_framework(fresh_checkout, tmp_path, request):
    """`make read` in a fresh checkout, with TensorFlow, Keras, JAX and PyTorch unimportable: it renders the
    report bundle the repository ships in bundles/ (passing over the backend-study bundle and the part
    bundles of bundles/paper/); where none is shipped yet, the session's quick-run bundle put there."""
    bundles = fresh_checkout / "bundles"
    try:
        shipped, copied = kb.newest_report_bundle(bundles), None
    except kb.BundleError:
        quick = Path(request.getfixturevalue("quick_bundle")["path"])
        shipped = copied = bundles / quick.name
        shutil.copy2(quick, shipped)
    assert kb.newest_report_bundle(bundles) == shipped
    shutil.rmtree(fresh_checkout / kb.render_dir(shipped), ignore_errors=True)  # another test may have rendered it
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "PYTHONPATH": str(_blocker(tmp_path / "blocked"))}
    proc = subprocess.run(["make", "-C", str(fresh_checkout), f"READ_VENV={venv}", "-o", f"{venv}/.klvae-installed",
                           "CORES=2", "read"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    out = fresh_checkout / kb.render_dir(shipped) / "report"
    assert f">>> report: {kb.render_dir(shipped)}/report/klvae.html" in proc.stdout
    assert (out / "klvae.html").stat().st_size > 0 and (out / "klvae.pdf").stat().st_size > 0
    ran = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
    assert "bundle_extract" in ran and not [r for r in ran if r.endswith(("_train", "_analyse"))]
    if shipped.name.startswith("klvae-paper-"):  # the shipped paper run is not set beside itself
        html = " ".join((out / "klvae.html").read_text().split())
        assert "This report is the shipped run&#8217;s own" in html or "This report is the shipped run’s own" in html
        assert "report_shipped_extract" not in ran and "report_compare" in ran
        assert "shipped run" not in (out / "generated" / "summary_verdicts.md").read_text()
    if copied is not None:
        copied.unlink()
        with pytest.raises(kb.BundleError, match="no complete report bundle"):
            kb.newest_report_bundle(bundles)


def test_the_records_default_checkout_is_this_repository():
    """The run record, the bundles and the study bundle name the commit of the checkout they run from
    (their modules find the repository root by their own place in src/klvae/)."""
    from klvae.bundle import compare, study

    head = provenance.git_commit(REPO)
    assert head != "not a git checkout"
    for module in (provenance, kb, compare, study):
        source = Path(module.__file__).read_text()
        depth = len(Path(module.__file__).resolve().relative_to(REPO).parts) - 1
        found = set(re.findall(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d)\]", source))
        assert found <= {str(depth)}, (module.__name__, found, depth)  # parents[depth] is the repository
