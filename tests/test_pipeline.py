"""A real quick-profile run of the whole workflow: data -> E1 training -> figures -> report.

The run happens once per test session (fixture ``quick_run`` in conftest.py) in a fresh
folder; these tests then check what a user would look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import JAX_LEFT_OUT, QUICK, QUICK_TARGETS, SWITCHED_MARKER, run_settings, run_snakemake

pytestmark = pytest.mark.pipeline

COEFS = ["0", "0.02", "0.1", "0.5", "1", "2", "10", "20"]  # the quick profile's (the JAX switch: run_settings)
E1_PANELS = ["reference_scatter", "scatter_panel", "manifold_panel", "loss_curves"]
E1_REPORT_FIGURES = ["fig-e1-reference", "fig-e1-scatter", "fig-e1-manifold", "fig-e1-curves"]
E2_STRATEGIES = ["end_layer", "encoder_layer", "tensor_transfer", "model_add_loss", "gradient_tape"]
E2_REPORT_FIGURES = ["fig-e2-curves-2", "fig-e2-curves-12", "fig-e2-latent", "fig-e2-recon"]
E2_REPORT_TABLES = ["tbl-e2-compat", "tbl-e2-equivalence", "tbl-e2-metrics", "tbl-e2-timing", "tbl-e2-timing-claims"]
E3_REPORT_FIGURES = ["fig-e3-random", "fig-e3-ae-points", "fig-e3-recon", "fig-e3-latents"]
E3_REPORT_TABLES = ["tbl-e3-data", "tbl-e3-metrics", "tbl-e3-latents", "tbl-e3-bench"]
REPORT_FIGURES = E1_REPORT_FIGURES + E2_REPORT_FIGURES + E3_REPORT_FIGURES


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_data_is_canonical_and_provenanced(pipeline_run):
    prov = json.loads((pipeline_run / QUICK / "data/mnist_provenance.json").read_text())
    assert prov["source"] == "pypi"
    assert prov["sha256"] == "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
    assert prov["test_label_counts"] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    import numpy as np
    with np.load(pipeline_run / QUICK / "data/mnist.npz") as d:
        assert d["x_train"].shape == (60000, 28, 28) and d["x_train"].dtype == np.uint8
        assert d["x_test"].shape == (10000, 28, 28) and d["y_test"].dtype == np.uint8


def test_every_coefficient_trained_from_shared_init(pipeline_run):
    e1 = pipeline_run / QUICK / "e1/r0"
    assert (e1 / "init.weights.h5").is_file()
    coefs, _ = run_settings(pipeline_run)
    assert sorted(p.name for p in e1.glob("c*")) == sorted(f"c{c}" for c in coefs)
    for c in coefs:
        for name in ("model.keras", "history.csv", "metrics.json", "latent.npz", "grid.npz"):
            assert (e1 / f"c{c}" / name).is_file(), f"missing {QUICK}/e1/r0/c{c}/{name}"
        metrics = json.loads((e1 / f"c{c}" / "metrics.json").read_text())
        assert metrics["c"] == float(c) and metrics["n_train"] == 3000 and metrics["n_test"] == 1000
        hist = pd.read_csv(e1 / f"c{c}" / "history.csv")
        assert list(hist.columns) == ["epoch", "c", "kl_loss", "loss", "reconstruction_loss"]
        assert (hist["c"] == float(c)).all()
        assert len(hist) == 2  # quick profile: 2 epochs


def test_e1_table_has_ours_beside_the_seeds(pipeline_run):
    t = pd.read_csv(pipeline_run / QUICK / "tables/e1_losses.csv")
    assert [f"{c:g}" for c in t["c"]] == run_settings(pipeline_run)[0]
    # loss = reconstruction + c * KL on the test set (same forward pass)
    assert ((t["reconstruction_loss"] + t["c"] * t["kl_loss"] - t["loss"]).abs() < 1e-2 * t["loss"]).all()
    assert t["post_loss"].tolist()[0] == pytest.approx(141.54)
    # with c = 0 nothing restrains the KL term: it must be the largest of all runs
    assert t["kl_loss"].idxmax() == 0


def test_every_e1_figure_is_a_png(pipeline_run):
    fig = pipeline_run / QUICK / "figures/e1"
    coefs, _ = run_settings(pipeline_run)
    names = E1_PANELS + [f"scatter_c{c}" for c in coefs] + [f"manifold_c{c}" for c in coefs]
    for name in names:
        assert _is_png(fig / f"{name}.png"), f"{name}.png missing or not a PNG"


def test_benchmarks_recorded_per_rule(pipeline_run):
    bench = pipeline_run / QUICK / "benchmarks"  # in the profile's own folder
    assert (bench / "e1_train" / "r0_c0.02.tsv").is_file()
    assert (bench / "mnist_canonical.tsv").is_file()


def test_html_report_is_self_contained_with_all_figures_and_the_table(quick_run):
    html = (quick_run / QUICK / "report/klvae.html").read_text()
    for fig_id in REPORT_FIGURES:
        m = re.search(rf'<figure[^>]*id="{fig_id}"[^>]*>(.*?)</figure>', html, re.S)
        assert m, f"figure {fig_id} missing from the HTML"
        assert 'src="data:image/png;base64,' in m.group(1), f"{fig_id} is not embedded"
        assert re.search(r"<figcaption>.*?Figure(\s|&nbsp;)\d+:", m.group(1), re.S)
        assert "rule" in m.group(1)  # every caption names the rule that made it
    table = re.search(r'<table[^>]*id="tbl-e1-losses".*?</table>', html, re.S)
    assert table, "E1 table missing"
    assert len(re.findall(r"<tr", table.group(0))) == 1 + len(COEFS)
    assert "141.54" in table.group(0)  # the post's c=0 loss beside ours
    assert "?@" not in html, "an unresolved cross-reference"
    assert "{{<" not in html, "an unexpanded Quarto shortcode"
    assert "Quick profile" in html  # the banner


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium_or_skip() -> str:
    """Chromium's path; without it the test is skipped here and fails in CI (which installs it)."""
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return chromium


