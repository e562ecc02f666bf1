"""Generated report fragments: every number the report shows is written here from pipeline files.

The ``.qmd`` chapters in ``report/`` hold prose only; they pull numbers in with Quarto's
``{{< var key >}}`` shortcode (from the generated ``_variables.yml``) and tables, facts and
provenance with ``{{< include _generated/<name>.md >}}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from klvae import reference
from klvae.figures.common import fmt_coef
from klvae.report import provenance
from klvae.report.tables import fmt_num, markdown_table

#: E1 settings compared between the run's profile and the seeds' (paper profile).
E1_SETTINGS = [("epochs", "epochs per coefficient"), ("batch_size", "batch size"),
               ("learning_rate", "Adam learning rate"), ("n_train", "training images"),
               ("n_test", "test images"), ("coefficients", "KL coefficients c"),
               ("replicates", "training runs per coefficient")]


def _write(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _n_or_all(n, total: int) -> int:
    return total if n is None else int(n)


def e1_facts(table: pd.DataFrame, spreads: dict[float, float]) -> list[str]:
    """Statements that follow from the E1 numbers alone (no interpretation).

    Args:
        table: the E1 table (``kl_coefficient``, ``loss``, ``reconstruction_loss``, ``kl_loss``,
            ``seed_*``), one row per c.
        spreads: c -> mean over both latent axes of the standard deviation of the test-set z_mean.

    Returns:
        Markdown sentences.
    """
    t = table.sort_values("kl_coefficient").reset_index(drop=True)
    c, kl, rec, loss = t["kl_coefficient"], t["kl_loss"], t["reconstruction_loss"], t["loss"]
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


def e1_fragment(table_csv: str, latents: list[str], coefficients: list[float]) -> tuple[str, dict]:
    """The E1 results table, beside the seed's, and the facts list; plus E1 variables."""
    t = pd.read_csv(table_csv)
    reps = int(t["replicates"].min())

    def cell(mean, sd):
        return fmt_num(mean) if reps < 2 else f"{fmt_num(mean)} ± {fmt_num(sd)}"

    rows = [[fmt_coef(r.kl_coefficient), cell(r.loss, r.loss_sd), cell(r.reconstruction_loss, r.reconstruction_loss_sd),
             cell(r.kl_loss, r.kl_loss_sd), fmt_num(r.seed_loss), fmt_num(r.seed_reconstruction), fmt_num(r.seed_kl)]
            for r in t.itertuples()]
    epochs = int(t["epochs"].iloc[0])
    spread = ("one training run per coefficient" if reps < 2 else
              f"mean ± standard deviation over {reps} training runs per coefficient, each with its own seed")
    caption = (f"E1 test-set losses (nats per image, {int(t['n_test'].iloc[0]):,} test images) after {epochs} epochs "
               f"on {int(t['n_train'].iloc[0]):,} training images, {spread}, beside the seed's table (one run, "
               f"{reference.E1_SEED_EPOCHS} epochs). Made by rule `e1_table` from `results/tables/e1_losses.csv`.")
    md = markdown_table(["c", "loss", "reconstruction", "KL", "seed loss", "seed reconstruction", "seed KL"],
                        rows, caption, "tbl-e1-losses")
    spreads = {}
    for path, c in zip(latents, coefficients):
        z = np.load(path)["z_mean"]
        spreads[float(c)] = float(z.std(axis=0).mean())
    md += "\n" + "\n".join(e1_facts(t, spreads)) + "\n"
    variables = {"replicates": reps, "epochs": epochs, "n_train": f"{int(t['n_train'].iloc[0]):,}", "n_test": f"{int(t['n_test'].iloc[0]):,}",
                 "n_coefficients": len(t), "coefficients": ", ".join(fmt_coef(c) for c in t["kl_coefficient"]),
                 "seed_epochs": reference.E1_SEED_EPOCHS}
    return md, variables


def deviations_fragment(config: dict, paper_config: str) -> str:
    """Table of the E1 settings where this run's profile differs from the seeds' (config/paper.yaml)."""
    paper = yaml.safe_load(Path(paper_config).read_text())
    full = {"n_train": 60000, "n_test": 10000}
    rows = []
    for key, what in E1_SETTINGS:
        ours = config["e1"].get(key)
        seed = paper["e1"].get(key)
        if key in full:
            ours, seed = _n_or_all(ours, full[key]), _n_or_all(seed, full[key])
        fmt = lambda v: ", ".join(fmt_coef(x) for x in v) if isinstance(v, list) else (f"{v:,}" if isinstance(v, int) else f"{v:g}")
        rows.append([f"E1 {what}", fmt(ours), fmt(seed), "same" if ours == seed else "**differs**"])
    return markdown_table(["setting", f"this run ({config['profile']} profile)", "seed (paper profile)", ""], rows,
                          "Settings of this run against the seeds' (the paper profile, `config/paper.yaml`). "
                          "Made by rule `report_fragments`.", "tbl-deviations", align="llll")


