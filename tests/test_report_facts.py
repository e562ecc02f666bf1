"""The facts listed under the chapters' tables: Python computes their numbers (variables), the
chapter (report/*.qmd) words them. Checked on small tables, through the chapter's own text."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from conftest import REPO
from klvae.report.render import expand_shortcodes

POST = {0.0: 141.54, 0.02: 143.99, 1.0: 160.0}  # the post's test losses of the rows below (any numbers)


def _e1_table(path: Path, coefficients=(0.0, 0.02, 1.0), kl=(38.0, 12.5, 13.0), replicates=1) -> Path:
    n = len(coefficients)
    frame = pd.DataFrame({
        "c": coefficients, "loss": [150.0, 148.25, 170.5][:n], "reconstruction_loss": [110.0, 134.0, 157.5][:n],
        "kl_loss": kl, "loss_sd": [0.5] * n, "reconstruction_loss_sd": [0.5] * n, "kl_loss_sd": [0.5] * n,
        "replicates": [replicates] * n, "post_loss": [POST.get(c, np.nan) for c in coefficients],
        "post_reconstruction": [100.0] * n, "post_kl": [40.0] * n, "epochs": [2] * n, "n_train": [3000] * n,
        "n_test": [1000] * n})
    frame.to_csv(path, index=False)
    return path


def _latents(folder: Path, spreads: dict[float, float]) -> list[str]:
    paths = []
    for c, sd in spreads.items():
        z = np.array([[-sd, -sd], [sd, sd]])  # population sd of each axis: sd
        path = folder / f"latent_c{c:g}.npz"
        np.savez(path, z_mean=z, c=np.float64(c))
        paths.append(str(path))
    return paths


class Others(dict):
    """Variables of a chapter that a test does not set: each stands for its own name (``<key>``)."""

    def __contains__(self, key):
        return True

    def __missing__(self, key):
        return f"<{key}>"


def _chapter(name: str, variables: dict, fragments: dict[str, str], tmp: Path, others: bool = False) -> str:
    """A chapter of report/ as the pandoc path expands it, with the given variables and fragments
    (every made_by.<rule> it names stands for itself; with ``others``, every other generated
    fragment of report/ is empty)."""
    build = tmp / "build"
    shutil.copytree(REPO / "report", build)
    (build / "_generated").mkdir()
    if others:
        for qmd in (REPO / "report").glob("*.qmd"):
            for frag in re.findall(r"\{\{< include /?_generated/(\S+) >\}\}", qmd.read_text()):
                (build / "_generated" / frag).write_text("")
    for frag, text in fragments.items():
        (build / "_generated" / frag).parent.mkdir(parents=True, exist_ok=True)
        (build / "_generated" / frag).write_text(text)
    text = (build / name).read_text()
    made_by = {r: f"(rule {r})" for r in re.findall(r"\{\{< var made_by\.([a-z0-9_]+) >\}\}", text)}
    return expand_shortcodes(build / name, {**variables, "made_by": made_by})


def _e1_chapter(tmp: Path, coefficients, kl, spreads, replicates=1) -> tuple[dict, str, str]:
    from klvae.report.e1 import write_e1

    settings = {"batch_size": 128, "learning_rate": 0.001, "reference_samples": 5000, "manifold_n": 30,
                "manifold_limit": 3.0, "intermediate_dim": 512}
    table = _e1_table(tmp / "e1_losses.csv", coefficients, kl, replicates)
    write_e1(str(tmp / "e1_losses.md"), str(tmp / "e1.vars.yml"), str(table), _latents(tmp, spreads), settings)
    values = yaml.safe_load((tmp / "e1.vars.yml").read_text())
    body = (tmp / "e1_losses.md").read_text()
    return values["e1"], body, _chapter("_e1.qmd", values, {"e1_losses.md": body}, tmp)


def test_e1_facts_are_worded_in_the_chapter_with_the_runs_numbers(tmp_path):
    e1, body, raw = _e1_chapter(tmp_path, (0.0, 0.02, 1.0), (38.0, 12.5, 13.0), {0.0: 3.5, 0.02: 1.25, 1.0: 0.75},
                                replicates=3)
    text = " ".join(raw.split())
    assert "{#tbl-" not in body and body.startswith("| c | loss |") and "150.00 ± 0.50" in body
    assert (e1["kl_steps"], e1["kl_falls"], e1["kl_not_falling"]) == (2, 1, "0.02 → 1")
    assert ("The KL divergence on the test set is 38.00 nats at $c$ = 0 and 13.00 nats at $c$ = 1; from one "
            "coefficient to the next larger one it falls 1 of 2 times (steps where it rises or stays: 0.02 → 1).") \
        in text
    assert "The reconstruction loss is lowest at $c$ = 0 (110.00 nats) and highest at $c$ = 1 (157.50 nats)." in text
    assert "The lowest total test loss, 148.25 nats, is reached at $c$ = 0.02." in text
    assert "is 3.50 at $c$ = 0 and 0.75 at $c$ = 1; at $c$ = 1 it is 0.75." in text
    # |ours - post|: 8.46, 4.26, 10.50 -> the largest at c = 1, the median 8.46
    assert ("The largest difference from the post's test loss is 10.50 nats, at $c$ = 1 (ours 170.50, post 160.00); "
            "the median absolute difference is 8.46 nats.") in text
    # the table, then its caption with the run's counts
    assert re.search(r"\| 1 \| 170\.50 ± 0\.50 .*\|\n\n+: E1 test-set losses \(nats per image, 1,000 test images\) "
                     r"after 2 epochs on 3,000 training images, .*\(rule e1_table\) \{#tbl-e1-losses\}\n", raw)
    assert "Training runs per coefficient, each from its own random seed: 3 (with several" in text
    assert "{{<" not in text


def test_e1_facts_hold_without_c_1_and_without_the_posts_numbers(tmp_path):
    e1, _, raw = _e1_chapter(tmp_path, (0.5, 2.0), (5.0, 1.0), {0.5: 0.9, 2.0: 0.4})
    text = " ".join(raw.split())
    assert e1["kl_not_falling"] == "none" and "it falls 1 of 1 times (steps where it rises or stays: none)" in text
    assert "at $c$ = 1 it is n/a (c = 1 not trained)." in text
    assert "The largest difference from the post's test loss is n/a nats" in text
    assert "Training runs per coefficient, each from its own random seed: 1 (" in text


def _e2_metrics(path: Path, epochs: int, losses: dict[tuple[int, str], float]) -> Path:
    rows = [{"z_dim": z, "strategy": s, "test_loss": v, "test_reconstruction_loss": v - 0.01, "test_kl_loss": 1.5,
             "test_loss_minus_reference": 0.0, "s_per_epoch_median": 12.0, "epochs": epochs, "n_train": 1024,
             "n_test": 512} for (z, s), v in losses.items()]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _e2_chapter(tmp: Path, losses: dict[tuple[int, str], float], epochs: int = 1) -> tuple[dict, str, str]:
    """E2's metrics fragments and variables from ``losses`` (:func:`klvae.report.e2.metrics_table`, post
    VII's log run for 6 epochs) and report/_e2.qmd expanded with them (its other numbers stand for their names)."""
    from klvae.report.e2 import metrics_table

    tmp.mkdir(parents=True, exist_ok=True)
    texts, v = metrics_table(str(_e2_metrics(tmp / "m.csv", epochs, losses)), post_log_epochs=6)
    fragments = {"e2_metrics.md": texts["metrics"], "e2_metrics_groups.md": texts["metrics_groups"]}
    raw = _chapter("_e2.qmd", {"e2": Others(v), "post_claims": Others()}, fragments, tmp, others=True)
    return v, texts["metrics_groups"], raw


