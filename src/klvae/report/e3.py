"""The E3 chapter's generated fragments: data provenance (and the stand-in banner), test
losses, the AE's latent range, and the three benchmarks -- all from pipeline files. The tables
are bodies only; their captions are in ``report/_e3.qmd``, with numbers from E3's variables. Every
string of the face manifest and the benchmark files is text (:mod:`klvae.report.escape`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import pandas as pd

from klvae import reference as ref
from klvae.io import write_text
from klvae.report import includes
from klvae.report.escape import Markdown, md_code, md_text, write_variables
from klvae.report.scorecard import (
    BASIS_OTHER_DATA,
    BASIS_OTHER_HARDWARE,
    BASIS_TOLERANCE,
    Judgement,
    Spread,
    claim_row,
    config_tolerance,
    is_nonnegative,
    join_notes,
    judge,
    judge_value,
    load_spreads,
    same_backend,
    speed_note,
    unmet_settings,
    write_part,
)
from klvae.report.tables import MISSING, markdown_table


def banner(manifest: dict) -> str:
    """Generated include ``e3_banner.md`` (:mod:`klvae.report.includes`; E3's registry entry): the
    visible callout ``report/_e3_standin.qmd`` when the faces are the synthetic stand-in, empty for CelebA."""
    return includes.fragment("e3_banner.md", standin=bool(manifest["standin"]))


def data_table(manifest: dict) -> str:
    """What went into the face arrays (a pipe table's body): source, hashes, split, files used and
    skipped (by reason). The source is the path the user gave for CelebA; for the stand-in, the
    folder rule ``e3_standin`` drew it into, relative to the project (wherever the run was)."""
    src = manifest["source"]
    where = src.get("image_folder") if manifest.get("standin") and src.get("image_folder") else src["path"]
    rows = [["data", manifest["dataset"]], ["source", Markdown(f"{md_code(where)} ({md_text(src['kind'])})")]]
    if "zip" in src:
        z = src["zip"]
        rows.append(["zip MD5", Markdown(f"{md_code(z['md5'])} "
                                         f"({'verified' if z['md5_verified'] else 'not verified: opt-out'})")])
    if "listing_sha256" in src:
        rows.append(["file listing SHA-256", md_code(src["listing_sha256"])])
    pre = manifest["preprocessing"]
    rows += [
        ["preprocessing", f"crop {tuple(pre['crop_box_ltrb'])} (left, top, right, bottom) → resize to "
                          f"{pre['resize'][0]}×{pre['resize'][1]} with {pre['resample']} "
                          f"({pre['library']}; {pre['source']})"],
        ["split", Markdown(f"{md_code(manifest['split'])}: {int(manifest['n_train']):,} training and "
                           f"{int(manifest['n_test']):,} test faces")],
        ["files examined / skipped", f"{int(manifest['files_examined']):,} / {int(manifest['files_skipped']):,}"],
    ]
    for reason, count in sorted(manifest.get("skipped_by_reason", {}).items()):
        rows.append([f"skipped: {reason}", f"{int(count):,}"])
    dc = manifest.get("draft_check", {})
    if "used" in dc:
        rows.append([Markdown("reduced-size JPEG decoding (`Image.draft`)"), "used" if dc["used"] else
                     f"not used: {dc.get('note', 'outside tolerance')}" if "mean_abs_diff" not in dc else
                     f"not used: mean |Δ| {dc['mean_abs_diff']} levels, PSNR {dc['psnr_db']} dB against the full "
                     f"decode (tolerance: mean |Δ| ≤ {dc['tolerance']['max_mean_abs_diff']}, "
                     f"PSNR ≥ {dc['tolerance']['min_psnr_db']} dB)"])
    for key in ("train_npy", "test_npy"):
        o = manifest["outputs"][key]
        rows.append([md_code(Path(o["path"]).name),
                     Markdown(f"uint8 {md_text(tuple(o['shape']))}, SHA-256 {md_code(o.get('sha256', ''))}")])
    return markdown_table(["faces", ""], rows, align="ll")


def metrics_table(csv: str) -> tuple[str, dict]:
    """Test-set losses of the face VAE and the plain AE: the table's body and the variables
    ``fact`` (the VAE's KL weight) and ``n_test`` (held-out faces)."""
    t = pd.read_csv(csv)
    rows = [[r.model.upper(), f"{r.loss:.4f}", f"{r.reconstruction_loss:.4f}", f"{r.kl_loss:.3f}", f"{r.fact:.3g}",
             f"{r.mse:.4f}"] for r in t.itertuples()]
    md = markdown_table(["model", "test loss", "BCE (mean per pixel)", "KL_mean", "fact", "MSE"], rows,
                        align="lrrrrr")
    vae = t[t["model"] == "vae"].iloc[0]
    return md, {"fact": f"{vae.fact:.3g}", "n_test": f"{int(t['n_test'].iloc[0]):,}"}


def latent_table(csv: str) -> tuple[str, dict]:
    """The AE's latent values on the test faces: the table's body and the variables
    ``frac_in_0_20`` and ``frac_negative`` (percent, 1 decimal), ``latents_n_images`` and
    ``latents_z_dim`` (test faces encoded, dimensions each)."""
    s = pd.read_csv(csv).iloc[0]
    rows = [["fraction of values in 0 < z_i < 20", f"{100 * s.frac_in_0_20:.1f} %",
             Markdown("most (post: 'most of the data points')")],
            ["fraction of negative values", f"{100 * s.frac_negative:.1f} %", MISSING],
            ["fraction with |z_i| ≤ 3", f"{100 * s.frac_abs_le_3:.1f} %", MISSING],
            ["1 % / 50 % / 99 % quantiles", f"{s.q01:.2f} / {s.q50:.2f} / {s.q99:.2f}", MISSING],
            ["min / max", f"{s['min']:.2f} / {s['max']:.2f}", MISSING]]
    md = markdown_table(["AE latent values", "ours", "post"], rows, align="lrl")
    return md, {"frac_in_0_20": f"{100 * s.frac_in_0_20:.1f}", "frac_negative": f"{100 * s.frac_negative:.1f}",
                "latents_n_images": f"{int(s.n_images):,}", "latents_z_dim": int(s.z_dim)}


def _pick(frame: pd.DataFrame, quantity: str, **match):
    rows = frame[frame["quantity"] == quantity]
    for k, v in match.items():
        rows = rows[rows[k].astype(str) == str(v)]
    return rows.iloc[0] if len(rows) else None


def bench_table(preprocessing: str, memory: str, pipeline: str) -> tuple[str, dict]:
    """The three E3 benchmarks against the post's numbers and this project's targets: the table's
    body and the variables ``preprocess_ratio``, ``memory_ratio_170k`` and the caption's
    ``bench_batch_size`` (input pipeline), ``bench_cpu``, ``bench_logical_cpus``,
    ``bench_backend``, ``bench_tensorflow`` and ``bench_pillow`` (the preprocessing benchmark's machine)."""
    pre, mem, pipe = (pd.read_csv(p, keep_default_na=False) for p in (preprocessing, memory, pipeline))
    rows = []
    per_core = _pick(pre, "images_per_second_per_process", processes=1)
    multi = pre[(pre["quantity"] == "images_per_second")]
    if per_core is not None:
        rows.append(["preprocessing, 1 process", f"{float(per_core.value):,.0f} images/s",
                     f"{float(per_core.reference):,.0f} images/s (240 s for 200,000, 1 thread)",
                     Markdown(f"{float(per_core.ratio_to_reference):.2f}× (target ≥ 4×: "
                              f"{'met' if str(per_core.meets_target) == 'True' else '**not met**'})")])
    ceiling = _pick(pre, "stage_ceiling_images_per_second_per_core")
    if ceiling is not None:
        stages = {q: float(_pick(pre, f"stage_ms_{q}").value)
                  for q in ("read_bytes", "jpeg_decode", "crop_resize_lanczos")}
        rows.append(["per-image cost, 1 core",
                     f"read {stages['read_bytes']:.3f} + decode {stages['jpeg_decode']:.3f} + "
                     f"crop/resize {stages['crop_resize_lanczos']:.3f} ms", MISSING,
                     f"ceiling {float(ceiling.value):,.0f} images/s = "
                     f"{float(ceiling.ratio_to_reference):.2f}× the post"])
    for r in multi.itertuples():
        if int(r.processes) > 1:
            rows.append([f"preprocessing, {int(r.processes)} processes", f"{float(r.value):,.0f} images/s", MISSING,
                         MISSING])
    n = int(_pick(mem, "peak_rss_stream_uint8_memmap").n_images)
    s_peak = float(_pick(mem, "peak_rss_stream_uint8_memmap").value)
    f_peak = float(_pick(mem, "peak_rss_float32_in_ram").value)
    rows.append([f"peak RSS of training, N = {n:,} (measured)", f"{s_peak:.2f} GB streamed uint8",
                 f"{f_peak:.2f} GB float32 in RAM (the post's design)", f"{s_peak / f_peak:.2f}"])
    ratio = _pick(mem, "ratio_stream_over_float32_at_170000")
    s170 = float(_pick(mem, "peak_rss_stream_at_170000_extrapolated").value)
    f170 = float(_pick(mem, "peak_rss_float32_at_170000_extrapolated").value)
    data170 = _pick(mem, "float32_data_at_170000")
    rows.append(["peak RSS, N = 170,000 (extrapolated)", f"{s170:.2f} GB", f"{f170:.1f} GB (data alone "
                 f"{float(data170.value):.1f} GB; post: {float(data170.reference):g} GB)",
                 Markdown(f"{float(ratio.value):.2f} (target ≤ 0.25: "
                          f"{'met' if str(ratio.meets_target) == 'True' else '**not met**'})")])
    for r in pipe[pipe["quantity"] == "input_over_consumption"].itertuples():
        inp = _pick(pipe, "input_images_per_second", tf_threads=r.tf_threads)
        cons = _pick(pipe, "train_consumption_images_per_second", tf_threads=r.tf_threads)
        step = _pick(pipe, "train_step_ms", tf_threads=r.tf_threads)
        rows.append([f"input pipeline vs training, {r.tf_threads} backend thread(s)",
                     f"{float(inp.value):,.0f} images/s in ({inp.spread})",
                     f"{float(cons.value):,.0f} images/s consumed ({float(step.value):,.0f} ms/step, {step.spread})",
                     Markdown(f"{float(r.value):.0f}× (target ≥ 5×: "
                              f"{'met' if str(r.meets_target) == 'True' else '**not met**'})")])
    info = pre.iloc[0]
    md = markdown_table(["benchmark", "ours", "reference", "ratio"], rows, align="llll")
    out = {"preprocess_ratio": f"{float(per_core.ratio_to_reference):.2f}" if per_core is not None else MISSING,
           "memory_ratio_170k": f"{float(ratio.value):.2f}",
           "bench_batch_size": int(pipe["batch_size"].iloc[0]), "bench_cpu": str(info.cpu),
           "bench_logical_cpus": int(info.logical_cores), "bench_backend": str(getattr(info, "backend", "tensorflow")),
           "bench_tensorflow": str(info.tensorflow or "not installed"), "bench_pillow": str(info.pillow)}
    return md, out


def write_e3(banner_md: str, data_md: str, metrics_md: str, latents_md: str, bench_md: str, variables: str,
             manifest: str, metrics: str, latents: str, bench_preprocessing: str, bench_memory: str,
             bench_pipeline: str, vae_info: str, settings: dict) -> None:
    """Rule ``report_e3``: the E3 fragments and variables (``settings`` = config ``e3``).

    Writes ``banner_md`` (:func:`banner`: the stand-in callout, empty for CelebA), the table
    bodies ``data_md`` (:func:`data_table`), ``metrics_md`` (:func:`metrics_table`),
    ``latents_md`` (:func:`latent_table`) and ``bench_md`` (:func:`bench_table`), whose captions
    are in ``report/_e3.qmd``, and E3's variables (``variables``, YAML under ``e3``).
    ``vae_info`` is the VAE's model facts (JSON written by :func:`klvae.experiments.e3.train`:
    ``n_parameters`` and more), so this module needs no Keras.
    """
    m = json.loads(Path(manifest).read_text())
    info = json.loads(Path(vae_info).read_text())
    label = m["data_label"]
    write_text(banner_md, banner(m))
    write_text(data_md, data_table(m))
    values = {"data_label": label, "dataset": m["dataset"], "n_train": f"{m['n_train']:,}",
              "epochs": settings["epochs"], "batch_size": settings["batch_size"], "z_dim": settings["z_dim"],
              "n_bounds": len(settings["ae_bounds"]), "n_per_bound": settings["n_per_bound"],
              "bounds": ", ".join(f"{b:g}" for b in settings["ae_bounds"]),
              "inner_shape": "6 × 6 × 256", "n_parameters": f"{int(info['n_parameters']):,}",
              "skipped": f"{m['files_skipped']:,}"}
    for path, (md, v) in ((metrics_md, metrics_table(metrics)), (latents_md, latent_table(latents)),
                          (bench_md, bench_table(bench_preprocessing, bench_memory, bench_pipeline))):
        write_text(path, md)
        values.update(v)
    write_variables(variables, {"e3": values})


# ----------------------------------------------------------------------------------------------
# E3's scorecard part (rule report_scorecard_e3)

def _quantity(frame: pd.DataFrame, quantity: str, **match) -> pd.Series | None:
    rows = frame[frame["quantity"] == quantity]
    for k, v in match.items():
        rows = rows[rows[k].astype(str) == str(v)]
    return rows.iloc[0] if len(rows) else None


def e3_rows(e3_manifest: str, e3_latents: str, e3_preprocessing: str, e3_memory: str, tol: dict,
            spreads: Mapping[tuple[str, str], Spread] | None = None) -> list[dict]:
    """Post IX's preprocessing time and memory (:data:`klvae.reference.POST_PREPROCESS_SECONDS`,
    ``POST_FLOAT32_GB``) and the AE-latent post's range (``POST_AE_LATENT_RANGE``) against rules
    ``e3_bench_preprocessing``, ``e3_bench_memory`` and ``e3_ae_latents_table``. The preprocessing
    rate was measured on the post's CPU: ``not comparable``, the note says whether ours is faster
    or slower and by what factor. The latent range is about CelebA's faces: on the synthetic
    stand-in (the manifest's ``standin``) it is ``not comparable`` too (basis ``other data``).
    The memory: one run, judged with the claim's same-backend
    spread in ``spreads`` (by ``("E3", id)``) where there is one, else the tolerance."""
    spreads = spreads or {}
    manifest = json.loads(Path(e3_manifest).read_text())
    data = manifest["data_label"]
    unmet = unmet_settings([("training faces", int(manifest["n_train"]), ref.POST_N_TRAIN, True)])
    rows = []
    pre = pd.read_csv(e3_preprocessing, keep_default_na=False)
    rate = _quantity(pre, "images_per_second_per_process", processes=1)
    if rate is not None:
        post = ref.POST_PREPROCESS_IMAGES / ref.POST_PREPROCESS_SECONDS
        ours = float(rate.value)
        secs = ref.POST_PREPROCESS_IMAGES / ours
        rows.append(claim_row("e3-ix-preprocess", "E3", "IX: crop + LANCZOS resize, 1 process",
                         f"1 process, {md_text(data)}", f"{post:.0f}", ours, "images/s per core",
                         Judgement("not comparable", "other hardware (post: its own CPU)",
                                   basis_kind=BASIS_OTHER_HARDWARE),
                         f"{speed_note(post, ours, 'images/s', higher_is_faster=True)}; post: "
                         f"{ref.POST_PREPROCESS_SECONDS:g} s for {ref.POST_PREPROCESS_IMAGES:,}, ours {secs:.0f} s; "
                         f"different CPU ({md_text(rate.cpu)}); the post also wrote q95 JPEGs", digits=0))
    mem = pd.read_csv(e3_memory, keep_default_na=False)
    f170 = _quantity(mem, "peak_rss_float32_at_170000_extrapolated")
    s170 = _quantity(mem, "peak_rss_stream_at_170000_extrapolated")
    if f170 is not None:
        ours = float(f170.value)
        stream = f"; this project's streamed uint8: {float(s170.value):.2f} GB" if s170 is not None else ""
        j = judge_value(ref.POST_FLOAT32_GB, ours, math.nan, 1, config_tolerance(tol, "memory_rel"), unmet,
                        spread=spreads.get(("E3", "e3-ix-memory")), nonnegative=is_nonnegative("GB"))
        rows.append(claim_row("e3-ix-memory", "E3", f"IX: {ref.POST_N_TRAIN:,} faces as one float32 array in RAM",
                         f"peak RSS, from {int(f170.n_images):,} images", f"{ref.POST_FLOAT32_GB:g}", ours, "GB", j,
                         join_notes(unmet, f"ours extrapolated to {ref.POST_N_TRAIN:,}{stream}"), digits=1))
    lat = pd.read_csv(e3_latents).iloc[0]
    lo, hi = ref.POST_AE_LATENT_RANGE
    frac = float(lat.frac_in_0_20)
    majority = float(tol["ae_latent_majority"])
    if manifest.get("standin"):
        # the claim is about CelebA's faces: an AE's latent values follow its data, and the
        # stand-in's faces are drawn, not photographed
        judged = Judgement("not comparable", "other data (post: CelebA; here the synthetic stand-in)",
                           basis_kind=BASIS_OTHER_DATA)
    else:
        judged = Judgement(judge(frac >= majority, unmet), f"\"most\" = ≥ {100 * majority:g} %, single run",
                           basis_kind=BASIS_TOLERANCE)
    rows.append(claim_row("e3-ae-latent-range", "E3", f"AE latent values mostly in {lo:g} < z_i < {hi:g}",
                     f"test faces, {md_text(data)}", "most", f"{100 * frac:.1f} %", "share of values", judged,
                     join_notes(unmet, f"ours: 1–99 % quantiles {lat.q01:.2f} to {lat.q99:.2f}")))
    return rows


def write_e3_scorecard(table: str, e3_manifest: str, e3_latents: str, e3_preprocessing: str, e3_memory: str,
                       tolerances: dict, profile: str, spreads=None, backend: str | None = None) -> None:
    """Rule ``report_scorecard_e3``: post IX's preprocessing time and memory and the AE latent
    range (:func:`e3_rows`) as E3's scorecard part.

    Args:
        table: output CSV (the scorecard's columns, one row per claim).
        e3_manifest, e3_latents, e3_preprocessing, e3_memory: the face manifest, the AE-latent
            summary and two E3 benchmark CSVs.
        tolerances: the validated ``scorecard`` section of the config.
        profile: the config's profile name.
        spreads, backend: optional same-setting spreads and the run's Keras backend.
    """
    book = same_backend(load_spreads(spreads), backend)
    write_part(table, e3_rows(e3_manifest, e3_latents, e3_preprocessing, e3_memory, tolerances, book), profile)
