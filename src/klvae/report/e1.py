"""E1's report fragment (seed 003): the loss table beside the seed's, the facts the prose
quotes and E1's report variables. Every number comes from pipeline files.

The ``.qmd`` chapters in ``report/`` hold prose only; they pull numbers in with Quarto's
``{{< var key >}}`` shortcode and tables and facts with ``{{< include _generated/<name>.md >}}``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from klvae import reference
from klvae.formatting import fmt_coef
from klvae.io import write_text
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


def e1_fragment(table_csv: str, latents: list[str], coefficients: list[float], settings: dict) -> tuple[str, dict]:
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
    for path, c in zip(latents, coefficients, strict=True):
        z = np.load(path)["z_mean"]
        spreads[float(c)] = float(z.std(axis=0).mean())
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


def write_e1(md: str, variables: str, e1_table: str, latents: list[str], coefficients: list[float],
             settings: dict) -> None:
    """Rule ``report_e1``: the E1 table and facts (``md``) and E1's variables (``variables``, YAML)."""
    text, values = e1_fragment(e1_table, latents, coefficients, settings)
    write_text(md, text)
    write_text(variables, yaml.safe_dump({"e1": values}, sort_keys=False, allow_unicode=True))