def test_e2_groups_of_bit_identical_losses_per_z_dim_and_the_post_logs_run(tmp_path):
    losses = {(2, "end_layer"): 0.25, (2, "model_add_loss"): 0.25, (12, "end_layer"): 0.2,
              (12, "model_add_loss"): 0.21}
    v, groups, raw = _e2_chapter(tmp_path, losses)
    text = " ".join(raw.split())
    # the groups' table: one row per z_dim, the groups lowest loss first, their distance (0.01 of a mean 0.205)
    assert groups.splitlines()[0] == ("| z_dim | groups of strategies with bit-identical test losses | groups | "
                                      "largest − smallest test loss | share of the mean test loss |")
    assert groups.splitlines()[2:] == ["| 2 | {`end_layer`, `model_add_loss`} | 1 | 0.0e+00 | 0.00 % |",
                                       "| 12 | {`end_layer`}; {`model_add_loss`} | 2 | 1.0e-02 | 4.88 % |"]
    assert (v["n_z_dims"], v["n_z_dims_identical"], v["z_dims_identical"]) == (2, 1, "2")
    assert ("At each z_dim the strategies fall into groups whose test losses are bit-identical (@tbl-e2-groups). "
            "At 1 of the 2 z_dims all strategies end with the same test loss, to the last bit (z_dim: 2); where "
            "they form several groups, @tbl-e2-groups gives how far apart the groups end.") in text
    # the body, then its caption (report/_e2.qmd) with the rule that made the numbers
    assert re.search(r"\| 12 \| \{`end_layer`\}; \{`model_add_loss`\} \|.*\|\n\n+: The strategies at each z_dim "
                     r"grouped by their final test loss in @tbl-e2-metrics: .*\(rule e2_table\) \{#tbl-e2-groups\}\n",
                     raw)
    assert "a single group means that every strategy ends with the same test loss, to the last bit" in text
    # post VII's log: 6 epochs, z_dim 12; the longer run (rule e2_post_log) trained it for 6 epochs
    assert (v["vii_log_epoch"], v["vii_log_z_dim"], v["vii_run_epochs"], v["epochs"]) == (6, 12, 6, 1)
    assert ("Post VII's log runs to epoch 6. Because the strategies train bit-identically, a profile that trains "
            "fewer epochs trains only that log's setting (`model_add_loss`, z_dim 12) longer, in one more run (rule "
            "`e2_post_log`); here that setting was trained for 6 epochs") in text
    assert "{{<" not in text


