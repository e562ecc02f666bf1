"""The report section "Does the framework matter?" (``report/_backend_study.qmd``): fragments and variables.

The section is rendered from one of three sources (rule ``report_study``,
``workflow/rules/study.smk``; chosen when the workflow is parsed, :func:`choose_source`):

* ``bundle`` -- the committed study bundle under ``bundles/`` (:mod:`klvae.bundle.study`),
  verified member by member before anything is read;
* ``results`` -- this checkout's study results (``results/backend_study/study/backend/``, written
  by ``make backend-study``; or this run's own, ``results/<profile>/study/backend/``);
* ``none`` -- the study has not been run: a short paragraph with the command that runs it.

The prose, the decision rule, the hypotheses, where the numbers come from and the tables' and
figure's captions are in the ``.qmd``; every number and every verdict comes from here, through
``{{< var study.* >}}`` variables and generated fragments (``_generated/backend_study.md``: the
generated include of the qmd files that fit the source, :mod:`klvae.report.includes`;
``_generated/study_backends.md`` and ``_generated/study_latent.md``: the bodies of the comparison
table and of the latent-code evidence). Each hypothesis' verdict is computed
by the fixed rule stated in the section (:func:`verdicts`). Never imports Keras. The study bundle
is data like any other: every string from it (backend names, verdict words, the manifest's dates)
is text (:mod:`klvae.report.escape`).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from klvae.formatting import fmt_coef
from klvae.io import write_text
from klvae.legacy import migrate_csv
from klvae.report import includes
from klvae.report.escape import Markdown, md_code, md_text, write_variables
from klvae.report.tables import MISSING, fmt_num, markdown_table

STUDY_ROOT = "study/backend"
#: Thresholds of the decision rules (fixed before the runs; quoted in the section through variables).
H1_SHARE = 0.90          # H1: 1/2 sum mu^2 is at least this share of the c = 0 test KL on both backends
H2_SIGMA_RATIO = 0.10    # H2a: median posterior sd below this fraction of the smaller z_mean sd per axis
NOT_RUN = "n/a"
#: Every verdict when the study has not been run (``report/_backend_study_notrun.qmd`` shows none).
NOT_TESTED = "not tested"
QUANTITY_NAMES = {"loss": "test loss", "reconstruction_loss": "reconstruction", "kl_loss": "KL divergence",
                  "train_loss": "training loss", "gap": "test − training loss"}


def choose_source(mode: str, bundles_dir: str | Path, results_dir: str | Path,
                  others=()) -> tuple[str, str | None]:
    """Where the section's numbers come from.

    Args:
        mode: ``auto`` (the newest committed study bundle; else this checkout's results if the
            study's tables exist, in ``results_dir`` or one of ``others``; else none), ``bundle``
            (the bundle, required) or ``results`` (the study's results of this run).
        bundles_dir: the repository's ``bundles/`` folder.
        results_dir: this run's results folder (``results/<profile>``, holding ``study/backend/``).
        others: other results folders ``auto`` looks in, in order (the backend study's own,
            ``results/backend_study``, where ``make backend-study`` writes).

    Returns:
        ``(kind, path)``: ``("bundle", archive)``, ``("results", folder)`` or ``("none", None)``.

    Raises:
        klvae.bundle.BundleError: a study bundle under ``bundles_dir`` is refused by verification,
            or ``mode`` is ``bundle`` and there is none.
        ValueError: an unknown ``mode``.
    """
    from klvae.bundle import core as kb
    from klvae.bundle.study import REQUIRED, find_study_bundle

    if mode not in ("auto", "bundle", "results"):
        raise ValueError(f"backend_study.report_source must be auto, bundle or results, got {mode!r}")
    if mode == "results":
        return "results", str(results_dir)
    found = find_study_bundle(bundles_dir)
    if found is not None:
        return "bundle", str(found)
    if mode == "bundle":
        raise kb.BundleError(f"{bundles_dir}: no backend-study-*.tar.gz (backend_study.report_source: bundle); "
                             "make one with `make backend-study` and `make study-bundle`")
    for folder in (results_dir, *others):
        if all((Path(folder) / rel).is_file() for rel in REQUIRED):
            return "results", str(folder)
    return "none", None


def source_digest(kind: str, path: str | None) -> str:
    """SHA-256 (16 hex) of what the section would be made from (a rerun trigger for rule ``report_study``):
    the archive's bytes, the study's result tables and record, or ``"none"``."""
    import hashlib

    from klvae.bundle.study import REQUIRED

    if kind == "none" or path is None:
        return "none"
    h = hashlib.sha256(kind.encode())
    files = [Path(path)] if kind == "bundle" else [Path(path) / rel for rel in REQUIRED]
    for f in files:
        h.update(f.read_bytes() if f.is_file() else b"missing")
    return h.hexdigest()[:16]


def read_source(kind: str, path: str) -> tuple[dict[str, bytes], dict]:
    """The study's files by name (relative to the results folder) and the variables naming where
    they come from (``report/_backend_study_source_<kind>.qmd`` words it).

    A bundle is verified completely first (:func:`klvae.bundle.study.read_study_bundle`); from a
    results folder the :data:`klvae.bundle.study.REQUIRED` files and every run's files are read.

    Returns:
        ``(contents, source)``: for a bundle, ``source`` holds ``bundle`` (its path, a code span),
        ``bundle_members`` (how many files it holds, each verified), ``manifest_sha256`` (the
        first 16 hex digits and an ellipsis, a code span) and ``packed`` (when, as its manifest
        says); for results, ``results_dir`` (the study's folder, a code span).
    """
    from klvae.bundle.study import read_study_bundle, study_members

    if kind == "bundle":
        _, contents, info = read_study_bundle(path)
        return contents, {"bundle": md_code("bundles/" + info["name"]), "bundle_members": int(info["members"]),
                          "manifest_sha256": md_code(info["manifest_sha256"][:16] + "…"),
                          "packed": info["created_utc"]}
    contents = {rel: p.read_bytes() for rel, p in study_members(path)}
    return contents, {"results_dir": md_code(f"{Path(path).as_posix()}/{STUDY_ROOT}/")}


def _csv(contents: dict[str, bytes], name: str) -> pd.DataFrame:
    # only empty fields are missing numbers: the verdict columns' "n/a" stays a string
    data = migrate_csv(name, contents[f"{STUDY_ROOT}/{name}"])  # an older bundle's columns, renamed
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])


def _pct(x: float) -> str:
    return NOT_RUN if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def _num(x, digits: int = 2) -> str:
    return NOT_RUN if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt_num(x, digits)


def _sig(x: float) -> str:
    return NOT_RUN if not math.isfinite(x) else f"{x:.3g}"


def verdicts(welch: pd.DataFrame, latent: pd.DataFrame, backends: list[str]) -> dict[str, str]:
    """Each hypothesis' verdict by the section's fixed rules (``supported``, ``refuted`` or ``not testable``).

    * H1 (c = 0: the KL measures the latent scale): ``supported`` if the mean part
      1/2 sum mu^2 is at least :data:`H1_SHARE` of the test-set KL on both backends (mean share
      over seeds), else ``refuted``.
    * H2a (c = 0.02: a nearly deterministic autoencoder): ``supported`` if on both backends the
      median posterior sd is below :data:`H2_SIGMA_RATIO` times the mean per-axis z_mean sd
      (means over seeds), else ``refuted``.
    * H2b (c = 0.02: the backend gap is one of generalisation): ``supported`` if the backends'
      difference in test - training loss (``gap``) has a Welch interval that excludes 0 while
      the one of the training loss does not, else ``refuted``.
    * H3 (with a shared init the backend gap is seed-to-seed noise): ``supported`` if no
      Welch interval at c = 0 or c = 0.02 for test loss, reconstruction or KL excludes 0,
      else ``refuted``.
    * control (c = 1): ``agree`` if none of those three intervals excludes 0, else ``differ``.

    ``not testable`` where the c is not in the study or a backend has fewer than 2 runs.
    """
    out = {}

    def lat(c, b):
        r = latent[(np.isclose(latent["c"], c)) & (latent["backend"] == b)]
        return None if r.empty else r.iloc[0]

    def wel(c, q):
        r = welch[(np.isclose(welch["c"], c)) & (welch["quantity"] == q)]
        return None if r.empty or r.iloc[0]["differ"] == "n/a" else r.iloc[0]

    rows = [lat(0.0, b) for b in backends]
    out["h1"] = "not testable" if any(r is None for r in rows) else (
        "supported" if all(r["mean_share"] >= H1_SHARE for r in rows) else "refuted")
    rows = [lat(0.02, b) for b in backends]
    out["h2a"] = "not testable" if any(r is None for r in rows) else (
        "supported" if all(r["sigma_median"] < H2_SIGMA_RATIO * r["z_mean_sd"] for r in rows) else "refuted")
    gap, train = wel(0.02, "gap"), wel(0.02, "train_loss")
    out["h2b"] = "not testable" if gap is None or train is None else (
        "supported" if gap["differ"] == "yes" and train["differ"] == "no" else "refuted")
    main = [wel(c, q) for c in (0.0, 0.02) for q in ("loss", "reconstruction_loss", "kl_loss")]
    out["h3"] = "not testable" if any(r is None for r in main) else (
        "refuted" if any(r["differ"] == "yes" for r in main) else "supported")
    control = [wel(1.0, q) for q in ("loss", "reconstruction_loss", "kl_loss")]
    out["control"] = "not testable" if any(r is None for r in control) else (
        "differ" if any(r["differ"] == "yes" for r in control) else "agree")
    return out


def comparison_table(welch: pd.DataFrame, backends: list[str]) -> str:
    """The body of the section's main table: per c and quantity both backends' mean ± sd (n), the
    difference with its 95 % Welch interval, the verdict, the post's value and whether it is inside
    each backend's prediction interval."""
    a, b = backends
    rows = []
    for r in welch.itertuples(index=False):
        r = r._asdict()
        post_in = " / ".join(r[f"post_inside_{x}"] for x in backends)
        rows.append([fmt_coef(r["c"]), QUANTITY_NAMES.get(r["quantity"], r["quantity"]),
                     f"{fmt_num(r[f'mean_{a}'])} ± {fmt_num(r[f'sd_{a}'])} ({r[f'n_{a}']})",
                     f"{fmt_num(r[f'mean_{b}'])} ± {fmt_num(r[f'sd_{b}'])} ({r[f'n_{b}']})",
                     fmt_num(r["difference"]), f"[{fmt_num(r['ci_low'])}, {fmt_num(r['ci_high'])}]",
                     Markdown(f"**{md_text(r['differ'])}**"), fmt_num(r["post"]),
                     post_in if not pd.isna(r["post"]) else MISSING])
    return markdown_table(["c", "quantity", a, b, "difference", "95 % interval", "differ", "post",
                           "post inside"], rows, align="llrrrrlrl")


def latent_table(latent: pd.DataFrame) -> str:
    """The body of the latent-code evidence table per c and backend (means ± sd over seeds)."""
    rows = []
    for r in latent.sort_values(["c", "backend"]).itertuples(index=False):
        r = r._asdict()
        rows.append([fmt_coef(r["c"]), r["backend"], f"{fmt_num(r['kl_loss'])} ± {fmt_num(r['kl_loss_sd'])}",
                     f"{fmt_num(r['kl_mean_part'])} ± {fmt_num(r['kl_mean_part_sd'])}",
                     f"{fmt_num(r['kl_variance_part'])} ± {fmt_num(r['kl_variance_part_sd'])}",
                     _pct(r["mean_share"]), f"{fmt_num(r['z_mean_sd'])} ± {fmt_num(r['z_mean_sd_sd'])}",
                     fmt_num(r["z_log_var_median"]), f"{r['sigma_median']:.3g}",
                     f"{fmt_num(r['gap'])} ± {fmt_num(r['gap_sd'])}", str(int(r["n"]))])
    return markdown_table(["c", "backend", "KL", "½Σμ²", "variance part", "share", "z_mean sd", "median z_log_var",
                           "median σ", "test − train", "n"], rows, align="llrrrrrrrrr")


def _backend_value(latent: pd.DataFrame, c: float, b: str, col: str) -> float:
    r = latent[(np.isclose(latent["c"], c)) & (latent["backend"] == b)]
    return float(r.iloc[0][col]) if not r.empty else math.nan


def not_run_variables(command: str, settings: dict | None = None) -> dict:
    """The ``study`` variables when the study has not been run: the planned design from the
    config's ``backend_study`` section (``settings``: coefficients, seeds, backends, epochs, image
    counts; ``n/a`` without it), every number ``n/a``, every verdict :data:`NOT_TESTED`."""
    keys = ["seeds", "n_seeds", "epochs", "n_train", "n_test", "coefficients", "backends", "cpu_hours",
            "s_per_epoch"]
    v = {k: NOT_RUN for k in keys}
    if settings:
        seeds = list(settings.get("seeds") or [])
        v.update(seeds=", ".join(str(x) for x in seeds), n_seeds=len(seeds), epochs=int(settings["epochs"]),
                 n_train=f"{int(settings['n_train']):,}", n_test=f"{int(settings['n_test']):,}",
                 coefficients=", ".join(fmt_coef(float(c)) for c in sorted(settings["coefficients"])),
                 backends=" and ".join(settings.get("backends") or []))
    for b in ("tensorflow", "jax"):
        for k in ("h1_share", "h1_kl", "h1_mean_part", "h1_variance_part", "h1_z_sd", "h2_log_var", "h2_sigma",
                  "h2_z_sd", "h2_gap"):
            v[f"{k}_{b}"] = NOT_RUN
    v.update({f"{h}_verdict": NOT_TESTED for h in ("h1", "h2a", "h2b", "h3", "control")})
    v.update(n_differ=NOT_RUN, n_rows=NOT_RUN, status="not run", command=md_code(command))
    return v


def study_fragments(contents: dict[str, bytes], kind: str, source: dict, command: str) -> tuple[str, str, dict, bytes]:
    """The two table bodies, the variables and the figure's bytes from the study's files.

    Args:
        contents, source: :func:`read_source`'s answer for ``kind`` (``bundle`` or ``results``).

    Returns:
        ``(backends_md, latent_md, variables, png_bytes)``: :func:`comparison_table`,
        :func:`latent_table`, the ``study`` variables (among them ``status``, the source's kind,
        the variables of ``source``, and ``backend_a``/``backend_b``, the compared backends in
        the comparison table's order) and the loss curves' PNG.
    """
    welch = _csv(contents, "tables/backends.csv")
    runs = _csv(contents, "tables/runs.csv")
    latent = _csv(contents, "tables/latent.csv")
    run = json.loads(contents[f"{STUDY_ROOT}/run.json"])
    settings = run.get("study", {})
    backends = list(settings.get("backends") or sorted(runs["backend"].unique()))
    verdict = verdicts(welch, latent, backends)
    seconds = []
    for name, blob in contents.items():
        if name.startswith(STUDY_ROOT + "/") and name.endswith("/timing.json"):
            t = json.loads(blob)
            seconds.append((t["backend"], float(np.median(t["epoch_seconds"]))))
    per_backend = {b: float(np.median([s for x, s in seconds if x == b])) for b in backends
                   if any(x == b for x, _ in seconds)}
    main = comparison_table(welch, backends)
    diff_rows = welch[welch["quantity"].isin(["loss", "reconstruction_loss", "kl_loss"])]
    v = {
        "status": kind, **source, "command": md_code(command),
        "seeds": ", ".join(str(s) for s in sorted(runs["seed"].unique())), "n_seeds": int(runs["seed"].nunique()),
        "epochs": int(runs["epochs"].max()), "n_train": f"{int(runs['n_train'].max()):,}",
        "n_test": f"{int(runs['n_test'].max()):,}",
        "coefficients": ", ".join(fmt_coef(c) for c in sorted(runs["c"].unique())),
        "backends": " and ".join(backends), "backend_a": backends[0], "backend_b": backends[1],
        "cpu_hours": f"{run.get('cpu_seconds', math.nan) / 3600:.2f}" if run.get("cpu_seconds") else NOT_RUN,
        "s_per_epoch": ", ".join(f"{b} {s:.1f} s" for b, s in per_backend.items()) or NOT_RUN,
        "n_differ": int((diff_rows["differ"] == "yes").sum()), "n_rows": len(diff_rows),
        **{f"{h}_verdict": verdict[h] for h in ("h1", "h2a", "h2b", "h3")}, "control_verdict": verdict["control"],
    }
    for b in ("tensorflow", "jax"):
        v.update({f"h1_share_{b}": _pct(_backend_value(latent, 0.0, b, "mean_share")),
                  f"h1_kl_{b}": _num(_backend_value(latent, 0.0, b, "kl_loss")),
                  f"h1_mean_part_{b}": _num(_backend_value(latent, 0.0, b, "kl_mean_part")),
                  f"h1_variance_part_{b}": _num(_backend_value(latent, 0.0, b, "kl_variance_part")),
                  f"h1_z_sd_{b}": _num(_backend_value(latent, 0.0, b, "z_mean_sd")),
                  f"h2_log_var_{b}": _num(_backend_value(latent, 0.02, b, "z_log_var_median")),
                  f"h2_sigma_{b}": _sig(_backend_value(latent, 0.02, b, "sigma_median")),
                  f"h2_z_sd_{b}": _num(_backend_value(latent, 0.02, b, "z_mean_sd")),
                  f"h2_gap_{b}": _num(_backend_value(latent, 0.02, b, "gap"))})
    return main, latent_table(latent), v, contents[f"{STUDY_ROOT}/figures/losses.png"]


#: Columns of the spreads file E1's scorecard reads (:func:`klvae.report.scorecard.load_spreads`, plus ``note``).
SPREAD_COLUMNS = ("experiment", "id", "backend", "mean", "sd", "n", "source", "note")
#: The study's quantities -> the short names of E1's scorecard claim ids (``e1-c<c>-<short>``).
CLAIM_SHORT = {"loss": "loss", "reconstruction_loss": "rec", "kl_loss": "kl"}
#: E1 settings that must be equal in the study and in a run for the study's spread to judge that run's claims.
SAME_SETTING = ("epochs", "n_train", "n_test", "batch_size", "learning_rate", "z_dim", "intermediate_dim")


def _e1_setting(study: dict, e1: dict) -> dict:
    """The study's E1 setting (its ``backend_study`` section and the E1 architecture it trained)."""
    return {"epochs": study.get("epochs"), "n_train": study.get("n_train"), "n_test": study.get("n_test"),
            "batch_size": study.get("batch_size"), "learning_rate": study.get("learning_rate"),
            "z_dim": e1.get("z_dim"), "intermediate_dim": e1.get("intermediate_dim")}


def _normal(key: str, value):
    """``n_train``/``n_test`` of None mean all of MNIST's 60,000 / 10,000 images."""
    if value is None and key in ("n_train", "n_test"):
        return 60_000 if key == "n_train" else 10_000
    return float(value) if isinstance(value, (int, float)) else value


def study_spreads(contents: dict[str, bytes], source: str, e1_settings: dict | None) -> list[dict]:
    """The study's spread per E1 scorecard claim and backend, for judging a run with one run per c.

    ``source`` names where the numbers come from in the scorecard's basis (e.g. ``the backend
    study (backend-study-2c10aae.tar.gz)``). Rows only when the study trained the same E1 setting
    as this run (:data:`SAME_SETTING`, from the study's ``config.yaml`` against ``e1_settings``,
    this run's ``e1`` section); otherwise none.

    Returns:
        Rows of :data:`SPREAD_COLUMNS`: ``("E1", "e1-c<c>-<loss|rec|kl>", backend)`` with the
        backend's mean, sd and n over seeds, ``source`` (text, named in the scorecard's basis) and a
        ``note`` on what the study found for that claim (do the backends differ; is the post's
        value inside each backend's 95 % prediction interval), Markdown with the backends' names
        escaped (:mod:`klvae.report.escape`).
    """
    if not e1_settings:
        return []
    config = yaml.safe_load(contents[f"{STUDY_ROOT}/config.yaml"]) or {}
    theirs = _e1_setting(config.get("backend_study") or {}, config.get("e1") or {})
    if any(_normal(k, theirs.get(k)) != _normal(k, e1_settings.get(k)) for k in SAME_SETTING):
        return []
    welch = _csv(contents, "tables/backends.csv")
    backends = [c[len("mean_"):] for c in welch.columns if c.startswith("mean_")]
    rows = []
    for r in welch[welch["quantity"].isin(list(CLAIM_SHORT))].to_dict("records"):
        id_ = f"e1-c{float(r['c']):g}-{CLAIM_SHORT[r['quantity']]}"
        inside = [b for b in backends if r.get(f"post_inside_{b}") == "yes"]
        where_post = ("inside both backends' 95 % prediction intervals" if len(inside) == len(backends)
                      else f"inside {' and '.join(md_text(b) for b in inside)}'s 95 % prediction interval only"
                      if inside
                      else "inside neither backend's 95 % prediction interval")
        note = (f"backend study (n = {int(r[f'n_{backends[0]}'])} seeds per backend, shared initial weights): the "
                f"backends {'differ' if r['differ'] == 'yes' else 'do not differ'} here; the post's value is "
                f"{where_post}")
        for b in backends:
            if int(r[f"n_{b}"]) >= 2 and math.isfinite(float(r[f"sd_{b}"])):
                rows.append({"experiment": "E1", "id": id_, "backend": b, "mean": float(r[f"mean_{b}"]),
                             "sd": float(r[f"sd_{b}"]), "n": int(r[f"n_{b}"]), "source": source, "note": note})
    return rows


def write_study(md: str, backends_md: str, latent_md: str, variables: str, source_kind: str,
                source_path: str | None = None,
                figure: str | list[str] | None = None, command: str = "make backend-study",
                settings: dict | None = None, spreads: str | None = None, e1_settings: dict | None = None) -> dict:
    """Rule ``report_study``: the section's fragments, its ``study`` variables and (with results) its figure.

    Args:
        md: output, ``_generated/backend_study.md``, the generated include of the section's prose
            (:mod:`klvae.report.includes`): ``report/_backend_study_source_<kind>.qmd`` (where the
            numbers come from) and ``report/_backend_study_results.qmd`` (the tables, the figure
            and the hypotheses, with their captions), or ``report/_backend_study_notrun.qmd``
            (the study has not been run, and how to run it).
        backends_md: output, ``_generated/study_backends.md``: the comparison table's body
            (:func:`comparison_table`; empty when not run).
        latent_md: output, ``_generated/study_latent.md``: the latent evidence table's body
            (:func:`latent_table`; empty when not run).
        variables: output YAML with the ``study`` variables (:func:`study_fragments`,
            :func:`not_run_variables`) and the decision rules' thresholds.
        source_kind, source_path: :func:`choose_source`'s answer.
        figure: output PNG (the study's loss curves) -- required unless ``source_kind`` is ``none``.
        settings: the config's ``backend_study`` section: the planned design the section names when
            the study has not been run (:func:`not_run_variables`).
        command: the command that runs the study (quoted in the not-run paragraph).
        spreads: output CSV for E1's scorecard (:func:`study_spreads`; only a header when the
            study has not been run or trained another E1 setting than ``e1_settings``).
        e1_settings: this run's ``e1`` section of the config.

    Returns:
        The variables as written (escaped, :func:`~klvae.report.escape.write_variables`).

    Raises:
        klvae.bundle.BundleError: the bundle is refused by verification.
        ValueError: results exist but no ``figure`` path was given.
    """
    if isinstance(figure, (list, tuple)):  # the rule's named output is a list (empty when not run)
        figure = str(figure[0]) if figure else None
    thresholds = {"h1_threshold": f"{100 * H1_SHARE:.0f} %", "h2_ratio": f"{100 * H2_SIGMA_RATIO:.0f} %"}
    if source_kind == "none":
        values = {**not_run_variables(command, settings), **thresholds}
        write_text(backends_md, "")
        write_text(latent_md, "")
        spread_rows = []
    else:
        if figure is None:
            raise ValueError("the study has results but no figure path was given for the report")
        contents, source = read_source(source_kind, source_path)
        backends_text, latent_text, values, png = study_fragments(contents, source_kind, source, command)
        label = Path(source_path).name if source_kind == "bundle" else f"{source_path}/study/backend"
        spread_rows = study_spreads(contents, f"the backend study ({label})", e1_settings)
        values.update(thresholds)
        write_text(backends_md, backends_text)
        write_text(latent_md, latent_text)
        Path(figure).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(figure).with_name(Path(figure).stem + ".tmp.png")
        tmp.write_bytes(png)
        tmp.replace(figure)
    write_text(md, includes.fragment("backend_study.md", source=source_kind))  # the prose: report/
    values = write_variables(variables, {"study": values})["study"]
    if spreads is not None:
        frame = pd.DataFrame(spread_rows, columns=list(SPREAD_COLUMNS))
        write_text(spreads, frame.to_csv(index=False, lineterminator="\n"))
    return values
