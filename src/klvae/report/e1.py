"""E1's report fragment (the KL-coefficient post): the loss table beside the post's and E1's report variables,
among them the numbers of the facts listed under the table. Every number comes from pipeline files.

The ``.qmd`` chapters in ``report/`` hold the prose, the table captions and the facts' sentences;
they pull numbers in with Quarto's ``{{< var key >}}`` shortcode and table bodies with
``{{< include /_generated/<name>.md >}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from klvae import reference
from klvae.formatting import fmt_coef
from klvae.io import c_of, write_text
from klvae.report.escape import Markdown, md_text, write_variables
from klvae.report.scorecard import (
    BASIS_TOLERANCE,
    MNIST_TEST,
    MNIST_TRAIN,
    Judgement,
    Spread,
    claim_row,
    config_tolerance,
    is_nonnegative,
    join_notes,
    judge_value,
    load_spreads,
    same_backend,
    unmet_settings,
    write_part,
)
from klvae.report.tables import fmt_num, markdown_table

#: Written where a fact's number cannot be computed (a coefficient not trained, no post value).
NOT_AVAILABLE = "n/a"


def e1_facts(table: pd.DataFrame, spreads: dict[float, float]) -> dict:
    """The numbers of the facts listed under E1's table (``report/_e1.qmd`` words them).

    Args:
        table: the E1 table (``c``, ``loss``, ``reconstruction_loss``, ``kl_loss``,
            ``seed_*``), one row per c.
        spreads: c -> mean over both latent axes of the standard deviation of the test-set z_mean.

    Returns:
        E1 variables, formatted (losses in nats per image, 2 decimals; c as :func:`fmt_coef`):
        ``c_first``/``c_last`` (smallest and largest c) with ``kl_first``/``kl_last`` (test KL
        there); ``kl_steps`` (steps from one c to the next larger), ``kl_falls`` (how many of them
        lower the KL) and ``kl_not_falling`` (those that do not, ``"0.02 → 0.1, ..."``, or
        ``none``); ``rec_min``/``c_rec_min``, ``rec_max``/``c_rec_max`` (reconstruction loss);
        ``loss_min``/``c_loss_min`` (total test loss); ``z_sd_first``/``c_z_first``,
        ``z_sd_last``/``c_z_last``, ``z_sd_c1`` (the z_mean spread at the smallest and largest c
        and at c = 1); ``post_diff_max``/``c_post_diff_max``/``post_diff_ours``/``post_diff_post``
        (the largest absolute difference from the post's test loss, where, ours and the post's)
        and ``post_diff_median``. ``n/a`` where a number does not exist in this run.
    """
    t = table.sort_values("c").reset_index(drop=True)
    c, kl, rec, loss = t["c"], t["kl_loss"], t["reconstruction_loss"], t["loss"]
    diffs = np.diff(kl.to_numpy())
    ups = [f"{fmt_coef(c.iloc[i])} → {fmt_coef(c.iloc[i + 1])}" for i in np.flatnonzero(diffs >= 0)]
    i_min, i_max, i_best = int(rec.idxmin()), int(rec.idxmax()), int(loss.idxmin())
    v = {"c_first": fmt_coef(c.iloc[0]), "c_last": fmt_coef(c.iloc[-1]),
         "kl_first": fmt_num(kl.iloc[0]), "kl_last": fmt_num(kl.iloc[-1]),
         "kl_steps": len(diffs), "kl_falls": int((diffs < 0).sum()), "kl_not_falling": ", ".join(ups) or "none",
         "rec_min": fmt_num(rec[i_min]), "c_rec_min": fmt_coef(c[i_min]),
         "rec_max": fmt_num(rec[i_max]), "c_rec_max": fmt_coef(c[i_max]),
         "loss_min": fmt_num(loss[i_best]), "c_loss_min": fmt_coef(c[i_best])}
    cs = sorted(spreads)
    v.update({"z_sd_first": fmt_num(spreads[cs[0]]) if cs else NOT_AVAILABLE,
              "c_z_first": fmt_coef(cs[0]) if cs else NOT_AVAILABLE,
              "z_sd_last": fmt_num(spreads[cs[-1]]) if cs else NOT_AVAILABLE,
              "c_z_last": fmt_coef(cs[-1]) if cs else NOT_AVAILABLE,
              "z_sd_c1": fmt_num(spreads[1.0]) if 1.0 in spreads else f"{NOT_AVAILABLE} (c = 1 not trained)"})
    d = (t["loss"] - t["post_loss"]).abs()
    if d.notna().any():
        j = int(d.idxmax())
        v.update({"post_diff_max": fmt_num(d[j]), "c_post_diff_max": fmt_coef(c[j]),
                  "post_diff_ours": fmt_num(loss[j]), "post_diff_post": fmt_num(t["post_loss"][j]),
                  "post_diff_median": fmt_num(d.median())})
    else:  # no coefficient of this run is in the post's table
        v.update(dict.fromkeys(("post_diff_max", "c_post_diff_max", "post_diff_ours", "post_diff_post",
                                "post_diff_median"), NOT_AVAILABLE))
    return v


def e1_fragment(table_csv: str, latents: list[str], settings: dict) -> tuple[str, dict]:
    """The body of E1's results table, beside the post's, and E1's variables (those of the
    chapter's text, of the table's caption and of the facts under it, :func:`e1_facts`).

    ``settings`` is the validated ``e1`` section of the config (architecture, optimiser and
    figure settings the chapter's text quotes)."""
    t = pd.read_csv(table_csv)
    reps = int(t["replicates"].min())

    def cell(mean, sd):
        return fmt_num(mean) if reps < 2 else Markdown(f"{fmt_num(mean)} ± {fmt_num(sd)}")

    rows = [[fmt_coef(r.c), cell(r.loss, r.loss_sd), cell(r.reconstruction_loss, r.reconstruction_loss_sd),
             cell(r.kl_loss, r.kl_loss_sd), fmt_num(r.post_loss), fmt_num(r.post_reconstruction), fmt_num(r.post_kl)]
            for r in t.itertuples()]
    md = markdown_table(["c", "loss", "reconstruction", "KL", "post loss", "post reconstruction", "post KL"], rows)
    spreads = {}
    for path in latents:
        with np.load(path) as d:
            spreads[c_of(d, path)] = float(d["z_mean"].std(axis=0).mean())
    variables = {"replicates": reps, "epochs": int(t["epochs"].iloc[0]), "n_train": f"{int(t['n_train'].iloc[0]):,}",
                 "n_test": f"{int(t['n_test'].iloc[0]):,}", "n_coefficients": len(t),
                 "coefficients": ", ".join(fmt_coef(c) for c in t["c"]),
                 "post_epochs": reference.E1_POST_EPOCHS,
                 "batch_size": settings["batch_size"], "learning_rate": f"{settings['learning_rate']:g}",
                 "reference_samples": f"{settings['reference_samples']:,}", "manifold_n": settings["manifold_n"],
                 "manifold_limit": f"{settings['manifold_limit']:g}", "intermediate_dim": settings["intermediate_dim"],
                 "input_dim": 28 * 28, **e1_facts(t, spreads)}
    return md, variables


def write_e1(losses_md: str, variables: str, e1_table: str, latents: list[str], settings: dict) -> None:
    """Rule ``report_e1``: the body of E1's loss table (``losses_md``: a pipe table, one row per c,
    nats per image; its caption is in ``report/_e1.qmd``, ``@tbl-e1-losses``) and E1's variables
    (``variables``, YAML under ``e1``: the settings, the caption's counts and the facts' numbers)."""
    text, values = e1_fragment(e1_table, latents, settings)
    write_text(losses_md, text)
    write_variables(variables, {"e1": values})


# ----------------------------------------------------------------------------------------------
# E1's scorecard part (rule report_scorecard_e1)

#: E1's KL coefficients where single runs on TensorFlow and JAX disagreed beyond the others (the backend study).
BACKEND_SENSITIVE = (0.0, 0.02)


def e1_rows(e1_table: str, tol: dict, spreads: Mapping[tuple[str, str], Spread] | None = None,
            backend: str | None = None, study_notes: Mapping[str, str] | None = None) -> list[dict]:
    """The KL-coefficient post's table: test loss, reconstruction loss and KL divergence (nats per image) per KL
    coefficient c, after 40 epochs on all of MNIST (:data:`klvae.reference.E1_POST_TABLE`).

    Ours is the mean over the replicates of each c (rule ``e1_table``: mean, sample sd and
    count), judged by :func:`judge_value`; where a c has one run, with the same-backend spread
    of that claim from ``spreads`` (by ``("E1", id)``, :func:`same_backend`) when there is one.
    The rows of c = 0 and 0.02 (:data:`BACKEND_SENSITIVE`) carry a note naming this run's Keras
    ``backend`` and pointing to the backend study's section (``@sec-backend-study``), and what the
    study found for that claim where ``study_notes`` (claim id -> sentence) has it.
    """
    spreads, study_notes = spreads or {}, study_notes or {}
    t = pd.read_csv(e1_table).set_index("c")
    epochs, n_test = int(t["epochs"].min()), int(t["n_test"].min())
    unmet = unmet_settings([("epochs", epochs, reference.E1_POST_EPOCHS, True),
                            ("training images", int(t["n_train"].min()), MNIST_TRAIN, True),
                            ("test images", n_test, MNIST_TEST, True)])
    quantities = (("loss", "test loss", "loss", config_tolerance(tol, "loss_rel")),
                  ("reconstruction_loss", "reconstruction loss", "rec", config_tolerance(tol, "loss_rel")),
                  # absolute: the KL divergence spans 0.68 to 507 nats
                  ("kl_loss", "KL divergence", "kl", config_tolerance(tol, "kl_abs", "abs", "nats")))
    compared = f"test set ({n_test:,}), epoch {epochs}"
    unit = "nats/image"
    rows = []
    for c, *post in reference.E1_POST_TABLE:
        for (col, name, short, tolerance), s in zip(quantities, post, strict=True):
            id_, claim = f"e1-c{c:g}-{short}", f"c = {c:g}: {name}"
            if c not in t.index:
                rows.append(claim_row(id_, "E1", claim, "--", f"{s:.2f}", "--", unit,
                                 Judgement("paper profile only", f"tolerance {tolerance.text}",
                                           basis_kind=BASIS_TOLERANCE),
                                 f"c = {c:g} not trained in this run", n=0))
                continue
            r = t.loc[c]
            n, sd = int(r.replicates), float(r[col + "_sd"])
            j = judge_value(s, float(r[col]), sd, n, tolerance, unmet, spread=spreads.get(("E1", id_)),
                            nonnegative=is_nonnegative(unit))
            study = (f"made on the {md_text(backend or 'recorded')} backend; whether the framework or chance "
                     "explains a difference at this KL weight: @sec-backend-study") if c in BACKEND_SENSITIVE else ""
            if study and id_ in study_notes:
                study = f"{study} ({study_notes[id_]})"
            rows.append(claim_row(id_, "E1", claim, compared, f"{s:.2f}", float(r[col]), unit, j,
                             join_notes(unmet, study), sd=sd, n=n))
    return rows


def write_e1_scorecard(table: str, e1_table: str, tolerances: dict, profile: str, backend: str | None = None,
                       spreads=None) -> None:
    """Rule ``report_scorecard_e1``: :func:`e1_rows` as E1's scorecard part (:func:`klvae.report.scorecard.write_part`).

    Args:
        table: output CSV (the scorecard's columns, one row per claim of the KL-coefficient post's table).
        e1_table: rule ``e1_table``'s CSV.
        tolerances: the validated ``scorecard`` section of the config.
        profile: the config's profile name.
        backend: the run's Keras backend (named in the notes of c = 0 and 0.02; spreads of
            other backends are not used).
        spreads: optional same-setting spreads (:func:`klvae.report.scorecard.load_spreads`): the
            backend study's, written by rule ``report_study`` (:func:`klvae.report.study.study_spreads`;
            empty unless the study trained this run's E1 setting), whose ``note`` column says what the
            study found per claim.
    """
    book = same_backend(load_spreads(spreads), backend)
    notes = {}
    if isinstance(spreads, (str, Path)) and Path(spreads).is_file():
        frame = pd.read_csv(spreads, keep_default_na=False)
        if "note" in frame:
            notes = {str(r["id"]): str(r["note"]) for r in frame.to_dict("records") if r["note"]}
    write_part(table, e1_rows(e1_table, tolerances, book, backend, notes), profile)
