"""The E2 chapter's generated fragments: compatibility matrix, equivalence, final losses, timings
(table bodies; their captions are in ``report/_e2.qmd``) and E2's variables.

Every number comes from the pipeline's CSVs; the posts' claims are quoted from
:mod:`klvae.experiments.e2` (``POST_VII_LOG``) and :mod:`klvae.reference`. Every string from them
(strategy names, versions, the compatibility trials' error messages, the machine) is text
(:mod:`klvae.report.escape`).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from klvae import reference as ref
from klvae.formatting import BACKEND_TITLES, KERAS2
from klvae.io import write_text
from klvae.reference import E2_POST_EPOCHS, POST_VII_LOG
from klvae.report import includes
from klvae.report.escape import Markdown, md_code, md_text, write_variables
from klvae.report.scorecard import (
    BASIS_OTHER_HARDWARE,
    BASIS_TOLERANCE,
    MNIST_TRAIN,
    Judgement,
    Spread,
    Tolerance,
    claim_row,
    config_tolerance,
    is_nonnegative,
    join_notes,
    judge,
    judge_ratio,
    judge_value,
    load_spreads,
    run_backend,
    same_backend,
    speed_note,
    tolerance_reason,
    too_wide,
    unmet_settings,
    write_part,
)
from klvae.report.tables import MISSING, fmt_num, markdown_table


def _cell(text, limit: int = 170) -> str:
    """A matrix cell's text (an error message, say) on one line, cut at ``limit`` characters; text,
    not Markdown (:func:`~klvae.report.tables.markdown_table` escapes it)."""
    text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def compatibility_table(summary_csv: str, long_csv: str) -> tuple[dict[str, str], dict]:
    """The Keras 2 -> 3 matrix with its backend axis, as the pipeline produced it (rule ``e2_compatibility``).

    Two table bodies: the posts' forms (Keras 2; Keras 3 on TensorFlow, JAX, PyTorch) and this
    project's Keras 3 forms per backend. The backends and their order are the summary's
    ``project_form_<backend>`` columns (:func:`klvae.strategies.compat.summary_table`).

    Returns:
        ``({"compat": md, "compat_backends": md, "compat_variants": md, "compat_variants_list": md},
        variables)``: the two pipe tables (captions in ``report/_e2.qmd``); the generated include
        of ``report/_e2_compat_variants.qmd`` (the lead-in of the variants the pipeline also tried;
        empty when there are none, :mod:`klvae.report.includes`) and its list, one item per
        strategy with variants; and the variables ``keras2``, ``keras3``,
        ``tensorflow`` (versions), ``n_fail_keras3``, ``n_fail_keras2``, ``n_strategies`` and
        ``n_project_runs_<backend>``.

    Raises:
        ValueError: the summary has no ``project_form_<backend>`` column.
    """
    t = pd.read_csv(summary_csv, keep_default_na=False)
    backends = [c.removeprefix("project_form_") for c in t.columns if c.startswith("project_form_")]
    if not backends:
        raise ValueError(f"{summary_csv}: no project_form_<backend> column; expected the summary table of rule "
                         "e2_compatibility (klvae.strategies.compat.summary_table)")
    long = pd.read_csv(long_csv, keep_default_na=False)
    tried = long[long["runs"] != "n/a"]
    versions = {f: tried.loc[tried["keras_flavour"] == f, "keras_version"]
                for f in dict.fromkeys(long["keras_flavour"])}
    k2 = next((v.iloc[0] for f, v in versions.items() if f == KERAS2 and len(v)), "not installed")
    k3 = next((v.iloc[0] for f, v in versions.items() if f.startswith("Keras 3") and len(v)), "?")
    tf = next((v for v in long["tensorflow"] if v), "not installed")
    post_cols = ["post_form_keras2", *[f"post_form_keras3_{b}" for b in backends]]
    rows = [[md_code(r.strategy), r.post, *[_cell(getattr(r, c), 120) for c in post_cols]] for r in t.itertuples()]
    compat = markdown_table(["strategy", "post", f"Keras 2 (tf-keras {k2})",
                             *[f"Keras 3 {k3}, {BACKEND_TITLES.get(b, b)}" for b in backends]], rows, align="llllll")
    proj_cols = [f"project_form_{b}" for b in backends]
    rows = [[md_code(r.strategy), r.post, *[_cell(getattr(r, c), 120) for c in proj_cols]] for r in t.itertuples()]
    per_backend = markdown_table(["strategy", "post", *[f"Keras 3, {BACKEND_TITLES.get(b, b)}" for b in backends]],
                                 rows, align="lllll")
    # a list as long as the matrix has variants (none in some runs); its lead-in is in report/
    variants = [r for r in t.itertuples() if getattr(r, "variants", "")]
    listed = "".join(f"- {md_code(r.strategy)}: {md_text(_cell(r.variants, 600))}\n" for r in variants)
    chooser = includes.fragment("e2_compat_variants.md", variants=bool(variants))
    n_fail3 = int((~t["post_form_keras3_tensorflow"].str.startswith("runs")).sum())
    n_fail2 = int((~t["post_form_keras2"].str.startswith("runs")).sum())
    by_backend = {f"n_project_runs_{b}": int(t[f"project_form_{b}"].str.startswith("runs").sum()) for b in backends}
    return ({"compat": compat, "compat_backends": per_backend, "compat_variants": chooser,
             "compat_variants_list": listed},
            {"keras2": k2, "keras3": k3, "tensorflow": tf, "n_fail_keras3": n_fail3, "n_fail_keras2": n_fail2,
             "n_strategies": len(t), **by_backend})


def equivalence_table(csv: str) -> tuple[dict[str, str], dict]:
    """Largest loss and gradient differences of each strategy against ``gradient_tape``.

    Returns:
        ``({"equivalence": md}, variables)``: the table body and ``all_equivalent``,
        ``max_abs_grad_diff`` and the caption's settings ``equivalence_batch_size``,
        ``equivalence_rtol``, ``equivalence_atol``, ``equivalence_latent_spread`` and
        ``equivalence_fact_kl`` (fact · KL of the test batch).
    """
    t = pd.read_csv(csv)
    rows = [[str(r.z_dim), md_code(r.strategy), f"{r.abs_loss_diff:.1e}", f"{r.max_abs_grad_diff:.1e}",
             f"{r.max_rel_grad_diff:.1e}",
             "yes" if bool(r.loss_close) and bool(r.grads_allclose) else Markdown("**no**")]
            for r in t.itertuples() if r.strategy != r.reference]
    r0 = t.iloc[0]
    md = markdown_table(["z_dim", "strategy", "abs. loss difference", "max abs. gradient difference",
                         "max rel. gradient difference", "equal within tolerance"], rows, align="rlrrrl")
    ok = bool((t["loss_close"].astype(bool) & t["grads_allclose"].astype(bool)).all())
    return {"equivalence": md}, {
        "all_equivalent": "all" if ok else "not all", "max_abs_grad_diff": f"{t['max_abs_grad_diff'].max():.1e}",
        "equivalence_batch_size": int(r0.batch_size), "equivalence_rtol": f"{r0.rtol:g}",
        "equivalence_atol": f"{r0.atol:g}", "equivalence_latent_spread": f"{r0.latent_spread:g}",
        "equivalence_fact_kl": f"{r0.fact_kl:.1e}"}


def metrics_table(csv: str, post_log_epochs: int | None = None) -> tuple[dict[str, str], dict]:
    """Final test loss/BCE/KL per strategy and z_dim, with post VII's log beside.

    Returns:
        ``({"metrics": md, "metrics_groups": md}, variables)``: the two table bodies (captions in
        ``report/_e2.qmd``): the final losses, and per z_dim the groups of strategies that end with
        bit-identical test losses, how many groups, and the largest minus the smallest test loss,
        also as a share of their mean; the variables ``epochs``, ``n_train``, ``n_test``,
        ``max_loss_spread``, ``n_z_dims``, ``n_z_dims_identical`` and ``z_dims_identical`` (the
        z_dims where every strategy ends with the same test loss, ``none`` if there is none),
        ``post_loss_epoch6``, the post
        log's ``vii_log_epoch``, ``vii_log_z_dim`` and ``vii_log_kl_scaled`` (fact · KL_mean), and
        ``vii_run_epochs``: the epochs of our longest ``model_add_loss`` run at that z_dim
        (``post_log_epochs`` where rule ``e2_post_log`` trained it longer; ``n/a`` if not trained).
    """
    t = pd.read_csv(csv)
    rows = []
    for r in t.itertuples():
        rows.append([str(r.z_dim), md_code(r.strategy), f"{r.test_loss:.4f}", f"{r.test_reconstruction_loss:.4f}",
                     f"{r.test_kl_loss:.3f}", f"{r.test_loss_minus_reference:+.1e}", fmt_num(r.s_per_epoch_median, 1)])
    last = -1
    rows.append([str(POST_VII_LOG["z_dim"]), f"post VII, epoch {POST_VII_LOG['epoch'][last]} (training log)",
                 f"{POST_VII_LOG['loss'][last]:.4f}", f"{POST_VII_LOG['reconstruction_loss'][last]:.4f}",
                 fmt_num(POST_VII_LOG["kl_mean"][last], 3), MISSING,
                 fmt_num(POST_VII_LOG["s_per_epoch"], 0) + " (GPU)"])
    epochs, n_train, n_test = int(t["epochs"].iloc[0]), int(t["n_train"].iloc[0]), int(t["n_test"].iloc[0])
    md = markdown_table(["z_dim", "strategy", "test loss", "test BCE", "test KL_mean", "Δ loss vs gradient_tape",
                         "s/epoch"], rows, align="rlrrrrr")
    spread = t.groupby("z_dim")["test_loss"].agg(lambda s: s.max() - s.min())
    # one row per z_dim: the groups of strategies with bit-identical test losses (by loss, lowest first)
    group_rows, identical = [], []
    for z, g in t.groupby("z_dim"):
        groups = g.groupby("test_loss")["strategy"].apply(list)
        names = "; ".join("{" + ", ".join(md_code(n) for n in grp) + "}" for grp in groups)
        d = g["test_loss"].max() - g["test_loss"].min()
        group_rows.append([str(z), Markdown(names), str(len(groups)), f"{d:.1e}",
                           f"{100 * d / g['test_loss'].mean():.2f} %"])
        if len(groups) == 1:
            identical.append(str(z))
    groups_md = markdown_table(["z_dim", "groups of strategies with bit-identical test losses", "groups",
                                "largest − smallest test loss", "share of the mean test loss"], group_rows,
                               align="rlrrr")
    vii = t[(t["strategy"] == "model_add_loss") & (t["z_dim"] == POST_VII_LOG["z_dim"])]
    vii_epochs = ("n/a" if vii.empty else
                  max(int(vii["epochs"].max()), int(post_log_epochs) if post_log_epochs else 0))
    return {"metrics": md, "metrics_groups": groups_md}, {
        "epochs": epochs, "n_train": f"{n_train:,}", "n_test": f"{n_test:,}", "max_loss_spread": f"{spread.max():.1e}",
        "n_z_dims": len(group_rows), "n_z_dims_identical": len(identical),
        "z_dims_identical": ", ".join(identical) or "none",
        "post_loss_epoch6": f"{POST_VII_LOG['loss'][last]:.4f}", "vii_log_epoch": POST_VII_LOG["epoch"][last],
        "vii_log_z_dim": POST_VII_LOG["z_dim"], "vii_log_kl_scaled": f"{POST_VII_LOG['kl_scaled'][last]:g}",
        "vii_run_epochs": vii_epochs}


def timing_table(csv: str) -> tuple[dict[str, str], dict]:
    """Median ms/step with spread, s/epoch and ratios, from rule ``e2_timing``.

    Returns:
        ``({"timing": md, "timing_claims": md}, variables)``: the timing table's body, the body
        of this project's timing targets against it, and the variables ``worst_ratio_fastest``,
        ``worst_ratio_no_kl`` and the caption's settings and machine, ``timing_<column>`` of the
        timing CSV's first row (``z_dim``, ``batch_size``, ``windows``, ``steps_per_window``,
        ``warmup_steps``, ``epoch_images``, ``cpu``, ``logical_cpus``, ``gpu``, ``keras``,
        ``backend``, ``backend_version``, ``intra_op_threads``, ``inter_op_threads``, ``jit_compile``).
    """
    t = pd.read_csv(csv)
    rows = [[md_code(r.strategy), r.post, fmt_num(r.median_ms_per_step, 1),
             f"{r.min_ms_per_step:.0f}–{r.max_ms_per_step:.0f}", fmt_num(r.iqr_ms_per_step, 1),
             fmt_num(r.s_per_epoch, 1),
             f"{r.ratio_to_fastest:.2f}", f"{r.ratio_to_no_kl:.2f}", fmt_num(r.peak_rss_mb, 0)]
            for r in t.itertuples()]
    r0 = t.iloc[0]
    md = markdown_table(["strategy", "post", "median ms/step", "min–max", "IQR", "s/epoch", "× fastest", "× no-KL",
                         "peak RSS MB"], rows, align="llrrrrrrr")
    kl = t[t["strategy"] != "no_kl"].set_index("strategy")
    worst_fastest = kl["ratio_to_fastest"].max()
    worst_nokl = kl["ratio_to_no_kl"].max()
    # The posts' timing claims are judged once, in the scorecard (klvae.report.scorecard).
    claims = []
    claims.append(["target: every strategy within 1.10× of the fastest", f"worst {worst_fastest:.2f}×",
                   "met" if worst_fastest <= 1.10 else Markdown("**not met**")])
    claims.append(["target: every strategy within 1.05× of the no-KL baseline", f"worst {worst_nokl:.2f}×",
                   "met" if worst_nokl <= 1.05 else Markdown("**not met**")])
    targets = markdown_table(["claim", "ours", "verdict"], claims, align="lll")
    machine = {"z_dim": int(r0.z_dim), "batch_size": int(r0.batch_size), "windows": int(r0.n_windows),
               "steps_per_window": int(r0.steps_per_window), "warmup_steps": int(r0.warmup_steps),
               "epoch_images": f"{int(r0.epoch_images):,}", "cpu": str(r0.cpu), "logical_cpus": int(r0.cpu_count),
               "gpu": str(r0.gpu), "keras": str(r0.keras), "backend": str(r0.backend),
               "backend_version": str(r0.backend_version), "intra_op_threads": int(r0.intra_op_threads),
               "inter_op_threads": int(r0.inter_op_threads), "jit_compile": str(r0.jit_compile)}
    return {"timing": md, "timing_claims": targets}, {
        "worst_ratio_fastest": f"{worst_fastest:.2f}", "worst_ratio_no_kl": f"{worst_nokl:.2f}",
        **{f"timing_{k}": v for k, v in machine.items()}}


def write_e2(compat_md: str, compat_backends_md: str, compat_variants_md: str, compat_variants_list_md: str,
             equivalence_md: str, metrics_md: str, metrics_groups_md: str, timing_md: str, timing_claims_md: str,
             variables: str, compatibility: str, compatibility_long: str, equivalence: str, metrics: str, timing: str,
             settings: dict) -> None:
    """Rule ``report_e2``: E2's table bodies and lists (``settings`` = config ``e2``).

    Writes the pipe tables ``compat_md`` and ``compat_backends_md`` (:func:`compatibility_table`),
    ``equivalence_md`` (:func:`equivalence_table`), ``metrics_md`` and ``metrics_groups_md``
    (:func:`metrics_table`: per z_dim, which strategies end bit-identically), ``timing_md`` and
    ``timing_claims_md`` (:func:`timing_table`), whose captions are in ``report/_e2.qmd``; the
    generated include ``compat_variants_md`` (``report/_e2_compat_variants.qmd`` when the
    pipeline also tried variants, else empty) and the list it includes, ``compat_variants_list_md``;
    and E2's variables (``variables``, YAML under ``e2``: the settings, the captions' and the text's numbers).
    """
    values = {"batch_size": settings["batch_size"], "fact": f"{settings['fact']:g}",
              "z_dims": ", ".join(str(z) for z in settings["z_dims"]), "post_epochs": E2_POST_EPOCHS,
              "n_strategies_trained": len(settings["strategies"]),
              "latent_z_dim": settings["latent_z_dim"], "reconstruction_z_dim": settings["reconstruction_z_dim"]}
    paths = {"compat": compat_md, "compat_backends": compat_backends_md, "compat_variants": compat_variants_md,
             "compat_variants_list": compat_variants_list_md, "equivalence": equivalence_md, "metrics": metrics_md,
             "metrics_groups": metrics_groups_md,
             "timing": timing_md, "timing_claims": timing_claims_md}
    for texts, v in (compatibility_table(compatibility, compatibility_long), equivalence_table(equivalence),
                     metrics_table(metrics, settings.get("post_log_epochs")), timing_table(timing)):
        for name, text in texts.items():
            write_text(paths[name], text)
        values.update(v)
    write_variables(variables, {"e2": values})


# ----------------------------------------------------------------------------------------------
# E2's scorecard part (rule report_scorecard_e2)

def _runs(e2_runs: list[str]) -> dict[tuple[str, int], dict]:
    """Training records by (strategy, z_dim); of two runs of one pair (rule ``e2_post_log``'s
    longer run beside the main one) the one with more epochs."""
    runs: dict[tuple[str, int], dict] = {}
    for path in e2_runs:
        m = json.loads(Path(path).read_text())
        key = (m["strategy"], int(m["z_dim"]))
        if key not in runs or int(m["epochs"]) > int(runs[key]["epochs"]):
            runs[key] = m
    return runs


def _e2_unmet(run: dict, epochs: int) -> list[str]:
    return unmet_settings([("epochs", int(run["epochs"]), epochs, True),
                           ("training images", int(run["n_train"]), MNIST_TRAIN, True),
                           ("batch", int(run["batch_size"]), ref.E2_POST_BATCH_SIZE, False),
                           ("KL weight fact", float(run["fact"]), ref.E2_POST_FACT, False)])


def vii_rows(e2_runs: list[str], e2_histories: list[str], tol: dict,
             spreads: Mapping[tuple[str, str], Spread] | None = None) -> list[dict]:
    """Post VII's training log (z_dim 12, ``model_add_loss``, epochs 3-6: loss, BCE, KL_mean;
    :data:`klvae.reference.POST_VII_LOG`) against our ``model_add_loss`` history at the same
    epoch, the last one both have (epoch 6 once we train 6 or more). Where several histories
    of that pair are given (rule ``e2_post_log``), the longest is used. One run: the basis is
    the same-backend spread of the claim in ``spreads`` (by ``("E2", id)``) where there is one,
    else the tolerance."""
    spreads = spreads or {}
    log, z = ref.POST_VII_LOG, ref.POST_VII_LOG["z_dim"]
    run = _runs(e2_runs).get(("model_add_loss", z))
    candidates = [h for h in (pd.read_csv(p) for p in e2_histories)
                  if {"model_add_loss"} == set(h["strategy"]) and set(h["z_dim"]) == {z}]
    hist = max(candidates, key=lambda h: int(h["epoch"].max()), default=None)
    quantities = (("loss", "loss", "loss (mean BCE + fact · KL_mean)", config_tolerance(tol, "loss_rel"), log["loss"]),
                  ("bce", "reconstruction_loss", "BCE", config_tolerance(tol, "loss_rel"), log["reconstruction_loss"]),
                  ("kl", "kl_loss", "KL_mean (unscaled)", config_tolerance(tol, "kl_rel"), log["kl_mean"]))
    if run is None or hist is None:
        return [claim_row(f"e2-vii-log-{k}", "E2", f"VII, z_dim {z}, epoch {log['epoch'][-1]}: {name}", "--",
                     f"{post[-1]:.{3 if k == 'kl' else 4}f}", "--", "KL_mean" if k == "kl" else "nats/pixel",
                     Judgement("paper profile only", f"tolerance {t.text}", basis_kind=BASIS_TOLERANCE),
                     f"`model_add_loss` at z_dim {z} not trained in this run", n=0)
                for k, _, name, t, post in quantities]
    first, final = log["epoch"][0], log["epoch"][-1]
    last = int(hist["epoch"].max())
    our_epoch = min(last, final)  # the same epoch as the post's log where we have it
    post_epoch = max(our_epoch, first)
    i = log["epoch"].index(post_epoch)
    ours = hist.set_index("epoch").loc[our_epoch]
    unmet = _e2_unmet(run, final)
    compared = f"training log, epoch {our_epoch}, `model_add_loss`"
    rows = []
    for k, col, name, tolerance, post in quantities:
        digits = 3 if k == "kl" else 4
        note = join_notes(unmet,
                          f"ours: epoch {our_epoch}, the post's: {post_epoch}" if our_epoch != post_epoch else "",
                     f"post: fact · KL_mean = {log['kl_scaled'][i]:g}, ÷ fact" if k == "kl" else "")
        unit = "KL_mean" if k == "kl" else "nats/pixel"
        j = judge_value(post[i], float(ours[col]), math.nan, 1, tolerance, unmet,
                        spread=spreads.get(("E2", f"e2-vii-log-{k}")), nonnegative=is_nonnegative(unit))
        rows.append(claim_row(f"e2-vii-log-{k}", "E2", f"VII, z_dim {z}, epoch {post_epoch}: {name}", compared,
                         f"{post[i]:.{digits}f}", float(ours[col]), unit, j, note, digits=digits))
    return rows


def latent_rows(e2_latents: list[str], e2_runs: list[str], tol: dict) -> list[dict]:
    """Post IV's latent extent at z_dim 2 (:data:`klvae.reference.POST_LATENT_EXTENT`) against the
    ``q``..``1 - q`` quantiles of our test-set z_mean per axis (``end_layer``, post IV's strategy,
    when it was trained; the post's box leaves out outliers such as its 6s). One run: each end
    must lie within the tolerance. The tolerance's relative width is taken against the extent's
    width (``hi - lo``; a coordinate's distance from 0 is no size): ``inconclusive`` instead of
    ``reproduced`` above :data:`klvae.stats.MAX_REL_HALF_WIDTH`."""
    data = {str(d["strategy"]): d for d in (np.load(p) for p in e2_latents)}
    strategy = "end_layer" if "end_layer" in data else sorted(data)[0]
    z = data[strategy]["z_mean"]
    q = tol["latent_quantile"]
    lo, hi = np.quantile(z, [q, 1 - q], axis=0)
    run = _runs(e2_runs).get((strategy, int(z.shape[1])))
    unmet = _e2_unmet(run, ref.E2_POST_EPOCHS) if run else ["no training record"]
    epochs = f", epoch {int(run['epochs'])}" if run else ""
    tolerance = Tolerance("abs", float(tol["latent_abs"]), "per end")
    rows = []
    for i, axis in enumerate(("x", "y")):
        s_lo, s_hi = ref.POST_LATENT_EXTENT[axis]
        ok = tolerance.within(lo[i], s_lo) and tolerance.within(hi[i], s_hi)
        rel = tolerance.amount / (s_hi - s_lo)
        wide = ok and too_wide(rel)
        j = Judgement(judge(ok, unmet, inconclusive=wide), f"tolerance {tolerance.text}, single run",
                      basis_kind=BASIS_TOLERANCE, rel_width=rel,
                      reason=tolerance_reason(tolerance.text, s_hi - s_lo) if wide and not unmet else "")
        rows.append(claim_row(f"e2-iv-latent-{axis}", "E2", f"IV, z_dim 2: z_mean[{i}] ({axis}) range",
                         f"test z_mean, {100 * q:g}–{100 * (1 - q):g} % quantiles, {md_code(strategy)}{epochs}",
                         f"{s_lo:g} to {s_hi:g}", f"{lo[i]:.1f} to {hi[i]:.1f}", "latent units", j,
                         join_notes(unmet, f"post: {ref.POST_LATENT_EXTENT_EPOCHS} epochs at batch 128")))
    return rows


def _window_ratios(windows: pd.DataFrame | None, num: str, den: str | list[str]) -> np.ndarray:
    """Per-window ratio of one strategy's ms/step to another's, or to the median of several
    (``den`` a list: the comparator fixed in advance), in each window (interleaved windows: same
    conditions). Empty without windows or where a strategy was not timed."""
    if windows is None:
        return np.array([])
    w = windows.pivot_table(index="window", columns="strategy", values="ms_per_step")
    dens = [den] if isinstance(den, str) else list(den)
    if num not in w or not dens or any(d not in w for d in dens):
        return np.array([])
    return (w[num] / w[dens].median(axis=1, skipna=False)).dropna().to_numpy(float)


def timing_rows(e2_timing: str, tol: dict, e2_timing_windows: str | None = None) -> list[dict]:
    """Posts IV and VII's timings (:data:`klvae.reference.POST_VII_LOG`, ``POST_VII_SLOWDOWN``,
    ``POST_IV_S_PER_EPOCH``, all on a GTX 960) against rule ``e2_timing``'s medians.

    Ratios of strategies carry across machines and are judged on their spread over the timing
    windows (each window times every strategy back to back: the windows are the ratio's
    replicates) by :func:`judge_ratio`. Post VII's ``model.add_loss()`` slowdown is
    ``model_add_loss`` divided by a comparator fixed before the data are seen: in each window
    the median ms/step of the other strategies with a KL term (``no_kl`` left out), never the
    fastest one picked afterwards. Absolute times were measured on the post's GPU and are
    ``not comparable`` on any other machine; the note says whether ours is faster or slower.
    """
    t = pd.read_csv(e2_timing, keep_default_na=False).set_index("strategy")
    windows = pd.read_csv(e2_timing_windows) if e2_timing_windows else None
    gpu = str(t["gpu"].iloc[0]) if "gpu" in t.columns else ""
    on_gpu = gpu.strip().lower() not in ("", "none", "nan")
    gpu = md_text(gpu)  # the note is Markdown: the machine's names are text
    cpu = f"{md_text(t['cpu'].iloc[0])}, {md_text(t['cpu_count'].iloc[0])} logical CPUs"
    where = f"ours: {gpu}" if on_gpu else f"ours: {cpu}, no GPU" + (" recorded" if "gpu" not in t.columns else "")
    n_windows = int(t["n_windows"].iloc[0]) if "n_windows" in t.columns else 1
    batch = int(t["batch_size"].iloc[0]) if "batch_size" in t.columns else ref.E2_POST_BATCH_SIZE
    compared = f"median of {n_windows} windows, batch {batch}"
    device = ref.POST_VII_LOG["device"]
    rows = []

    def absolute(id_, claim, post, strategy, col, unit):
        if strategy not in t.index:
            return
        ours = float(t.loc[strategy, col])
        rows.append(claim_row(id_, "E2", claim, compared, f"{post:g}", ours, unit,
                         Judgement("not comparable", f"other hardware (post: {device})",
                                   basis_kind=BASIS_OTHER_HARDWARE),
                         f"{speed_note(post, ours, unit, higher_is_faster=False)}; post: {device}; {where}",
                         digits=1))

    def ratio(id_, claim, post_text, post_lo, post_hi, num, den, unit, note, comparator=""):
        medians = t["median_ms_per_step"].astype(float)
        single = float(medians[num] / (medians[den] if isinstance(den, str) else medians[den].median()))
        j, ours, sd, n = judge_ratio(_window_ratios(windows, num, den), single, post_lo, post_hi,
                                     config_tolerance(tol, "ratio_abs", "abs"))
        rows.append(claim_row(id_, "E2", claim, f"per window, {n} windows" if n else compared, post_text, ours, unit,
                         replace(j, basis=j.basis + comparator), f"{note}; {where}", sd=sd,
                         n=max(n, 1)))

    log = ref.POST_VII_LOG
    absolute("e2-vii-ms", f"VII: `model_add_loss` step time, batch {ref.E2_POST_BATCH_SIZE}", log["ms_per_step"],
             "model_add_loss", "median_ms_per_step", "ms/step")
    others = [s for s in t.index if s not in ("no_kl", "model_add_loss")]
    if "model_add_loss" in t.index and others:
        lo, hi = ref.POST_VII_SLOWDOWN
        names = ", ".join(md_code(s) for s in others)
        ratio("e2-vii-slowdown", "VII: `model.add_loss()` slowdown (\"in certain conditions\")", f"{lo:g}–{hi:g}",
              lo, hi, "model_add_loss", others, "× median of the others",
              f"comparator fixed in advance: in each window the median ms/step of {names} (`no_kl` left out); "
              "reproduced if the interval meets the post's range and is no wider than it, inconclusive if wider",
              f"; ÷ median of the other {len(others)} strategies" + (" per window" if windows is not None else ""))
    iv = ref.POST_IV_S_PER_EPOCH
    absolute("e2-iv-end-s", "IV: end layer epoch time", iv["end_layer"], "end_layer", "s_per_epoch", "s/epoch")
    absolute("e2-iv-encoder-s", "V: encoder layer epoch time (\"10 to 11\")", iv["encoder_layer"], "encoder_layer",
             "s_per_epoch", "s/epoch")
    if {"end_layer", "encoder_layer"} <= set(t.index):
        post = iv["end_layer"] / iv["encoder_layer"]
        ratio("e2-iv-ratio", "IV/V: end layer ÷ encoder layer time", f"{post:.2f}", post, post, "end_layer",
              "encoder_layer", "ratio", f"post: {iv['end_layer']:g} ÷ 10–11 s/epoch")
    return rows


def write_e2_scorecard(table: str, e2_runs: list[str], e2_histories: list[str], e2_latents: list[str],
                       e2_timing: str, tolerances: dict, profile: str, e2_timing_windows: str | None = None,
                       spreads=None, backend: str | None = None) -> None:
    """Rule ``report_scorecard_e2``: post VII's log (:func:`vii_rows`), post IV's latent extent
    (:func:`latent_rows`) and the timings (:func:`timing_rows`) as E2's scorecard part.

    Args:
        table: output CSV (the scorecard's columns, one row per claim).
        e2_runs, e2_histories: every E2 training job's ``metrics.json`` and ``history.csv``
            (rule ``e2_post_log``'s longer run included where the profile has it).
        e2_latents: rule ``e2_analyse``'s latent ``.npz`` files at z_dim 2.
        e2_timing, e2_timing_windows: rule ``e2_timing``'s summary and per-window CSVs.
        tolerances: the validated ``scorecard`` section of the config.
        profile: the config's profile name.
        spreads, backend: optional same-setting spreads and this run's Keras backend (default:
            the one rule ``e2_timing`` recorded, :func:`klvae.report.scorecard.run_backend`).
    """
    book = same_backend(load_spreads(spreads), backend or run_backend(e2_timing))
    rows = (vii_rows(e2_runs, e2_histories, tolerances, book) + latent_rows(e2_latents, e2_runs, tolerances)
            + timing_rows(e2_timing, tolerances, e2_timing_windows))
    write_part(table, rows, profile)
