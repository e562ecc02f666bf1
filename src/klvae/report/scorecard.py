"""The reproduction scorecard: every numeric claim of the posts beside this run's number, with a verdict.

The posts' numbers come from :mod:`klvae.reference` only, ours from the pipeline's output files
(CSV, JSON, the E2 latent ``.npz``), the tolerances from the config's ``scorecard`` section.
Each claim gets one of five verdicts (:data:`VERDICTS`; :func:`judge_value`, :func:`judge_ratio`):

* ``reproduced`` -- the post's number lies inside our prediction interval for one new run
  (where we have n >= 2 runs of the setting; for a single run, where a spread of the same
  setting measured on the same Keras backend is supplied, :class:`Spread`), or, for a single
  run without one, ours lies within the config's tolerance of the post's number (the ``basis``
  column says which);
* ``differs`` -- it does not;
* ``inconclusive`` -- a ratio whose prediction interval meets the range the post claims but is
  wider than it (post VII's 1.3-1.5x slowdown against an interval of 0.06 to 2.09): it
  neither confirms nor refutes the claim;
* ``not comparable`` -- an absolute time or rate the post measured on its own hardware (a GTX
  960, the post's CPU): ours is shown, the note says whether ours is faster or slower and by
  what factor;
* ``paper profile only`` -- the post's number needs settings this run did not use (fewer
  epochs, a subset of the data); ours is still shown, the note says which setting differs.

Whether settings match is read from the outputs (epochs, image counts, batch size, KL weight
recorded by the training and preprocessing jobs), not from the profile's name.

The scorecard's rows are written by the report's code (rules ``report_scorecard_<experiment>``,
remade from the data when a report is rendered from a bundle): their ``claim``, ``compared``,
``basis`` and ``note`` are Markdown (a strategy in a code span, a reference to a section), with
every string from the data escaped where it enters (:mod:`klvae.report.escape`); the other
columns are text.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from klvae.io import write_rows, write_text
from klvae.report.escape import Markdown, md_text, write_variables
from klvae.report.tables import MISSING, markdown_table
from klvae.stats import LEVEL, prediction_interval

VERDICTS = ("reproduced", "differs", "inconclusive", "not comparable", "paper profile only")
COLUMNS = ("id", "experiment", "claim", "compared", "post_value", "ours", "sd", "n", "interval", "basis", "verdict",
           "unit", "profile", "note")
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000


@dataclass(frozen=True)
class Tolerance:
    """A fixed tolerance from the config's ``scorecard`` section, used where we have one run.

    Attributes:
        kind: ``"rel"`` (a fraction of the post's value) or ``"abs"`` (in the claim's unit).
        amount: the fraction or the absolute amount (> 0).
        unit: printed after an absolute amount (e.g. ``"nats"``).
    """

    kind: str
    amount: float
    unit: str = ""

    def within(self, ours: float, post: float) -> bool:
        """Whether ``|ours - post|`` is at most the tolerance (relative to ``|post|`` for ``rel``)."""
        return abs(ours - post) <= (self.amount * abs(post) if self.kind == "rel" else self.amount)

    @property
    def text(self) -> str:
        """``"±2 %"`` or ``"±1 nats"``."""
        return f"±{100 * self.amount:g} %" if self.kind == "rel" else f"±{self.amount:g}" + (
            f" {self.unit}" if self.unit else "")


@dataclass(frozen=True)
class Spread:
    """Run-to-run spread of one claim's setting, measured in another run of this project on one
    Keras backend (a shipped paper run's replicates, the backend study), for judging a claim
    where this run has a single run of the setting.

    Attributes:
        mean, sd: mean and sample standard deviation (``ddof=1``) over the runs, in the claim's unit.
        n: number of runs (>= 2).
        backend: the Keras backend they ran on (``tensorflow``, ``jax``, ``torch``).
        source: where they come from, as printed in the basis (a bundle or file name).
    """

    mean: float
    sd: float
    n: int
    backend: str
    source: str

    def interval(self, value: float, level: float = LEVEL) -> tuple[float, float]:
        """Where one more run should fall, given one run ``value`` and this spread:
        ``value ± t(n - 1, (1 + level) / 2) · sd · sqrt(1 + 1/1)`` -- :func:`prediction_interval`
        with the run-to-run sd taken from these ``n`` runs and ``value`` a mean of one run."""
        half = float(student_t.ppf((1 + level) / 2, self.n - 1)) * self.sd * math.sqrt(2.0)
        return value - half, value + half


#: (experiment, claim id, backend), e.g. ``("E1", "e1-c0-kl", "tensorflow")``.
SpreadKey = tuple[str, str, str]


def load_spreads(spreads: str | Path | Mapping | None) -> dict[SpreadKey, Spread]:
    """Supplied same-setting spreads, by (experiment, claim id, backend).

    Args:
        spreads: ``None`` (none supplied: ``{}``); a CSV file with columns ``experiment``,
            ``id`` (the scorecard's claim id), ``backend``, ``mean``, ``sd``, ``n`` and optional
            ``source`` (default: the file's name); or a mapping ``{(experiment, id, backend):
            Spread | {"mean", "sd", "n", "source"} | (mean, sd, n, source)}``.

    Raises:
        ValueError: a spread with ``n < 2``, a negative or non-finite ``sd``, or an empty backend
            (the message names its key).
    """
    if spreads is None:
        return {}
    if isinstance(spreads, (str, Path)):
        frame = pd.read_csv(spreads, keep_default_na=False)
        items = {(str(r["experiment"]), str(r["id"]), str(r["backend"])):
                 (float(r["mean"]), float(r["sd"]), int(r["n"]), str(r.get("source") or Path(spreads).name))
                 for r in frame.to_dict("records")}
    else:
        items = dict(spreads)
    out: dict[SpreadKey, Spread] = {}
    for (experiment, id_, backend), v in items.items():
        if isinstance(v, Spread):
            spread = v
        elif isinstance(v, Mapping):
            spread = Spread(float(v["mean"]), float(v["sd"]), int(v["n"]), backend, str(v.get("source", "")))
        else:
            mean, sd, n, source = v
            spread = Spread(float(mean), float(sd), int(n), backend, str(source))
        key = (str(experiment), str(id_), str(backend).strip().lower())
        if not key[2] or spread.backend.strip().lower() != key[2]:
            raise ValueError(f"spread {key}: the backend must be named, and match the Spread's ({spread.backend!r})")
        if spread.n < 2 or not (math.isfinite(spread.sd) and spread.sd >= 0):
            raise ValueError(f"spread {key}: needs n >= 2 runs and a finite sd >= 0, got n = {spread.n}, "
                             f"sd = {spread.sd}")
        out[key] = Spread(spread.mean, spread.sd, spread.n, key[2], spread.source)
    return out


def same_backend(spreads: Mapping[SpreadKey, Spread], backend: str | None) -> dict[tuple[str, str], Spread]:
    """The supplied spreads measured on ``backend`` (this run's Keras backend), by (experiment,
    claim id). A spread of another backend is never used: ``{}`` where ``backend`` is unknown."""
    if not backend:
        return {}
    b = backend.strip().lower()
    return {(e, i): sp for (e, i, kb), sp in spreads.items() if kb == b}


@dataclass(frozen=True)
class Judgement:
    """How one claim was judged: the verdict, the basis in words and the interval used.

    ``lo``/``hi`` are the prediction interval (basis ``prediction interval``) or the band the
    tolerance allows around the post's value (basis ``tolerance``); NaN where neither applies.
    """

    verdict: str
    basis: str
    lo: float = math.nan
    hi: float = math.nan


def judge_value(post: float, mean: float, sd: float, n: int, tolerance: Tolerance,
                unmet: Sequence[str] = (), comparable: bool = True, what: str = "runs",
                spread: Spread | None = None) -> Judgement:
    """The verdict rule for one numeric claim.

    * ``n >= 2`` runs with ``sd > 0``: ``reproduced`` when the post's value lies inside our
      :func:`prediction_interval`, else ``differs``; basis ``prediction interval, n = 3``.
    * one run, or ``n >= 2`` identical runs (``sd == 0`` gives a zero-width interval that
      says nothing about run-to-run noise), with a ``spread`` of the same setting measured on
      the same backend: ``reproduced`` when the post's value lies inside
      :meth:`Spread.interval` around ours; basis ``prediction interval, single run ± spread of
      n = 3 runs of the same setting on tensorflow from <source>``.
    * the same without a ``spread``: ``reproduced`` when ours is within ``tolerance`` of the
      post's; basis ``tolerance ±2 %, single run`` (or ``..., 3 identical runs``).
    * ``not comparable`` (``comparable`` false) and ``paper profile only`` (``unmet``
      settings) take precedence; the basis and interval are still computed and shown.

    Args:
        post: the post's value. mean: ours (mean over runs). sd: sample sd (NaN for one run).
        n: runs behind ``mean``. tolerance: used where no spread is known.
        unmet: our settings that differ from the post's (text). what: what ``n`` counts.
        spread: the same setting's spread on this run's backend (:func:`same_backend`), or None.
    """
    runs = "single run" if n < 2 else f"{n} identical {what}"
    if n >= 2 and sd > 0:
        lo, hi = prediction_interval(mean, sd, n)
        ok, basis = lo <= post <= hi, f"prediction interval, n = {n}" + ("" if what == "runs" else f" {what}")
    elif spread is not None and spread.sd > 0:
        lo, hi = spread.interval(mean)
        ok = lo <= post <= hi
        basis = (f"prediction interval, {runs} ± spread of n = {spread.n} runs of the same setting on "
                 f"{md_text(spread.backend)} from {md_text(spread.source)}")
    else:
        band = tolerance.amount * abs(post) if tolerance.kind == "rel" else tolerance.amount
        lo, hi = post - band, post + band
        ok = tolerance.within(mean, post)
        basis = f"tolerance {tolerance.text}, {runs}"
    return Judgement(judge(ok, list(unmet), comparable), basis, lo, hi)


def judge(ok: bool, unmet: list[str] = (), comparable: bool = True, inconclusive: bool = False) -> str:
    """The verdict: ``not comparable`` beats ``paper profile only`` (``unmet`` settings) beats
    ``inconclusive`` beats the number (``reproduced`` if ``ok``, else ``differs``)."""
    if not comparable:
        return "not comparable"
    if unmet:
        return "paper profile only"
    if inconclusive:
        return "inconclusive"
    return "reproduced" if ok else "differs"


def ratio_verdict(lo: float, hi: float, post_lo: float, post_hi: float) -> str:
    """The verdict of a ratio's interval ``lo..hi`` against the post's range ``post_lo..post_hi``
    (equal ends for a point claim): ``differs`` when they do not meet; ``inconclusive`` when they
    meet but the interval is wider than a claimed range (``hi - lo > post_hi - post_lo > 0``: it
    would also hold values the claim excludes, e.g. 0.06 to 2.09 against 1.3 to 1.5); else
    ``reproduced``."""
    meets = lo <= post_hi and post_lo <= hi
    return judge(meets, inconclusive=meets and post_hi > post_lo and hi - lo > post_hi - post_lo)


def judge_ratio(per_window: np.ndarray, single: float, post_lo: float, post_hi: float,
                tolerance: Tolerance) -> tuple[Judgement, float, float, int]:
    """The verdict rule for a ratio of step times, judged on its spread over timing windows.

    * ``n >= 2`` windows with a spread: the 95 % :func:`prediction_interval` of the per-window
      ratios, judged by :func:`ratio_verdict` against the post's range ``post_lo..post_hi``
      (``inconclusive``: the basis gives the interval). A point claim (``post_lo == post_hi``)
      is ``reproduced`` when the interval contains it.
    * no windows, or identical ones: ``single`` (the ratio of the medians) must lie within
      ``tolerance`` (absolute) of the post's range.

    Args:
        per_window: the ratio in each window (dimensionless, any length).
        single: the ratio of the strategies' medians, used without a spread.
        post_lo, post_hi: the range the post claims (equal for a point claim).
        tolerance: an absolute tolerance for the no-spread case.

    Returns:
        ``(judgement, ours, sd, n)``: ours is the mean over windows (``single`` without a
        spread), sd their sample sd (NaN for fewer than 2), n the number of windows.
    """
    n = len(per_window)
    sd = float(np.std(per_window, ddof=1)) if n > 1 else math.nan
    if n >= 2 and sd > 0:
        mean = float(np.mean(per_window))
        lo, hi = prediction_interval(mean, sd, n)
        verdict = ratio_verdict(lo, hi, post_lo, post_hi)
        basis = f"prediction interval, n = {n} windows"
        if verdict == "inconclusive":
            basis += f": {lo:.2f} to {hi:.2f}, wider than the post's range {post_lo:g}–{post_hi:g}"
        return Judgement(verdict, basis, lo, hi), mean, sd, n
    ok = post_lo - tolerance.amount <= single <= post_hi + tolerance.amount
    what = f"{n} identical windows" if n >= 2 else "one benchmark run"
    return (Judgement(judge(ok), f"tolerance {tolerance.text}, {what}", post_lo - tolerance.amount,
                      post_hi + tolerance.amount), single, sd, n)


def speed_note(post: float, ours: float, unit: str, higher_is_faster: bool) -> str:
    """Which run was faster, and by what factor: ``"ours 1.39× faster (1,162 vs 833 images/s)"``.

    Args:
        post, ours: the post's and our time or rate (> 0), in ``unit``.
        higher_is_faster: True for a rate (images/s), False for a time (ms/step, s/epoch).
    """
    factor = (ours / post) if higher_is_faster else (post / ours)
    digits = 0 if max(post, ours) >= 100 else 1
    numbers = f"({ours:,.{digits}f} vs {post:,.{digits}f} {unit})"
    if round(factor, 2) == 1:
        return f"ours as fast {numbers}"
    return (f"ours {factor:.2f}× faster " if factor > 1 else f"ours {1 / factor:.2f}× slower ") + numbers


def unmet_settings(checks: list[tuple[str, object, object, bool]]) -> list[str]:
    """Settings of our run that do not match the post's, as text.

    Args:
        checks: ``(name, ours, post's, at_least)``; with ``at_least`` ours may exceed the post's
            (epochs, image counts), otherwise it must equal it.
    """
    out = []
    for name, ours, post, at_least in checks:
        ok = ours >= post if at_least else math.isclose(ours, post, rel_tol=1e-9)
        if not ok:
            out.append(f"{name} {ours:,} (post {post:,})" if isinstance(post, int)
                       else f"{name} {ours:g} (post {post:g})")
    return out


def join_notes(unmet: list[str], *more: str) -> str:
    parts = ([f"this run: {', '.join(unmet)}"] if unmet else []) + [m for m in more if m]
    return "; ".join(parts)


def _fmt(x: float, digits: int) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def claim_row(id_, experiment, claim, compared, post_value, ours, unit, judgement: Judgement, note="", *, sd=math.nan,
         n=1, digits=2) -> dict:
    """One scorecard row (:data:`COLUMNS` less ``profile``); ``ours`` a number or text."""
    interval = "" if math.isnan(judgement.lo) else f"{judgement.lo:.{digits}f} to {judgement.hi:.{digits}f}"
    return {"id": id_, "experiment": experiment, "claim": claim, "compared": compared, "post_value": post_value,
            "ours": ours if isinstance(ours, str) else f"{ours:.{digits}f}", "sd": _fmt(sd, digits) if n > 1 else "",
            "n": int(n), "interval": interval, "basis": judgement.basis, "verdict": judgement.verdict,
            "unit": unit, "note": note}


def config_tolerance(tol: dict, key: str, kind: str = "rel", unit: str = "") -> Tolerance:
    return Tolerance(kind, float(tol[key]), unit)


def run_backend(e2_timing: str) -> str | None:
    """This run's Keras backend, as rule ``e2_timing`` recorded it (column ``backend``), or None."""
    t = pd.read_csv(e2_timing, keep_default_na=False)
    value = str(t["backend"].iloc[0]).strip().lower() if "backend" in t.columns and len(t) else ""
    return value or None


def verdict_counts(rows: list[dict]) -> dict[str, dict[str, int]]:
    """``{experiment: {verdict: count}}`` with every verdict of :data:`VERDICTS` (0 if none),
    plus ``"all"``."""
    out: dict[str, dict[str, int]] = {}
    for key in [*dict.fromkeys(r["experiment"] for r in rows), "all"]:
        picked = [r["verdict"] for r in rows if key in ("all", r["experiment"])]
        out[key] = {v: picked.count(v) for v in VERDICTS}
    return out


def _summary_text(counts: dict[str, int]) -> str:
    n = sum(counts.values())
    parts = [f"{counts[v]} {'differ' if v == 'differs' else v}" for v in VERDICTS if counts[v]]
    return f"{n} claims: " + ", ".join(parts)


def _unbroken(value) -> str:
    """A number or range (``-3 to 4.5``, ``1.3–1.5``) that a narrow table cell must not break:
    no-break spaces, and a word joiner (U+2060) after each en dash; text (``--``: :data:`MISSING`)."""
    if str(value) == "--":
        return MISSING
    return str(value).replace(" ", "\u00a0").replace("–", "–\u2060")


def _table(rows: list[dict], experiment: str, profile: str, title: str) -> str:
    """One experiment's claims: a pipe table (one row per claim) with caption and
    ``{#tbl-scorecard-e1}``-style id; notes shared by rows are numbered under the table.

    Unlike the other tables of the report, this one's caption is written here: there is one
    table per registered experiment (an experiment added to the registry gets its table without
    an edit of ``report/_scorecard.qmd``), so the tables and their captions are data."""
    notes: list[str] = []
    body = []
    for r in rows:
        if r["note"] and r["note"] not in notes:
            notes.append(r["note"])
        mark = str(notes.index(r["note"]) + 1) if r["note"] else ""
        verdict = Markdown("**differs**") if r["verdict"] == "differs" else r["verdict"]
        basis = r["basis"].replace("prediction interval", "PI").replace("tolerance ", "")
        interval = r["interval"] if r["basis"].startswith("prediction interval") and r["interval"] not in basis else ""
        body.append([Markdown(r["claim"]), Markdown(r["compared"]),
                     *(_unbroken(r[k]) for k in ("post_value", "ours", "sd")), str(r["n"]) if r["n"] else "",
                     Markdown(f"{basis}: {md_text(interval)}" if interval else basis), verdict, mark])
    units = sorted({r["unit"] for r in rows})
    caption = (f"Scorecard, {md_text(title)} ({md_text(profile)} profile; unit: {md_text(', '.join(units))}). "
               f"ours: the mean over n runs (sd: their sample standard deviation); basis: the 95 % prediction "
               f"interval (PI) for one new run where n ≥ 2 (or where a spread of the same setting on the same "
               f"backend is supplied), else the config's tolerance. "
               f"{_summary_text({v: sum(r['verdict'] == v for r in rows) for v in VERDICTS})}. "
               "{{< var made_by.report_scorecard >}}")
    table = markdown_table(["claim", "compared", "post", "ours", "sd", "n", "basis", "verdict", "note"], body,
                           align="llrrrrlll") + f"\n: {caption} {{#tbl-scorecard-{experiment.lower()}}}\n"
    listed = "".join(f"{i}. {n}\n" for i, n in enumerate(notes, 1))
    return table + (f"\nNotes to @tbl-scorecard-{experiment.lower()}:\n\n{listed}" if notes else "")


def scorecard_markdown(rows: list[dict], profile: str, titles: Mapping[str, str] | None = None) -> str:
    """The scorecard fragment: a summary line counting verdicts per experiment, then one table
    per experiment (``{#tbl-scorecard-e1}``, ``-e2``, ``-e3``), one row per claim; ``titles``:
    experiment -> its table's title (default: the experiment's name)."""
    titles = titles or {}
    counts = verdict_counts(rows)
    experiments = [e for e in counts if e != "all"]
    summary = "**Summary.** " + "; ".join(f"{md_text(e)}: {_summary_text(counts[e])}" for e in experiments) + \
        f". All: {_summary_text(counts['all'])}.\n\n"
    return summary + "\n".join(_table([r for r in rows if r["experiment"] == e], e, profile, titles.get(e, e))
                                for e in experiments)


def write_part(table: str, rows: list[dict], profile: str) -> None:
    """One experiment's claims (rule ``report_scorecard_<experiment>``) as CSV with :data:`COLUMNS`.

    Args:
        table: output CSV (``results/<profile>/report/generated/scorecard_e1.csv``, ...).
        rows: the experiment's rows, each a :func:`claim_row` dict.
        profile: the config's profile name, written in every row.
    Raises:
        ValueError: no rows (an experiment without a claim registers no scorecard part).
    """
    write_rows(table, [{k: {**r, "profile": profile}[k] for k in COLUMNS} for r in rows])


def read_parts(parts: Sequence[str]) -> list[dict]:
    """The rows of the experiments' scorecard parts (:func:`write_part`), in the order given;
    ``n`` as an int, every other column as the text written."""
    rows: list[dict] = []
    for part in parts:
        with open(part, newline="") as fh:
            got = list(csv.DictReader(fh))
        if not got or list(got[0]) != list(COLUMNS):
            raise ValueError(f"{part}: not a scorecard part (columns {', '.join(COLUMNS)} and one row per claim)")
        rows += [{**r, "n": int(r["n"])} for r in got]
    return rows


def write_scorecard(table: str, md: str, variables: str, parts: Sequence[str], profile: str,
                    titles: Mapping[str, str] | None = None) -> None:
    """Rule ``report_scorecard``: the experiments' scorecard parts joined, as CSV, markdown
    fragment and YAML variables. It judges nothing itself: each experiment's report rule wrote
    its claims and verdicts (``report_scorecard_e1``, ...; :func:`write_part`).

    Args:
        table: output CSV, one row per claim, :data:`COLUMNS`: ``id``, ``experiment``
            (E1/E2/E3), ``claim`` (short text naming the post), ``compared`` (split, epoch,
            strategy of ours), ``post_value`` and ``ours`` (as printed, in ``unit``; ours is the
            mean over ``n`` runs), ``sd`` (sample sd over the runs, empty for one), ``n``,
            ``interval`` (the prediction interval, or the band the tolerance allows around the
            post's value), ``basis`` (``prediction interval, n = 3`` or
            ``tolerance ±2 %, single run``), ``verdict`` (one of :data:`VERDICTS`), ``profile``,
            ``note`` (why; settings that differ from the post's).
        md: output markdown fragment (summary line and ``{#tbl-scorecard-e1}``, ``-e2``, ...).
        variables: output YAML: ``scorecard.n_claims``, ``n_reproduced``, ``n_differs``,
            ``n_inconclusive``, ``n_not_comparable``, ``n_paper_only``, ``n_judged`` (reproduced +
            differs), and ``by_experiment`` (the same counts per experiment).
        parts: the experiments' scorecard CSVs, in the report's order (the experiment registry).
        profile: the config's profile name.
        titles: experiment (``E1``) -> the title of its scorecard table (the registry's titles).
    """
    rows = read_parts(parts)
    write_rows(table, rows)
    write_text(md, scorecard_markdown(rows, profile, titles))
    counts = verdict_counts(rows)

    def keyed(c: dict[str, int]) -> dict[str, int]:
        return {"n_claims": sum(c.values()), "n_reproduced": c["reproduced"], "n_differs": c["differs"],
                "n_inconclusive": c["inconclusive"], "n_not_comparable": c["not comparable"],
                "n_paper_only": c["paper profile only"],
                "n_judged": c["reproduced"] + c["differs"]}

    values = {**keyed(counts["all"]), "by_experiment": {e: keyed(c) for e, c in counts.items() if e != "all"}}
    write_variables(variables, {"scorecard": values})