def test_e2_groups_when_no_or_every_z_dim_ends_bit_identically(tmp_path):
    split = {(2, "end_layer"): 0.25, (2, "model_add_loss"): 0.26, (12, "end_layer"): 0.2,
             (12, "model_add_loss"): 0.21, (12, "gradient_tape"): 0.2}
    v, groups, raw = _e2_chapter(tmp_path / "split", split)
    assert (v["n_z_dims_identical"], v["z_dims_identical"]) == (0, "none")
    assert "| 12 | {`end_layer`, `gradient_tape`}; {`model_add_loss`} | 2 | 1.0e-02 |" in groups
    assert ("At 0 of the 2 z_dims all strategies end with the same test loss, to the last bit (z_dim: none);"
            in " ".join(raw.split()))
    same = {(2, "end_layer"): 0.25, (2, "model_add_loss"): 0.25, (12, "end_layer"): 0.2, (12, "model_add_loss"): 0.2}
    v, groups, raw = _e2_chapter(tmp_path / "same", same)
    assert (v["n_z_dims_identical"], v["z_dims_identical"], v["max_loss_spread"]) == (2, "2, 12", "0.0e+00")
    assert "At 2 of the 2 z_dims all strategies end with the same test loss, to the last bit (z_dim: 2, 12);" in \
        " ".join(raw.split())