def methods_fragment(mnist_provenance: str, config: dict, benchmarks_dir: str, repo: str) -> tuple[str, dict]:
    """Data provenance, software versions, hardware and per-rule wall time tables."""
    prov = json.loads(Path(mnist_provenance).read_text())
    data_rows = [["source", f"`{prov['source']}`"]]
    for key in ("file", "sha256", "member", "member_sha256", "folder"):
        if key in prov:
            data_rows.append([key.replace("_", " "), f"`{prov[key]}`"])
    for name, md5 in prov.get("md5", {}).items():
        data_rows.append([f"MD5 {name}", f"`{md5}`"])
    data_rows += [["images (train / test)", f"{prov['n_train']:,} / {prov['n_test']:,}"],
                  ["test label counts (digits 0-9)", " ".join(str(x) for x in prov["test_label_counts"])],
                  ["canonical file SHA-256", f"`{prov['canonical_sha256']}`"]]
    md = markdown_table(["MNIST", "value"], data_rows,
                        "MNIST provenance: every hash was verified before the file was read. Made by rule "
                        "`mnist_canonical` (`results/data/mnist_provenance.json`).", "tbl-provenance", align="ll")
    versions = provenance.package_versions()
    md += "\n" + markdown_table(["package", "version"], [[k, v] for k, v in versions.items()],
                                "Software versions of the environment that rendered this report.", "tbl-versions",
                                align="ll")
    hw = provenance.hardware()
    hw_rows = [[k, v] for k, v in hw.items()] + [
        ["TensorFlow intra-op threads per training job", str(config["threads"]["train"])],
        ["profile", f"`{config['profile']}`"], ["seed", str(config["seed"])],
        ["project commit", f"`{provenance.git_commit(repo)}`"]]
    md += "\n" + markdown_table(["", "value"], hw_rows, "Hardware, threads, profile and code version.",
                                "tbl-hardware", align="ll")
    times = provenance.rule_times(benchmarks_dir)
    t_rows = [[f"`{r['rule']}`", str(r["jobs"]), fmt_num(r["total_s"], 1), fmt_num(r["median_s"], 1),
               fmt_num(r["max_s"], 1), fmt_num(r["max_rss_mb"], 0)] for r in times]
    total = sum(r["total_s"] for r in times)
    md += "\n" + markdown_table(["rule", "jobs", "total s", "median s", "max s", "peak RSS MB"], t_rows,
                                f"Wall time and peak memory per rule, from Snakemake's `benchmark:` files "
                                f"(`results/benchmarks/`); {fmt_num(total / 60, 1)} minutes of job time in all "
                                "(jobs may run in parallel). The report rules themselves are not listed.",
                                "tbl-rule-times", align="lrrrrr")
    variables = {"cpu": hw["CPU"], "logical_cpus": hw["logical CPUs"], "tensorflow": versions["tensorflow"],
                 "keras": versions["keras"], "job_minutes": fmt_num(total / 60, 1)}
    return md, variables


def banner_fragment(config: dict) -> str:
    """A visible warning at the top of the report when the numbers come from the quick profile."""
    if config["profile"] != "quick":
        return ""
    return ("::: {.callout-warning}\n"
            "**Quick profile.** This report was rendered from the **quick** profile (small subsets, a few epochs): it checks that "
            "every step of the pipeline runs. Its numbers are not comparable with the seeds'; run "
            "`make report` (default profile) or `PROFILE=paper make report` for those.\n:::\n")


def write_fragments(variables: str, e1: str, methods: str, deviations: str, banner: str, e1_table: str,
                    mnist_provenance: str, latents: list[str], paper_config: str, config: dict,
                    coefficients: list[float], benchmarks_dir: str, repo: str) -> None:
    """Write the report's generated files (rule ``report_fragments``).

    Outputs: ``variables`` (``_variables.yml`` for ``{{< var >}}``), and the markdown fragments
    ``e1`` (table + facts), ``methods`` (provenance, versions, hardware, rule times) and
    ``deviations`` (settings that differ from the seeds'), ``banner`` (quick-profile warning).
    """
    e1_md, e1_vars = e1_fragment(e1_table, latents, coefficients)
    methods_md, m_vars = methods_fragment(mnist_provenance, config, benchmarks_dir, repo)
    prov = json.loads(Path(mnist_provenance).read_text())
    values = {
        "profile": config["profile"], "seed": config["seed"],
        "quick": config["profile"] == "quick",
        "e1": {**e1_vars, "batch_size": config["e1"]["batch_size"], "learning_rate": f"{config['e1']['learning_rate']:g}",
               "reference_samples": f"{config['e1']['reference_samples']:,}", "manifold_n": config["e1"]["manifold_n"],
               "manifold_limit": f"{config['e1']['manifold_limit']:g}",
               "intermediate_dim": config["e1"]["intermediate_dim"], "input_dim": 28 * 28},
        "mnist": {"source": prov["source"], "n_train": f"{prov['n_train']:,}", "n_test": f"{prov['n_test']:,}"},
        "env": m_vars,
    }
    _write(variables, yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    _write(e1, e1_md)
    _write(methods, methods_md)
    _write(deviations, deviations_fragment(config, paper_config))
    _write(banner, banner_fragment(config))
