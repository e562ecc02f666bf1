"""The E2 chapter's generated fragment: compatibility matrix, equivalence, final losses, timings.

Every number comes from the pipeline's CSVs; the seeds' claims are quoted from
:mod:`klvae.experiments.e2` (``SEED_VII_LOG``) and SPEC.md.
"""

from __future__ import annotations

import math

import pandas as pd
import yaml

from klvae.formatting import BACKEND_TITLES, KERAS2
from klvae.io import write_text
from klvae.reference import E2_SEED_EPOCHS, SEED_VII_LOG
from klvae.report.tables import fmt_num, markdown_table


def _cell(text, limit: int = 170) -> str:
    text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")


def compatibility_table(summary_csv: str, long_csv: str) -> tuple[str, dict]:
    """The Keras 2 -> 3 matrix with its backend axis, as the pipeline produced it (rule ``e2_compatibility``).

    Two tables: the seeds' forms (Keras 2; Keras 3 on TensorFlow, JAX, PyTorch) and this
    project's Keras 3 forms per backend. The backends and their order are the summary's
    ``project_form_<backend>`` columns (:func:`klvae.strategies.compat.summary_table`).

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
    seed_cols = ["seed_form_keras2", *[f"seed_form_keras3_{b}" for b in backends]]
    rows = [[f"`{r.strategy}`", r.seed_post, *[_cell(getattr(r, c), 120) for c in seed_cols]] for r in t.itertuples()]
    md = markdown_table(["strategy", "post", f"Keras 2 (tf-keras {k2})",
                         *[f"Keras 3 {k3}, {BACKEND_TITLES.get(b, b)}" for b in backends]], rows,
                        f"Does each way of adding the KL loss run as the seed wrote it, under legacy Keras 2 and under "
                        f"Keras 3 on each backend? Each form was built and trained for a few steps on MNIST by rule "
                        f"`e2_compatibility`, each flavour and backend in a fresh process (TensorFlow {tf}; Keras 2 "
                        f"with `TF_USE_LEGACY_KERAS=1`; the seeds reach Keras through `tf.keras`, which is Keras 3 "
                        f"with the backend named by `KERAS_BACKEND`); a failure shows the stage, exception type and "
                        f"the first line of its message; n/a says why a cell could not be tried on the machine that "
                        f"made the table. {{{{< var made_by.e2_compatibility >}}}}",
                        "tbl-e2-compat", align="llllll")
    proj_cols = [f"project_form_{b}" for b in backends]
    rows = [[f"`{r.strategy}`", r.seed_post, *[_cell(getattr(r, c), 120) for c in proj_cols]] for r in t.itertuples()]
    md += "\n" + markdown_table(["strategy", "post", *[f"Keras 3, {BACKEND_TITLES.get(b, b)}" for b in backends]], rows,
                                "This project's Keras 3 form of each strategy (the code E2 trains) on each Keras 3 "
                                "backend, tried the same way by rule `e2_compatibility`. Post VIII's hand-written "
                                "`train_step` is a per-backend idiom (`tf.GradientTape`; a stateless "
                                "`jax.value_and_grad` step on JAX). {{< var made_by.e2_compatibility >}}",
                                "tbl-e2-compat-backends", align="lllll")
    variants = [r for r in t.itertuples() if getattr(r, "variants", "")]
    if variants:
        md += "\nVariants the pipeline also tried:\n\n" + "\n".join(
            f"- `{r.strategy}`: {_cell(r.variants, 600)}" for r in variants) + "\n"
    n_fail3 = int((~t["seed_form_keras3_tensorflow"].str.startswith("runs")).sum())
    n_fail2 = int((~t["seed_form_keras2"].str.startswith("runs")).sum())
    by_backend = {f"n_project_runs_{b}": int(t[f"project_form_{b}"].str.startswith("runs").sum()) for b in backends}
    return md, {"keras2": k2, "keras3": k3, "n_fail_keras3": n_fail3, "n_fail_keras2": n_fail2,
                "n_strategies": len(t), **by_backend}


def equivalence_table(csv: str) -> tuple[str, dict]:
    """Largest loss and gradient differences of each strategy against ``gradient_tape``."""
    t = pd.read_csv(csv)
    rows = [[str(r.z_dim), f"`{r.strategy}`", f"{r.abs_loss_diff:.1e}", f"{r.max_abs_grad_diff:.1e}",
             f"{r.max_rel_grad_diff:.1e}", "yes" if bool(r.loss_close) and bool(r.grads_allclose) else "**no**"]
            for r in t.itertuples() if r.strategy != r.reference]
    r0 = t.iloc[0]
    md = markdown_table(["z_dim", "strategy", "abs. loss difference", "max abs. gradient difference",
                         "max rel. gradient difference", "equal within tolerance"], rows,
                        f"Every strategy against `gradient_tape` with the same weights, the same batch of "
                        f"{int(r0.batch_size)} training images and the same reparameterization noise ε: the training "
                        f"loss and the gradients with respect to every encoder/decoder weight (relative difference: to "
                        f"the largest reference gradient of the same variable). Tolerance: rtol {r0.rtol:g}, atol "
                        f"{r0.atol:g} (float32). The latent biases were spread (scale {r0.latent_spread:g}) so that "
                        f"the KL part of the loss, fact · KL = {r0.fact_kl:.1e}, is far above the tolerance. "
                        f"{{{{< var made_by.e2_equivalence >}}}}",
                        "tbl-e2-equivalence", align="rlrrrl")
    ok = bool((t["loss_close"].astype(bool) & t["grads_allclose"].astype(bool)).all())
    return md, {"all_equivalent": "all" if ok else "not all",
                "max_abs_grad_diff": f"{t['max_abs_grad_diff'].max():.1e}"}


def metrics_table(csv: str, fact: float, seed_log_epochs: int | None = None) -> tuple[str, dict]:
    """Final test loss/BCE/KL per strategy and z_dim, with the seed's post VII log beside."""
    t = pd.read_csv(csv)
    rows = []
    for r in t.itertuples():
        rows.append([str(r.z_dim), f"`{r.strategy}`", f"{r.test_loss:.4f}", f"{r.test_reconstruction_loss:.4f}",
                     f"{r.test_kl_loss:.3f}", f"{r.test_loss_minus_reference:+.1e}", fmt_num(r.s_per_epoch_median, 1)])
    last = -1
    rows.append([str(SEED_VII_LOG["z_dim"]), f"seed VII, epoch {SEED_VII_LOG['epoch'][last]} (training log)",
                 f"{SEED_VII_LOG['loss'][last]:.4f}", f"{SEED_VII_LOG['reconstruction_loss'][last]:.4f}",
                 fmt_num(SEED_VII_LOG["kl_seed"][last], 3), "--", fmt_num(SEED_VII_LOG["s_per_epoch"], 0) + " (GPU)"])
    epochs, n_train, n_test = int(t["epochs"].iloc[0]), int(t["n_train"].iloc[0]), int(t["n_test"].iloc[0])
    md = markdown_table(["z_dim", "strategy", "test loss", "test BCE", "test KL_seed", "Δ loss vs gradient_tape",
                         "s/epoch"], rows,
                        f"Final losses of every strategy after {epochs} epochs on {n_train:,} training images "
                        f"(batch {{{{< var e2.batch_size >}}}}, fact = {fact:g}), evaluated on {n_test:,} test images "
                        f"by one shared evaluator with the same ε for every strategy. Loss = mean BCE + fact · KL_seed "
                        f"with KL_seed = −mean(1 + log σ² − μ² − σ²) (the seeds' form: mean over batch and latent "
                        f"dimensions, no ½). The last row is the seed's own training log at epoch "
                        f"{SEED_VII_LOG['epoch'][last]} (post VII, `model_add_loss`; its KL converted from fact · "
                        f"KL_seed = {SEED_VII_LOG['kl_scaled'][last]:g}); s/epoch is the median training epoch time of "
                        f"each job. {{{{< var made_by.e2_table >}}}}",
                        "tbl-e2-metrics", align="rlrrrrr")
    spread = t.groupby("z_dim")["test_loss"].agg(lambda s: s.max() - s.min())
    facts = []
    for z, g in t.groupby("z_dim"):
        groups = g.groupby("test_loss")["strategy"].apply(list)
        if len(groups) == 1:
            facts.append(f"At z_dim {z} all strategies end with the same test loss, to the last bit.")
        else:
            names = "; ".join("{" + ", ".join(f"`{n}`" for n in grp) + "}" for grp in groups)
            d = g["test_loss"].max() - g["test_loss"].min()
            facts.append(f"At z_dim {z} the strategies form {len(groups)} groups with bit-identical test losses "
                         f"({names}); the groups differ by {d:.1e} "
                         f"({100 * d / g['test_loss'].mean():.2f} % of the loss).")
    if seed_log_epochs and int(seed_log_epochs) > epochs:
        facts.append(f"Post VII's log runs to epoch {SEED_VII_LOG['epoch'][last]}: because the strategies train "
                     f"bit-identically, only its setting (`model_add_loss`, z_dim {SEED_VII_LOG['z_dim']}) was trained "
                     f"longer, to epoch {int(seed_log_epochs)}, in one more run (rule `e2_seed_log`); the scorecard "
                     f"compares that run's training log with the seed's (@tbl-scorecard-e2).")
    md += "\n" + "\n".join(f"- {f}" for f in facts) + "\n"
    return md, {"epochs": epochs, "n_train": f"{n_train:,}", "n_test": f"{n_test:,}",
                "max_loss_spread": f"{spread.max():.1e}",
                "seed_loss_epoch6": f"{SEED_VII_LOG['loss'][last]:.4f}"}


