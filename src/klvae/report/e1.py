"""E1's report fragment (seed 003): the loss table beside the seed's, the facts the prose
quotes and E1's report variables. Every number comes from pipeline files.

The ``.qmd`` chapters in ``report/`` hold prose only; they pull numbers in with Quarto's
``{{< var key >}}`` shortcode and tables and facts with ``{{< include _generated/<name>.md >}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import yaml

from klvae import reference
from klvae.formatting import fmt_coef
from klvae.io import kl_weight_of, write_text
from klvae.report.scorecard import (
    MNIST_TEST,
    MNIST_TRAIN,
    Judgement,
    Spread,
    claim_row,
    config_tolerance,
    join_notes,
    judge_value,
    load_spreads,
    same_backend,
    unmet_settings,
    write_part,
)
from klvae.report.tables import fmt_num, markdown_table


def e1_facts(table: pd.DataFrame, spreads: dict[float, float]) -> list[str]:
    """Statements that follow from the E1 numbers alone (no interpretation).

    Args:
        table: the E1 table (``kl_weight``, ``loss``, ``reconstruction_loss``, ``kl_loss``,
            ``seed_*``), one row per c.
        spreads: c -> mean over both latent axes of the standard deviation of the test-set z_mean.

    Returns:
        Markdown sentences.
    """
    t = table.sort_values("kl_weight").reset_index(drop=True)
    c, kl, rec, loss = t["kl_weight"], t["kl_loss"], t["reconstruction_loss"], t["loss"]
    facts = []
    diffs = np.diff(kl.to_numpy())
    if (diffs < 0).all():
        facts.append(f"The KL divergence on the test set falls monotonically as c grows, from "
                     f"{fmt_num(kl.iloc[0])} nats at c = {fmt_coef(c.iloc[0])} to {fmt_num(kl.iloc[-1])} nats at "
                     f"c = {fmt_coef(c.iloc[-1])}.")
    else:
        ups = [f"{fmt_coef(c.iloc[i])} → {fmt_coef(c.iloc[i + 1])}" for i in np.flatnonzero(diffs >= 0)]
        facts.append(f"The KL divergence on the test set does not fall monotonically with c: it rises or stays "
                     f"between c = {', '.join(ups)}.")
    i_min, i_max = int(rec.idxmin()), int(rec.idxmax())
    facts.append(f"The reconstruction loss is lowest at c = {fmt_coef(c[i_min])} ({fmt_num(rec[i_min])} nats) and "
                 f"highest at c = {fmt_coef(c[i_max])} ({fmt_num(rec[i_max])} nats).")
    i_best = int(loss.idxmin())
    facts.append(f"The lowest total test loss, {fmt_num(loss[i_best])} nats, is reached at c = {fmt_coef(c[i_best])}.")
    if spreads:
        cs = sorted(spreads)
        facts.append(f"The mean standard deviation of the test-set z_mean (averaged over the two latent axes; "
                     f"1 for N(0, I)) is {fmt_num(spreads[cs[0]])} at c = {fmt_coef(cs[0])} and "
                     f"{fmt_num(spreads[cs[-1]])} at c = {fmt_coef(cs[-1])}"
                     + (f"; at c = 1 it is {fmt_num(spreads[1.0])}." if 1.0 in spreads else "."))
    if t["seed_loss"].notna().any():
        d = (t["loss"] - t["seed_loss"]).abs()
        j = int(d.idxmax())
        facts.append(f"The largest difference from the seed's test loss is {fmt_num(d[j])} nats, at "
                     f"c = {fmt_coef(c[j])} (ours {fmt_num(loss[j])}, seed {fmt_num(t['seed_loss'][j])}); the median "
                     f"absolute difference is {fmt_num(d.median())} nats.")
    return [f"- {f}" for f in facts]


def e1_fragment(table_csv: str, latents: list[str], settings: dict) -> tuple[str, dict]:
    """The E1 results table, beside the seed's, and the facts list; plus E1 variables.

    ``settings`` is the validated ``e1`` section of the config (architecture, optimiser and
    figure settings the chapter's text quotes)."""
    t = pd.read_csv(table_csv)
    reps = int(t["replicates"].min())

    def cell(mean, sd):
        return fmt_num(mean) if reps < 2 else f"{fmt_num(mean)} ± {fmt_num(sd)}"

    rows = [[fmt_coef(r.kl_weight), cell(r.loss, r.loss_sd), cell(r.reconstruction_loss, r.reconstruction_loss_sd),
             cell(r.kl_loss, r.kl_loss_sd), fmt_num(r.seed_loss), fmt_num(r.seed_reconstruction), fmt_num(r.seed_kl)]
            for r in t.itertuples()]
    epochs = int(t["epochs"].iloc[0])
    spread = ("one training run per coefficient" if reps < 2 else
              f"mean ± standard deviation over {reps} training runs per coefficient, each with its own seed")
    caption = (f"E1 test-set losses (nats per image, {int(t['n_test'].iloc[0]):,} test images) after {epochs} epochs "
               f"on {int(t['n_train'].iloc[0]):,} training images, {spread}, beside the seed's table (one run, "
               f"{reference.E1_SEED_EPOCHS} epochs). {{{{< var made_by.e1_table >}}}}")
    md = markdown_table(["c", "loss", "reconstruction", "KL", "seed loss", "seed reconstruction", "seed KL"],
                        rows, caption, "tbl-e1-losses")
    spreads = {}
    for path in latents:
        with np.load(path) as d:
            spreads[kl_weight_of(d, path)] = float(d["z_mean"].std(axis=0).mean())
    md += "\n" + "\n".join(e1_facts(t, spreads)) + "\n"
    variables = {"replicates": reps, "epochs": epochs, "n_train": f"{int(t['n_train'].iloc[0]):,}",
                 "n_test": f"{int(t['n_test'].iloc[0]):,}", "n_coefficients": len(t),
                 "coefficients": ", ".join(fmt_coef(c) for c in t["kl_weight"]),
                 "seed_epochs": reference.E1_SEED_EPOCHS,
                 "batch_size": settings["batch_size"], "learning_rate": f"{settings['learning_rate']:g}",
                 "reference_samples": f"{settings['reference_samples']:,}", "manifold_n": settings["manifold_n"],
                 "manifold_limit": f"{settings['manifold_limit']:g}", "intermediate_dim": settings["intermediate_dim"],
                 "input_dim": 28 * 28}
    return md, variables


def write_e1(md: str, variables: str, e1_table: str, latents: list[str], settings: dict) -> None:
    """Rule ``report_e1``: the E1 table and facts (``md``) and E1's variables (``variables``, YAML)."""
    text, values = e1_fragment(e1_table, latents, settings)
    write_text(md, text)
    write_text(variables, yaml.safe_dump({"e1": values}, sort_keys=False, allow_unicode=True))


# ----------------------------------------------------------------------------------------------
# E1's scorecard part (rule report_scorecard_e1)

#: E1's KL coefficients where single runs on TensorFlow and JAX disagreed beyond the others (the backend study).
BACKEND_SENSITIVE = (0.0, 0.02)


def e1_rows(e1_table: str, tol: dict, spreads: Mapping[tuple[str, str], Spread] | None = None,
            backend: str | None = None, study_notes: Mapping[str, str] | None = None) -> list[dict]:
    """Seed 003's table: test loss, reconstruction loss and KL divergence (nats per image) per KL
    coefficient c, after 40 epochs on all of MNIST (:data:`klvae.reference.E1_SEED_TABLE`).

    Ours is the mean over the replicates of each c (rule ``e1_table``: mean, sample sd and
    count), judged by :func:`judge_value`; where a c has one run, with the same-backend spread
    of that claim from ``spreads`` (by ``("E1", id)``, :func:`same_backend`) when there is one.
    The rows of c = 0 and 0.02 (:data:`BACKEND_SENSITIVE`) carry a note naming this run's Keras
    ``backend`` and pointing to the backend study's section (``@sec-backend-study``), and what the
    study found for that claim where ``study_notes`` (claim id -> sentence) has it.
    """
    spreads, study_notes = spreads or {}, study_notes or {}
    t = pd.read_csv(e1_table).set_index("kl_weight")
    epochs, n_test = int(t["epochs"].min()), int(t["n_test"].min())
    unmet = unmet_settings([("epochs", epochs, reference.E1_SEED_EPOCHS, True),
                            ("training images", int(t["n_train"].min()), MNIST_TRAIN, True),
                            ("test images", n_test, MNIST_TEST, True)])
    quantities = (("loss", "test loss", "loss", config_tolerance(tol, "loss_rel")),
                  ("reconstruction_loss", "reconstruction loss", "rec", config_tolerance(tol, "loss_rel")),
                  # absolute: the KL divergence spans 0.68 to 507 nats
                  ("kl_loss", "KL divergence", "kl", config_tolerance(tol, "kl_abs", "abs", "nats")))
    compared = f"test set ({n_test:,}), epoch {epochs}"
    rows = []
    for c, *seed in reference.E1_SEED_TABLE:
        for (col, name, short, tolerance), s in zip(quantities, seed, strict=True):
            id_, claim = f"e1-c{c:g}-{short}", f"c = {c:g}: {name}"
            if c not in t.index:
                rows.append(claim_row(id_, "E1", claim, "--", f"{s:.2f}", "--", "nats/image",
                                 Judgement("paper profile only", f"tolerance {tolerance.text}"),
                                 f"c = {c:g} not trained in this run", n=0))
                continue
            r = t.loc[c]
            n, sd = int(r.replicates), float(r[col + "_sd"])
            j = judge_value(s, float(r[col]), sd, n, tolerance, unmet, spread=spreads.get(("E1", id_)))
            study = (f"made on the {backend or 'recorded'} backend; whether the framework or chance explains a "
                     "difference at this KL weight: @sec-backend-study") if c in BACKEND_SENSITIVE else ""
            if study and id_ in study_notes:
                study = f"{study} ({study_notes[id_]})"
            rows.append(claim_row(id_, "E1", claim, compared, f"{s:.2f}", float(r[col]), "nats/image", j,
                             join_notes(unmet, study), sd=sd, n=n))
    return rows


def write_e1_scorecard(table: str, e1_table: str, tolerances: dict, profile: str, backend: str | None = None,
                       spreads=None) -> None:
    """Rule ``report_scorecard_e1``: :func:`e1_rows` as E1's scorecard part (:func:`klvae.report.scorecard.write_part`).

    Args:
        table: output CSV (the scorecard's columns, one row per claim of seed 003's table).
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
