"""The reproduction scorecard: every numeric claim of the seeds beside this run's number, with a verdict.

The seeds' numbers come from :mod:`klvae.reference` only, ours from the pipeline's output files
(CSV, JSON, the E2 latent ``.npz``), the tolerances from the config's ``scorecard`` section.
Each claim gets one of four verdicts:

* ``reproduced`` -- ours is within the tolerance of the seed's number;
* ``differs`` -- it is not;
* ``not comparable`` -- an absolute time the seed measured on a GPU, and this run had none;
* ``paper profile only`` -- the seed's number needs settings this run did not use (fewer
  epochs, a subset of the data); ours is still shown, the note says which setting differs.

Whether settings match is read from the outputs (epochs, image counts, batch size, KL weight
recorded by the training and preprocessing jobs), not from the profile's name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from klvae import reference as ref
from klvae.io import write_rows, write_text
from klvae.report.tables import markdown_table

VERDICTS = ("reproduced", "differs", "not comparable", "paper profile only")
COLUMNS = ("id", "experiment", "claim", "seed_value", "ours", "unit", "profile", "tolerance", "verdict", "note")
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000


def judge(ok: bool, unmet: list[str] = (), comparable: bool = True) -> str:
    """The verdict: ``not comparable`` beats ``paper profile only`` (``unmet`` settings) beats the number."""
    if not comparable:
        return "not comparable"
    if unmet:
        return "paper profile only"
    return "reproduced" if ok else "differs"


def unmet_settings(checks: list[tuple[str, object, object, bool]]) -> list[str]:
    """Settings of our run that do not match the seed's, as text.

    Args:
        checks: ``(name, ours, seed's, at_least)``; with ``at_least`` ours may exceed the seed's
            (epochs, image counts), otherwise it must equal it.
    """
    out = []
    for name, ours, seed, at_least in checks:
        ok = ours >= seed if at_least else math.isclose(ours, seed, rel_tol=1e-9)
        if not ok:
            out.append(f"{name} {ours:,} (seed {seed:,})" if isinstance(seed, int) else f"{name} {ours:g} (seed {seed:g})")
    return out


def _rel_ok(ours: float, seed: float, rel: float) -> bool:
    return abs(ours - seed) <= rel * abs(seed)


def _pct(x: float) -> str:
    return f"±{100 * x:g} %"


def _note(unmet: list[str], *more: str) -> str:
    parts = ([f"this run: {', '.join(unmet)}"] if unmet else []) + [m for m in more if m]
    return "; ".join(parts)


def _row(id_, experiment, claim, seed_value, ours, unit, tolerance, verdict, note="") -> dict:
    return {"id": id_, "experiment": experiment, "claim": claim, "seed_value": seed_value, "ours": ours,
            "unit": unit, "tolerance": tolerance, "verdict": verdict, "note": note}


def e1_rows(e1_table: str, tol: dict) -> list[dict]:
    """Seed 003's table: test loss, reconstruction loss and KL divergence (nats per image) per KL
    coefficient c, after 40 epochs on all of MNIST (:data:`klvae.reference.E1_SEED_TABLE`)."""
    t = pd.read_csv(e1_table).set_index("kl_coefficient")
    unmet = unmet_settings([("epochs", int(t["epochs"].min()), ref.E1_SEED_EPOCHS, True),
                            ("training images", int(t["n_train"].min()), MNIST_TRAIN, True),
                            ("test images", int(t["n_test"].min()), MNIST_TEST, True)])
    quantities = (("loss", "test loss", "loss"), ("reconstruction_loss", "reconstruction loss", "rec"),
                  ("kl_loss", "KL divergence", "kl"))
    rows = []
    for c, *seed in ref.E1_SEED_TABLE:
        for (col, name, short), s in zip(quantities, seed):
            if short == "kl":  # absolute: the KL divergence spans 0.68 to 507 nats
                tolerance, within = f"±{tol['kl_abs']:g} nats", lambda o: abs(o - s) <= tol["kl_abs"]
            else:
                tolerance, within = _pct(tol["loss_rel"]), lambda o: _rel_ok(o, s, tol["loss_rel"])
            id_, claim = f"e1-c{c:g}-{short}", f"c = {c:g}: {name}"
            if c not in t.index:
                rows.append(_row(id_, "E1", claim, f"{s:.2f}", "--", "nats/image", tolerance, "paper profile only",
                                 f"c = {c:g} not trained in this run"))
                continue
            r = t.loc[c]
            spread = f"mean of {int(r.replicates)} runs, sd {r[col + '_sd']:.2f}" if r.replicates > 1 else ""
            rows.append(_row(id_, "E1", claim, f"{s:.2f}", f"{r[col]:.2f}", "nats/image", tolerance,
                             judge(within(r[col]), unmet), _note(unmet, spread)))
    return rows


def _runs(e2_runs: list[str]) -> dict[tuple[str, int], dict]:
    runs = {}
    for path in e2_runs:
        m = json.loads(Path(path).read_text())
        runs[(m["strategy"], int(m["z_dim"]))] = m
    return runs


def _e2_unmet(run: dict, epochs: int) -> list[str]:
    return unmet_settings([("epochs", int(run["epochs"]), epochs, True),
                           ("training images", int(run["n_train"]), MNIST_TRAIN, True),
                           ("batch", int(run["batch_size"]), ref.E2_SEED_BATCH_SIZE, False),
                           ("KL weight fact", float(run["fact"]), ref.E2_SEED_FACT, False)])


def vii_rows(e2_runs: list[str], e2_histories: list[str], tol: dict) -> list[dict]:
    """Post VII's training log (z_dim 12, ``model_add_loss``, epochs 3-6: loss, BCE, KL_seed;
    :data:`klvae.reference.SEED_VII_LOG`) against our ``model_add_loss`` history at the same
    epoch, the last one both have (epoch 6 once we train 6 or more)."""
    log, z = ref.SEED_VII_LOG, ref.SEED_VII_LOG["z_dim"]
    run = _runs(e2_runs).get(("model_add_loss", z))
    hist = next((h for h in (pd.read_csv(p) for p in e2_histories)
                 if {"model_add_loss"} == set(h["strategy"]) and set(h["z_dim"]) == {z}), None)
    quantities = (("loss", "loss", "mean BCE + fact · KL_seed", "loss_rel", log["loss"]),
                  ("bce", "reconstruction_loss", "BCE (reconstruction loss)", "loss_rel", log["reconstruction_loss"]),
                  ("kl", "kl_loss", "KL_seed (unscaled)", "kl_rel", log["kl_seed"]))
    if run is None or hist is None:
        return [_row(f"e2-vii-log-{k}", "E2", f"VII, z_dim {z}, epoch {log['epoch'][-1]} (training log): {name}",
                     f"{seed[-1]:.{3 if k == 'kl' else 4}f}", "--", "KL_seed" if k == "kl" else "nats/pixel",
                     _pct(tol[t]), "paper profile only", f"`model_add_loss` at z_dim {z} not trained in this run")
                for k, _, name, t, seed in quantities]
    first, final = log["epoch"][0], log["epoch"][-1]
    last = int(hist["epoch"].max())
    our_epoch = min(last, final)  # the same epoch as the seed's log where we have it
    seed_epoch = max(our_epoch, first)
    i = log["epoch"].index(seed_epoch)
    ours = hist.set_index("epoch").loc[our_epoch]
    unmet = _e2_unmet(run, first)
    rows = []
    for k, col, name, t, seed in quantities:
        digits = 3 if k == "kl" else 4
        note = _note(unmet, f"ours: epoch {our_epoch}" if our_epoch != seed_epoch else
                     f"the last epoch of ours; the seed's log goes on to epoch {final}" if seed_epoch < final else "",
                     f"seed: fact · KL_seed = {log['kl_scaled'][i]:g}, ÷ fact" if k == "kl" else "")
        rows.append(_row(f"e2-vii-log-{k}", "E2", f"VII, z_dim {z}, epoch {seed_epoch} (training log): {name}",
                         f"{seed[i]:.{digits}f}", f"{ours[col]:.{digits}f}", "KL_seed" if k == "kl" else "nats/pixel",
                         _pct(tol[t]), judge(_rel_ok(ours[col], seed[i], tol[t]), unmet), note))
    return rows


def latent_rows(e2_latents: list[str], e2_runs: list[str], tol: dict) -> list[dict]:
    """Post IV's latent extent at z_dim 2 (:data:`klvae.reference.SEED_LATENT_EXTENT`) against the
    ``q``..``1 - q`` quantiles of our test-set z_mean per axis (``end_layer``, post IV's strategy,
    when it was trained; the seed's box leaves out outliers such as its 6s)."""
    data = {str(d["strategy"]): d for d in (np.load(p) for p in e2_latents)}
    strategy = "end_layer" if "end_layer" in data else sorted(data)[0]
    z = data[strategy]["z_mean"]
    q = tol["latent_quantile"]
    lo, hi = np.quantile(z, [q, 1 - q], axis=0)
    run = _runs(e2_runs).get((strategy, int(z.shape[1])))
    unmet = _e2_unmet(run, ref.E2_SEED_EPOCHS) if run else ["no training record"]
    rows = []
    for i, axis in enumerate(("x", "y")):
        s_lo, s_hi = ref.SEED_LATENT_EXTENT[axis]
        ok = abs(lo[i] - s_lo) <= tol["latent_abs"] and abs(hi[i] - s_hi) <= tol["latent_abs"]
        rows.append(_row(f"e2-iv-latent-{axis}", "E2", f"IV, z_dim 2: test-set z_mean[{i}] ({axis}) range",
                         f"{s_lo:g} to {s_hi:g}", f"{lo[i]:.1f} to {hi[i]:.1f}", "latent units",
                         f"±{tol['latent_abs']:g} per end", judge(ok, unmet),
                         _note(unmet, f"ours: {100 * q:g}–{100 * (1 - q):g} % quantiles, `{strategy}`; seed: "
                                      f"{ref.SEED_LATENT_EXTENT_EPOCHS} epochs at batch 128")))
    return rows


def timing_rows(e2_timing: str, tol: dict) -> list[dict]:
    """Posts IV and VII's timings (:data:`klvae.reference.SEED_VII_LOG`, ``SEED_VII_SLOWDOWN``,
    ``SEED_IV_S_PER_EPOCH``, all on a GTX 960) against rule ``e2_timing``'s medians. Ratios of
    strategies carry across machines; absolute times only compare on a GPU."""
    t = pd.read_csv(e2_timing, keep_default_na=False).set_index("strategy")
    gpu = str(t["gpu"].iloc[0]) if "gpu" in t.columns else ""
    on_gpu = gpu.strip().lower() not in ("", "none", "nan")
    cpu = f"{t['cpu'].iloc[0]}, {t['cpu_count'].iloc[0]} logical CPUs"
    where = f"ours: {gpu}" if on_gpu else f"ours: {cpu}, no GPU" + (" recorded" if "gpu" not in t.columns else "")
    rows = []

    def absolute(id_, claim, seed, strategy, col, unit):
        if strategy not in t.index:
            return
        ours = float(t.loc[strategy, col])
        rows.append(_row(id_, "E2", claim, f"{seed:g}", f"{ours:.1f}", unit, _pct(tol["time_rel"]),
                         judge(_rel_ok(ours, seed, tol["time_rel"]), comparable=on_gpu),
                         f"seed: {ref.SEED_VII_LOG['device']}; {where}"))

    log = ref.SEED_VII_LOG
    absolute("e2-vii-ms", f"VII: `model_add_loss` step time, batch {ref.E2_SEED_BATCH_SIZE}", log["ms_per_step"],
             "model_add_loss", "median_ms_per_step", "ms/step")
    if "model_add_loss" in t.index:
        lo, hi = ref.SEED_VII_SLOWDOWN
        ours = float(t.loc["model_add_loss", "ratio_to_fastest"])
        ok = lo - tol["ratio_abs"] <= ours <= hi + tol["ratio_abs"]
        rows.append(_row("e2-vii-slowdown", "E2", "VII: `model.add_loss()` slowdown (\"in certain conditions\")",
                         f"{lo:g}–{hi:g}", f"{ours:.2f}", "× fastest strategy", f"±{tol['ratio_abs']:g}",
                         judge(ok), where))
    iv = ref.SEED_IV_S_PER_EPOCH
    absolute("e2-iv-end-s", "IV: end layer epoch time", iv["end_layer"], "end_layer", "s_per_epoch", "s/epoch")
    absolute("e2-iv-encoder-s", "V: encoder layer epoch time (\"10 to 11\")", iv["encoder_layer"], "encoder_layer",
             "s_per_epoch", "s/epoch")
    if {"end_layer", "encoder_layer"} <= set(t.index):
        seed = iv["end_layer"] / iv["encoder_layer"]
        ours = float(t.loc["end_layer", "median_ms_per_step"] / t.loc["encoder_layer", "median_ms_per_step"])
        rows.append(_row("e2-iv-ratio", "E2", "IV/V: end layer ÷ encoder layer time", f"{seed:.2f}", f"{ours:.2f}",
                         "ratio", f"±{tol['ratio_abs']:g}", judge(abs(ours - seed) <= tol["ratio_abs"]),
                         f"seed: {iv['end_layer']:g} ÷ 10–11 s/epoch; {where}"))
    return rows


def _quantity(frame: pd.DataFrame, quantity: str, **match) -> pd.Series | None:
    rows = frame[frame["quantity"] == quantity]
    for k, v in match.items():
        rows = rows[rows[k].astype(str) == str(v)]
    return rows.iloc[0] if len(rows) else None


def e3_rows(e3_manifest: str, e3_latents: str, e3_preprocessing: str, e3_memory: str, tol: dict) -> list[dict]:
    """Post IX's preprocessing time and memory (:data:`klvae.reference.SEED_PREPROCESS_SECONDS`,
    ``SEED_FLOAT32_GB``) and the AE-latent post's range (``SEED_AE_LATENT_RANGE``) against rules
    ``e3_bench_preprocessing``, ``e3_bench_memory`` and ``e3_ae_latents``."""
    manifest = json.loads(Path(e3_manifest).read_text())
    data = manifest["data_label"]
    unmet = unmet_settings([("training faces", int(manifest["n_train"]), ref.SEED_N_TRAIN, True)])
    rows = []
    pre = pd.read_csv(e3_preprocessing, keep_default_na=False)
    rate = _quantity(pre, "images_per_second_per_process", processes=1)
    if rate is not None:
        seed = ref.SEED_PREPROCESS_IMAGES / ref.SEED_PREPROCESS_SECONDS
        ours = float(rate.value)
        secs = ref.SEED_PREPROCESS_IMAGES / ours
        rows.append(_row("e3-ix-preprocess", "E3", "IX: crop + LANCZOS resize, 1 process",
                         f"{seed:.0f} ({ref.SEED_PREPROCESS_SECONDS:g} s for {ref.SEED_PREPROCESS_IMAGES:,})",
                         f"{ours:.0f} ({secs:.0f} s for {ref.SEED_PREPROCESS_IMAGES:,})", "images/s per core",
                         _pct(tol["time_rel"]), judge(_rel_ok(ours, seed, tol["time_rel"])),
                         f"different CPU ({rate.cpu}); the seed also wrote q95 JPEGs; {data}"))
    mem = pd.read_csv(e3_memory, keep_default_na=False)
    f170 = _quantity(mem, "peak_rss_float32_at_170000_extrapolated")
    s170 = _quantity(mem, "peak_rss_stream_at_170000_extrapolated")
    if f170 is not None:
        ours = float(f170.value)
        stream = f"; this project's streamed uint8: {float(s170.value):.2f} GB" if s170 is not None else ""
        rows.append(_row("e3-ix-memory", "E3", f"IX: {ref.SEED_N_TRAIN:,} faces as one float32 array in RAM",
                         f"{ref.SEED_FLOAT32_GB:g}", f"{ours:.1f}", "GB", _pct(tol["memory_rel"]),
                         judge(_rel_ok(ours, ref.SEED_FLOAT32_GB, tol["memory_rel"]), unmet),
                         _note(unmet, f"ours: peak RSS, extrapolated from {int(f170.n_images):,} images{stream}")))
    lat = pd.read_csv(e3_latents).iloc[0]
    lo, hi = ref.SEED_AE_LATENT_RANGE
    frac = float(lat.frac_in_0_20)
    rows.append(_row("e3-ae-latent-range", "E3", f"AE latent values mostly in {lo:g} < z_i < {hi:g}", "most",
                     f"{100 * frac:.1f} %", "share of values", f"\"most\" = ≥ {100 * tol['ae_latent_majority']:g} %",
                     judge(frac >= tol["ae_latent_majority"], unmet),
                     _note(unmet, f"ours: 1–99 % quantiles {lat.q01:.2f} to {lat.q99:.2f}; {data}")))
    return rows


def scorecard_rows(e1_table: str, e2_runs: list[str], e2_histories: list[str], e2_latents: list[str],
                   e2_timing: str, e3_manifest: str, e3_latents: str, e3_preprocessing: str, e3_memory: str,
                   tolerances: dict, profile: str) -> list[dict]:
    """All claims, in the report's order (E1, E2, E3), each a dict with :data:`COLUMNS`."""
    rows = (e1_rows(e1_table, tolerances) + vii_rows(e2_runs, e2_histories, tolerances)
            + latent_rows(e2_latents, e2_runs, tolerances) + timing_rows(e2_timing, tolerances)
            + e3_rows(e3_manifest, e3_latents, e3_preprocessing, e3_memory, tolerances))
    return [{k: {**r, "profile": profile}[k] for k in COLUMNS} for r in rows]


def _cells(group: list[dict]) -> list[str]:
    """One table line for rows that share a claim prefix (E1: the three numbers of one c)."""
    def joined(key: str) -> str:
        values = [r[key] for r in group]
        return values[0] if len(set(values)) == 1 else " / ".join(values)

    head = group[0]["claim"].split(": ")[0]
    claim = group[0]["claim"] if len(group) == 1 else head + ": " + " / ".join(r["claim"].split(": ", 1)[1] for r in group)
    verdicts = [f"**{r['verdict']}**" if r["verdict"] == "differs" else r["verdict"] for r in group]
    return [f"{group[0]['experiment']} {claim} ({joined('unit')})", joined("seed_value"), joined("ours"),
            joined("tolerance"), verdicts[0] if len(set(verdicts)) == 1 else " / ".join(verdicts), joined("note")]


def scorecard_markdown(rows: list[dict], profile: str) -> str:
    """The scorecard as a pipe table with caption and ``{#tbl-scorecard}``; E1's loss,
    reconstruction loss and KL divergence of one c share a line (the CSV has one row each)."""
    groups: list[list[dict]] = []
    for r in rows:
        prev = groups[-1][0] if groups else None
        if prev and r["experiment"] == "E1" == prev["experiment"] and \
                r["claim"].split(": ")[0] == prev["claim"].split(": ")[0]:
            groups[-1].append(r)
        else:
            groups.append([r])
    caption = (f"Reproduction scorecard: every numeric claim of the seeds beside this run's number "
               f"({profile} profile), the tolerance (config section `scorecard`) and the verdict. \"paper profile "
               f"only\": the seed's number needs settings this run did not use (the note says which); \"not "
               f"comparable\": an absolute GPU time against a CPU-only run. E1's three numbers per c share a line. "
               f"Made by rule `report_scorecard` (`results/tables/scorecard.csv`, one row per number) from the E1, "
               f"E2 and E3 tables and training records.")
    return markdown_table(["claim (unit)", "seed", "ours", "tolerance", "verdict", "note"],
                          [_cells(g) for g in groups], caption, "tbl-scorecard", align="lrrlll")


def write_scorecard(table: str, md: str, variables: str, e1_table: str, e2_runs: list[str],
                    e2_histories: list[str], e2_latents: list[str], e2_timing: str, e3_manifest: str,
                    e3_latents: str, e3_preprocessing: str, e3_memory: str, tolerances: dict,
                    profile: str) -> None:
    """Rule ``report_scorecard``: the scorecard as CSV, markdown fragment and YAML variables.

    Args:
        table: output CSV, one row per claim: ``id``, ``experiment`` (E1/E2/E3), ``claim`` (short
            text naming the seed post), ``seed_value`` and ``ours`` (as printed, in ``unit``),
            ``profile`` (the config profile our number came from), ``tolerance`` (text),
            ``verdict`` (one of :data:`VERDICTS`), ``note`` (why, settings that differ).
        md: output markdown fragment (``{#tbl-scorecard}``).
        variables: output YAML: ``scorecard.n_claims``, ``n_reproduced``, ``n_differs``,
            ``n_not_comparable``, ``n_paper_only``.
        e1_table: rule ``e1_table``'s CSV.
        e2_runs, e2_histories: every E2 training job's ``metrics.json`` and ``history.csv``.
        e2_latents: rule ``e2_analyse``'s latent ``.npz`` files at z_dim 2.
        e2_timing: rule ``e2_timing``'s summary CSV.
        e3_manifest, e3_latents, e3_preprocessing, e3_memory: the face manifest, the AE-latent
            summary and two E3 benchmark CSVs.
        tolerances: the validated ``scorecard`` section of the config.
        profile: the config's profile name.
    """
    rows = scorecard_rows(e1_table, e2_runs, e2_histories, e2_latents, e2_timing, e3_manifest, e3_latents,
                          e3_preprocessing, e3_memory, tolerances, profile)
    write_rows(table, rows)
    write_text(md, scorecard_markdown(rows, profile))
    counts = pd.Series([r["verdict"] for r in rows]).value_counts()
    values = {"n_claims": len(rows), "n_reproduced": int(counts.get("reproduced", 0)),
              "n_differs": int(counts.get("differs", 0)), "n_not_comparable": int(counts.get("not comparable", 0)),
              "n_paper_only": int(counts.get("paper profile only", 0))}
    write_text(variables, yaml.safe_dump({"scorecard": values}, sort_keys=False, allow_unicode=True))