def timing_table(csv: str) -> tuple[str, dict]:
    """Median ms/step with spread, s/epoch and ratios, from rule ``e2_timing``."""
    t = pd.read_csv(csv)
    rows = [[f"`{r.strategy}`", r.seed_post, fmt_num(r.median_ms_per_step, 1),
             f"{r.min_ms_per_step:.0f}–{r.max_ms_per_step:.0f}", fmt_num(r.iqr_ms_per_step, 1),
             fmt_num(r.s_per_epoch, 1),
             f"{r.ratio_to_fastest:.2f}", f"{r.ratio_to_no_kl:.2f}", fmt_num(r.peak_rss_mb, 0)]
            for r in t.itertuples()]
    r0 = t.iloc[0]
    md = markdown_table(["strategy", "post", "median ms/step", "min–max", "IQR", "s/epoch", "× fastest", "× no-KL",
                         "peak RSS MB"], rows,
                        f"Training-step time per strategy and for the same network without KL (`no_kl`, a plain "
                        f"autoencoder), z_dim {int(r0.z_dim)}, batch {int(r0.batch_size)}: median over "
                        f"{int(r0.n_windows)} windows of {int(r0.steps_per_window)} steps, the windows interleaved "
                        f"across strategies (A B C … A B C …) after {int(r0.warmup_steps)} warm-up steps each; s/epoch "
                        f"= median × steps of an epoch of {int(r0.epoch_images):,} images. Peak RSS is that of the one "
                        f"benchmark process (all models loaded). {r0.cpu}, {int(r0.cpu_count)} logical CPUs, "
                        f"accelerator: {r0.gpu}, Keras {r0.keras} on {r0.backend} {r0.backend_version}, intra-op "
                        f"threads {int(r0.intra_op_threads)}, inter-op {int(r0.inter_op_threads)} (0: the backend's "
                        f"default), jit_compile {r0.jit_compile}. "
                        f"{{{{< var made_by.e2_timing >}}}}", "tbl-e2-timing", align="llrrrrrrr")
    kl = t[t["strategy"] != "no_kl"].set_index("strategy")
    worst_fastest = kl["ratio_to_fastest"].max()
    worst_nokl = kl["ratio_to_no_kl"].max()
    # The seeds' timing claims are judged once, in the scorecard (klvae.report.scorecard).
    claims = []
    claims.append(["target: every strategy within 1.10× of the fastest", f"worst {worst_fastest:.2f}×",
                   "met" if worst_fastest <= 1.10 else "**not met**"])
    claims.append(["target: every strategy within 1.05× of the no-KL baseline", f"worst {worst_nokl:.2f}×",
                   "met" if worst_nokl <= 1.05 else "**not met**"])
    md += "\n" + markdown_table(["claim", "ours", "verdict"], claims,
                                "This project's timing targets against our measurement (@tbl-e2-timing); the seeds' "
                                "timing claims are judged in the scorecard (@tbl-scorecard-e2). "
                                "{{< var made_by.e2_timing >}}",
                                "tbl-e2-timing-claims", align="lll")
    return md, {"worst_ratio_fastest": f"{worst_fastest:.2f}", "worst_ratio_no_kl": f"{worst_nokl:.2f}"}


def write_e2(compat_md: str, equivalence_md: str, metrics_md: str, timing_md: str, variables: str,
             compatibility: str, compatibility_long: str, equivalence: str, metrics: str, timing: str,
             settings: dict) -> None:
    """Rule ``report_e2``: the four E2 fragments and E2's variables (``settings`` = config ``e2``)."""
    values = {"batch_size": settings["batch_size"], "fact": f"{settings['fact']:g}",
              "z_dims": ", ".join(str(z) for z in settings["z_dims"]), "seed_epochs": E2_SEED_EPOCHS,
              "n_strategies_trained": len(settings["strategies"]),
              "latent_z_dim": settings["latent_z_dim"], "reconstruction_z_dim": settings["reconstruction_z_dim"]}
    for path, (md, v) in ((compat_md, compatibility_table(compatibility, compatibility_long)),
                          (equivalence_md, equivalence_table(equivalence)),
                          (metrics_md, metrics_table(metrics, settings["fact"], settings.get("seed_log_epochs"))),
                          (timing_md, timing_table(timing))):
        write_text(path, md)
        values.update(v)
    write_text(variables, yaml.safe_dump({"e2": values}, sort_keys=False, allow_unicode=True))