def test_e2_post_log_run_epochs(tmp_path):
    from klvae.report.e2 import metrics_table

    losses = {(2, "end_layer"): 0.25, (2, "model_add_loss"): 0.25, (12, "end_layer"): 0.2,
              (12, "model_add_loss"): 0.21}
    # a profile that trains longer than the post's log needs no extra run: its own epochs
    _, v = metrics_table(str(_e2_metrics(tmp_path / "m37.csv", 37, losses)), post_log_epochs=6)
    assert v["vii_run_epochs"] == 37
    _, v = metrics_table(str(_e2_metrics(tmp_path / "m0.csv", 1, {(2, "end_layer"): 0.25})), post_log_epochs=6)
    assert v["vii_run_epochs"] == "n/a"  # model_add_loss at z_dim 12 not trained


def _compat_csvs(tmp: Path, variants: str) -> tuple[str, str]:
    """A compatibility summary (rule e2_compatibility) of two strategies on TensorFlow, JAX and PyTorch, the
    second with ``variants``, and its long table's versions."""
    from klvae.formatting import KERAS2, KERAS3

    tmp.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([
        {"strategy": "end_layer", "post": "IV", "post_form_keras2": "runs", "post_form_keras3_tensorflow": "runs",
         "post_form_keras3_jax": "runs", "post_form_keras3_torch": "runs", "project_form_tensorflow": "runs",
         "project_form_jax": "runs", "project_form_torch": "runs", "variants": ""},
        {"strategy": "model_add_loss", "post": "VII", "post_form_keras2": "runs",
         "post_form_keras3_tensorflow": "fails at build: ValueError", "post_form_keras3_jax": "fails at build",
         "post_form_keras3_torch": "n/a", "project_form_tensorflow": "runs", "project_form_jax": "fails at fit",
         "project_form_torch": "n/a", "variants": variants},
    ]).to_csv(tmp / "summary.csv", index=False)
    pd.DataFrame([{"runs": "yes", "keras_flavour": KERAS2, "keras_version": "2.19.0", "tensorflow": "2.19.0"},
                  {"runs": "no", "keras_flavour": KERAS3, "keras_version": "3.10.0", "tensorflow": "2.19.0"}]
                 ).to_csv(tmp / "long.csv", index=False)
    return str(tmp / "summary.csv"), str(tmp / "long.csv")


def test_e2_variants_the_pipeline_tried_are_listed_under_the_chapters_lead_in(tmp_path):
    from klvae.report.e2 import compatibility_table

    texts, v = compatibility_table(*_compat_csvs(tmp_path / "with", "symbolic add_loss on a layer: <b>runs</b>"))
    assert texts["compat_variants"] == "{{< include /_e2_compat_variants.qmd >}}\n"  # klvae.report.includes
    assert texts["compat_variants_list"] == ("- `model_add_loss`: symbolic add_loss on a layer: "
                                            "&#60;b&#62;runs&#60;/b&#62;\n")
    fragments = {f"e2_{k}.md": texts[k] for k in ("compat_variants", "compat_variants_list")}
    raw = _chapter("_e2.qmd", {"e2": Others(v), "post_claims": Others()}, fragments, tmp_path / "with", others=True)
    assert re.search(r"\(rule e2_compatibility\) \{#tbl-e2-compat-backends\}\n+.*Variants the pipeline also tried:\n\n"
                     r"- `model_add_loss`: symbolic add_loss on a layer: &#60;b&#62;runs&#60;/b&#62;\n+"
                     r"## Same weights, same noise, same gradients", raw, re.S)
    # the numbers of the text above the matrix
    text = " ".join(raw.split())
    assert ("of the 2 strategies, 1 fail as written under Keras 3.10.0 on TensorFlow and 0 under tf-keras 2.19.0"
            in text)
    assert "(it runs on 2 of 2 strategies with TensorFlow and 1 with JAX here)" in text

    texts, v = compatibility_table(*_compat_csvs(tmp_path / "without", ""))
    assert texts["compat_variants"] == texts["compat_variants_list"] == ""
    fragments = {f"e2_{k}.md": texts[k] for k in ("compat_variants", "compat_variants_list")}
    raw = _chapter("_e2.qmd", {"e2": Others(v), "post_claims": Others()}, fragments, tmp_path / "without", others=True)
    assert "Variants the pipeline" not in raw and "{{<" not in raw