def _launch(p, chromium: str, tmp_path: Path):
    """Headless Chromium with a fresh profile and the flags an offline, sandbox-less machine needs."""
    return p.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=chromium, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run", "--disable-sync"])


def test_html_opens_in_headless_chromium_with_every_image_and_reference(quick_run, tmp_path):
    chromium = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _launch(p, chromium, tmp_path)
        page = browser.new_page()
        page.goto((quick_run / QUICK / "report/klvae.html").as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
        refs = page.evaluate("Array.from(document.querySelectorAll('a[href^=\"#fig-\"], a[href^=\"#tbl-\"]'))"
                             ".map(a => [a.getAttribute('href'), a.textContent.trim(), "
                             "!!document.getElementById(a.getAttribute('href').slice(1))])")
        page.screenshot(path=str(quick_run / QUICK / "report/screenshot.png"), full_page=False)
        browser.close()
    assert len(images) >= len(REPORT_FIGURES)
    assert all(complete and width > 0 for complete, width, _ in images), images
    assert refs, "no cross-references found"
    for href, text, target_exists in refs:
        assert re.fullmatch(r"(Figure|Table)\s\d+", text), (href, text)
        assert target_exists, f"reference {href} points nowhere"


def test_pdf_has_captions_and_the_e1_table(quick_run):
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is required in CI")
        pytest.skip("pdftotext not installed (apt-get install poppler-utils)")
    pdf = quick_run / QUICK / "report/klvae.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    for n in range(1, len(REPORT_FIGURES) + 1):
        assert f"Figure {n}:" in flat
    assert "samples from the two-dimensional standard normal" in flat
    assert "Table 4: E1 test-set losses" in flat  # after the summary's three tables (verdicts, bases, headlines)
    for _, post_loss in (("0.02", "143.99"), ("20", "203.31")):
        assert post_loss in flat
    assert "??" not in flat


def test_rebuilding_one_figure_does_not_retrain(pipeline_run):
    """`snakemake <figure>` after deleting it (or forcing it) reruns only plotting."""
    target = str(QUICK / "figures/e1/scatter_panel.png")
    models = sorted((pipeline_run / QUICK / "e1").glob("r*/c*/model.keras"))
    assert len(models) == len(run_settings(pipeline_run)[0])
    before = {m: m.stat().st_mtime_ns for m in models}
    (pipeline_run / target).unlink()
    dry = run_snakemake(pipeline_run, target, "--dry-run", "--quiet", "rules")
    assert "e1_scatter_panel" in dry.stdout and "e1_train" not in dry.stdout, dry.stdout
    run_snakemake(pipeline_run, target)
    run_snakemake(pipeline_run, target, "--forcerun", "e1_scatter_panel")
    assert _is_png(pipeline_run / target)
    assert {m: m.stat().st_mtime_ns for m in models} == before


def test_e2_outputs_for_every_strategy_and_z_dim(pipeline_run):
    _, z_dims = run_settings(pipeline_run)
    assert sorted(p.name for p in (pipeline_run / QUICK / "e2").glob("z*")) == sorted(f"z{z}" for z in z_dims)
    for z in z_dims:
        for strategy in E2_STRATEGIES:
            d = pipeline_run / QUICK / f"e2/z{z}/{strategy}"
            for name in ("model.keras", "history.csv", "metrics.json", "latent.npz", "recon.npz"):
                assert (d / name).is_file(), f"missing {d / name}"
    fig = pipeline_run / QUICK / "figures/e2"
    for name in [f"loss_curves_z{z}" for z in z_dims] + ["latent_panel", "reconstructions"] + \
            [f"latent_{s}" for s in E2_STRATEGIES]:
        assert _is_png(fig / f"{name}.png"), name


def test_e2_compatibility_matrix_was_produced_by_trying(pipeline_run):
    long = pd.read_csv(pipeline_run / QUICK / "tables/e2_compatibility_long.csv", keep_default_na=False)
    flavours = set(long["keras_flavour"])
    assert len(flavours) == 2, flavours  # Keras 3 and legacy Keras 2, each really imported
    assert set(long["backend"]) == {"tensorflow", "jax", "torch"}  # the backend axis
    post3 = long[(long["form"] == "post") & long["keras_flavour"].str.startswith("Keras 3")]
    tf3 = post3[post3["backend"] == "tensorflow"].set_index("strategy")
    # symbolic model.add_loss() is gone in Keras 3: the post's form must not run there
    assert tf3.loc["model_add_loss", "runs"] == "no" and tf3.loc["model_add_loss", "exception"]
    # post VIII's train_step and post VI's per-output losses train one objective from the same seeded
    # weights and batches: compiled as written (the worker runs with the trainings' TensorFlow settings,
    # klvae.backend.tensorflow_determinism) their logged losses agree bit for bit. With Grappler's
    # arithmetic optimizer on, post VIII's total was rewritten in some compilations (one float32 ulp
    # higher in one of two clean CI runs).
    assert tf3.loc["gradient_tape", "runs"] == tf3.loc["tensor_transfer", "runs"] == "yes"
    assert tf3.loc["gradient_tape", "final_loss"] == tf3.loc["tensor_transfer", "final_loss"], tf3["final_loss"]
    # the posts' tf-op code does not run on Keras 3's JAX backend, with the exact error recorded
    jax3 = post3[post3["backend"] == "jax"]
    assert (jax3["runs"] == "no").all() and (jax3["exception"] != "").all()
    project = long[long["form"] == "project"]
    for backend in ("tensorflow", "jax"):  # this project's forms run on both installed backends
        runs = project[project["backend"] == backend].set_index("strategy")
        assert (runs.loc[E2_STRATEGIES, "runs"] == "yes").all(), runs
    torch = long[long["backend"] == "torch"]  # PyTorch is not installed here: said, not hidden
    assert (torch["runs"] == "n/a").all() and torch["message"].str.contains("torch is not installed").all()


def test_every_training_job_recorded_its_backend(pipeline_run, request):
    backend = "jax" if "jax" in pipeline_run.name else "tensorflow"
    for metrics in sorted((pipeline_run / QUICK / "e2").glob("z*/*/metrics.json")):
        assert json.loads(metrics.read_text())["version_backend"] == backend, metrics
    switched = pipeline_run / SWITCHED_MARKER
    if backend == "tensorflow":  # the JAX switch leaves out the benchmarks and the report (JAX_LEFT_OUT)
        timing = pd.read_csv(pipeline_run / QUICK / "tables/e2_timing.csv")
        assert set(timing["backend"]) == {backend}
        assert json.loads((pipeline_run / QUICK / "report/backend.json").read_text())["keras_backend"] == backend
    else:  # the run switched from TensorFlow: every trained file was made again on JAX
        t_switch = float(switched.read_text())
        trained = [p for pattern in ("*.keras", "history.csv", "metrics.json", "latent.npz", "grid.npz")
                   for p in (pipeline_run / QUICK).glob(f"e[123]/**/{pattern}") if "post_log" not in p.parts]
        coefs, z_dims = run_settings(pipeline_run)
        assert len(trained) >= 3 * (len(coefs) + len(E2_STRATEGIES) * len(z_dims) + 2), len(trained)
        stale = [str(p.relative_to(pipeline_run)) for p in trained if p.stat().st_mtime < t_switch]
        assert not stale, f"left from the TensorFlow run: {stale}"
        log = (pipeline_run / "snakemake.log").read_text()
        assert "rule e2_compatibility:" not in log and "rule mnist_canonical:" not in log  # kept
        assert not any(f"rule {rule}:" in log for rule in JAX_LEFT_OUT + ["report_render"])  # left out
        # E1's report fragment and scorecard part follow the trainings only: made again on JAX
        assert "rule report_e1:" in log and "rule report_scorecard_e1:" in log


def test_e2_equivalence_and_metrics_tables(pipeline_run):
    eq = pd.read_csv(pipeline_run / QUICK / "tables/e2_equivalence.csv")
    assert set(eq["strategy"]) >= set(E2_STRATEGIES) - {"gradient_tape"}
    assert eq["loss_close"].all() and eq["grads_allclose"].all()
    m = pd.read_csv(pipeline_run / QUICK / "tables/e2_metrics.csv")
    assert len(m) == len(run_settings(pipeline_run)[1]) * len(E2_STRATEGIES)
    # same init, same data order, same eps in the evaluator: the strategies agree closely
    assert (m.groupby("z_dim")["test_loss"].agg(lambda s: s.max() - s.min()) < 1e-3).all()


def test_e2_timing_table(quick_run):
    """The E2 timing benchmark (TensorFlow run only: the JAX switch leaves the benchmarks out)."""
    t = pd.read_csv(quick_run / QUICK / "tables/e2_timing.csv")
    assert set(t["strategy"]) == set(E2_STRATEGIES) | {"no_kl"}
    assert (t["median_ms_per_step"] > 0).all() and (t["min_ms_per_step"] <= t["max_ms_per_step"]).all()


def test_e2_tables_in_html(quick_run):
    html = (quick_run / QUICK / "report/klvae.html").read_text()
    for tbl in E2_REPORT_TABLES:
        assert re.search(rf'<table[^>]*id="{tbl}"', html), f"table {tbl} missing from the HTML"


def test_e3_runs_on_the_labelled_standin(pipeline_run):
    manifest = json.loads((pipeline_run / QUICK / "data/faces/manifest.json").read_text())
    assert manifest["standin"] is True and "not CelebA" in manifest["data_label"]
    import numpy as np
    train = np.load(pipeline_run / QUICK / "data/faces/train.npy", mmap_mode="r")
    assert train.dtype == np.uint8 and train.shape == (256, 96, 96, 3)
    for name in ("random_faces", "ae_random_points", "reconstructions", "ae_latent_histogram"):
        assert _is_png(pipeline_run / QUICK / f"figures/e3/{name}.png"), name
    for kind in ("vae", "ae"):
        assert (pipeline_run / QUICK / f"e3/{kind}/model.keras").is_file()
    metrics = pd.read_csv(pipeline_run / QUICK / "tables/e3_metrics.csv")
    assert set(metrics["model"]) == {"vae", "ae"}
    ae = metrics.set_index("model").loc["ae"]
    assert ae["fact"] == 0


def test_e3_chapter_has_banner_figures_and_tables(quick_run):
    html = (quick_run / QUICK / "report/klvae.html").read_text()
    assert "Synthetic stand-in data, not CelebA" in html
    for tbl in E3_REPORT_TABLES:
        assert re.search(rf'<table[^>]*id="{tbl}"', html), f"table {tbl} missing from the HTML"
    for fig_id in E3_REPORT_FIGURES:
        m = re.search(rf'<figure[^>]*id="{fig_id}"[^>]*>(.*?)</figure>', html, re.S)
        assert m and "stand-in" in m.group(1), f"{fig_id} missing or its caption does not name the stand-in"


def test_every_job_recorded_where_its_time_went(pipeline_run):
    """workflow/scripts/call.py writes <log>.phases.json per job (klvae.bench.phases): start-up,
    imports, compilation and training sum to the job's time; E1's trainings have their epochs."""
    from klvae.bench.phases import PHASES, summarize

    rows = {r["rule"]: r for r in summarize(pipeline_run / QUICK / "logs")}
    train = rows["e1_train"]
    assert train["jobs"] == 8 and train["import_s"] > 0 and train["train_s"] > 0
    records = [json.loads(p.read_text()) for p in (pipeline_run / QUICK / "logs").rglob("*.phases.json")]
    e1 = [r for r in records if r["rule"] == "e1_train"]
    assert all(r["epochs"] == 2 for r in e1)  # the quick profile's 2 epochs, both run in the job
    for r in records:
        assert r["total_s"] == pytest.approx(sum(r[p] for p in PHASES), abs=0.01), r


def test_html_reading_comforts_in_headless_chromium(quick_run, tmp_path):
    """The pandoc path's HTML: the table of contents beside the text on a wide screen (in the flow on a
    narrow one), a link to the PDF at the top, section anchors, figures that open full size on a click."""
    chromium = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    html = quick_run / QUICK / "report/klvae.html"
    with sync_playwright() as p:
        browser = _launch(p, chromium, tmp_path)
        page = browser.new_page()
        page.set_viewport_size({"width": 1600, "height": 1000})
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        toc = page.evaluate("(() => { const n = document.getElementById('TOC'); const r = n.getBoundingClientRect();"
                            " return [getComputedStyle(n).position, r.right,"
                            " document.querySelector('section[id]').getBoundingClientRect().left]; })()")
        pdf_links = page.evaluate("Array.from(document.querySelectorAll('a[href=\"klvae.pdf\"]')).length")
        anchors = page.evaluate("Array.from(document.querySelectorAll('a.anchor')).map(a => "
                                "!!document.getElementById(a.getAttribute('href').slice(1)))")
        img = page.locator("figure img").first
        before = img.bounding_box()
        img.click()
        zoomed = page.evaluate("document.querySelector('figure img').classList.contains('zoomed')")
        after = img.bounding_box()
        page.locator("figure img.zoomed").click()
        closed = not page.evaluate("document.querySelector('figure img').classList.contains('zoomed')")
        page.set_viewport_size({"width": 900, "height": 1000})
        narrow = page.evaluate("getComputedStyle(document.getElementById('TOC')).position")
        browser.close()
    position, toc_right, text_left = toc
    assert position == "fixed" and toc_right <= text_left, toc  # beside the text, not over it
    assert narrow == "static"
    assert pdf_links == 1 and (html.parent / "klvae.pdf").is_file()
    assert len(anchors) >= 6 and all(anchors), anchors  # every chapter heading, each pointing at its section
    assert zoomed and closed and after["width"] > before["width"], (before, after)


def test_snakemakes_own_report_lists_every_figure_by_experiment(quick_run, tmp_path):
    """`make snakemake-report`: every figure rule's PNG is flagged with report(), one category per experiment."""
    import zipfile

    out = tmp_path / "snakemake-report.zip"
    run_snakemake(quick_run, QUICK_TARGETS[0], "--report", str(out))
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        text = "".join(z.read(n).decode("utf-8", "replace") for n in names if n.endswith((".html", ".js")))
    pngs = [n for n in names if n.endswith(".png")]
    expected = {f"scatter_c{c}.png" for c in COEFS} | {f"latent_{s}.png" for s in E2_STRATEGIES} | {
        "scatter_panel.png", "manifold_panel.png", "random_faces.png", "ae_latent_histogram.png"}
    assert expected <= {Path(n).name for n in pngs}, expected - {Path(n).name for n in pngs}
    for category in ("E1: KL coefficient sweep (MNIST)", "E2: five ways to add the KL loss",
                     "E3: faces, VAE against AE"):
        assert category in text, category
