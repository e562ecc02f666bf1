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
* ``inconclusive`` -- the post's number lies inside an interval or tolerance band that is wider
  than the quantity itself: half-width above :data:`klvae.stats.MAX_REL_HALF_WIDTH` (50 %) of the
  value (ours for an interval from runs, the post's for a tolerance; column ``rel_width``), fixed
  in advance. The note says why: "does not reproduce run to run" with the spread (sd, n) where the
  interval comes from runs, "the tolerance is wider than the value" where it is a fixed tolerance.
  Also a ratio whose prediction interval meets the range the post claims but is wider than it
  (post VII's 1.3-1.5x slowdown against an interval of 0.06 to 2.09). Either way the claim is
  neither confirmed nor refuted; a post's number outside even such an interval still ``differs``;
* ``not comparable`` -- an absolute time or rate the post measured on its own hardware (a GTX
  960, the post's CPU): ours is shown, the note says whether ours is faster or slower and by
  what factor;
* ``paper profile only`` -- the post's number needs settings this run did not use (fewer
  epochs, a subset of the data); ours is still shown, the note says which setting differs.

Whether settings match is read from the outputs (epochs, image counts, batch size, KL weight
recorded by the training and preprocessing jobs), not from the profile's name.

Quantities that cannot be negative (losses, KL, times, rates, memory, ratios, shares; decided by
the claim's unit, :func:`is_nonnegative`, column ``nonnegative``) get their prediction intervals
on the log scale (:func:`klvae.stats.lognormal_prediction_interval`,
:func:`klvae.stats.log_prediction_interval`), and a tolerance band around such a value is cut at
zero: no interval of theirs extends below zero. Each row's ``basis_kind`` says what the verdict
rests on (:data:`BASIS_KINDS`): our runs of the setting, the backend study's spread, a fixed
tolerance, or nothing comparable: other hardware (an absolute time) or other data (a claim about
CelebA's faces, measured on the synthetic stand-in).

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

from klvae import registry
from klvae.io import write_rows, write_text
from klvae.report.escape import Markdown, md_text, write_variables
from klvae.report.tables import MISSING, markdown_table
from klvae.stats import (
    LEVEL,
    MAX_REL_HALF_WIDTH,
    log_prediction_interval,
    lognormal_moments,
    lognormal_prediction_interval,
    prediction_interval,
    relative_half_width,
)

VERDICTS = ("reproduced", "differs", "inconclusive", "not comparable", "paper profile only")
COLUMNS = ("id", "experiment", "claim", "compared", "post_value", "ours", "sd", "n", "interval", "rel_width", "basis",
           "basis_kind", "verdict", "unit", "nonnegative", "profile", "note")
#: The scorecard CSV's columns for the shipped run, after :data:`COLUMNS`:
#: its verdict, its number (mean over ``shipped_n`` runs, sample sd), its interval (as the
#: shipped run's own row writes it: a prediction interval or a tolerance band), its basis, and a
#: note where there is no verdict (the experiment is not in the shipped bundle).
SHIPPED_COLUMNS = ("shipped_verdict", "shipped_ours", "shipped_sd", "shipped_n", "shipped_interval", "shipped_basis",
                   "shipped_note")
#: Columns added to the scorecard after bundles were first shipped: derived where an older CSV lacks
#: them (:func:`complete_row`).
ADDED_COLUMNS = ("rel_width", "basis_kind", "nonnegative")
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000

#: What a verdict rests on (column ``basis_kind``): our n >= 2 runs of the setting (or timing
#: windows), a spread of the setting from the backend study, a tolerance fixed in the config, or
#: nothing (an absolute time or rate measured on the post's own hardware).
BASIS_RUNS, BASIS_STUDY, BASIS_TOLERANCE, BASIS_OTHER_HARDWARE, BASIS_OTHER_DATA = (
    "runs of the setting", "the backend study", "fixed tolerance", "other hardware", "other data")
BASIS_KINDS = (BASIS_RUNS, BASIS_STUDY, BASIS_TOLERANCE, BASIS_OTHER_HARDWARE, BASIS_OTHER_DATA)
#: The claims' units, by whether the quantity can be negative (:func:`is_nonnegative`): losses and
#: KL divergences, times, rates, memory, ratios of times and shares cannot; latent coordinates can.
NONNEGATIVE_UNITS = frozenset({"nats/image", "nats/pixel", "KL_mean", "ms/step", "s/epoch", "images/s per core", "GB",
                               "ratio", "× median of the others", "share of values"})
SIGNED_UNITS = frozenset({"latent units"})


def is_nonnegative(unit: str) -> bool:
    """Whether a claim's quantity cannot be negative, decided by its unit (:data:`NONNEGATIVE_UNITS`,
    :data:`SIGNED_UNITS`).

    Raises:
        ValueError: a unit in neither set (a new claim's unit must be classified there).
    """
    if unit in NONNEGATIVE_UNITS:
        return True
    if unit in SIGNED_UNITS:
        return False
    own = registry.units()
    if unit in own:
        return own[unit]
    raise ValueError(f"unit {unit!r}: add it to NONNEGATIVE_UNITS or SIGNED_UNITS in klvae.report.scorecard, or "
                     "to its experiment's `units` in the registry (src/klvae/registry/<id>.py)")


def basis_kind_of(basis: str) -> str:
    """The basis kind (:data:`BASIS_KINDS`) of a ``basis`` text, for rows written before the
    ``basis_kind`` column existed (:func:`complete_row`); ``""`` where the text names none."""
    b = str(basis)
    if b.startswith("prediction interval"):
        return BASIS_STUDY if "spread of" in b and "backend study" in b else BASIS_RUNS
    if b.startswith(("tolerance", '"most"')):
        return BASIS_TOLERANCE
    if b.startswith("other hardware"):
        return BASIS_OTHER_HARDWARE
    if b.startswith("other data"):
        return BASIS_OTHER_DATA
    return ""


def _sig(x: float) -> str:
    """A spread for a note: thousands separators from 100 on, else 3 significant digits."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _percent(rel: float) -> str:
    """A relative half-width (fraction) as the ``rel_width`` column writes it: percent, 2 decimals."""
    return "" if math.isnan(rel) else "inf" if math.isinf(rel) else f"{100 * rel:.2f}"


def too_wide(rel: float) -> bool:
    """Whether a relative half-width is above :data:`klvae.stats.MAX_REL_HALF_WIDTH` (exactly at it is not)."""
    return not math.isnan(rel) and rel > MAX_REL_HALF_WIDTH


def run_to_run_reason(sd: float, n: int, what: str = "") -> str:
    """The note of a claim made inconclusive by an interval from runs: ``does not reproduce run to
    run (sd 375, n = 3)``; ``what`` follows n (``windows``, ``runs of ... from the backend study``)."""
    return f"does not reproduce run to run (sd {_sig(sd)}, n = {n}{' ' + what if what else ''})"


def tolerance_reason(tolerance_text: str, value: float) -> str:
    """The note of a claim made inconclusive by a tolerance: ``the tolerance is wider than the value
    (±1 nats against 0.68)``."""
    return f"the tolerance is wider than the value ({tolerance_text} against {value:g})"


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

    def log_interval(self, value: float, level: float = LEVEL) -> tuple[float, float]:
        """:meth:`interval` on the log scale, for a quantity that cannot be negative:
        ``exp(log(value) ± t(n - 1, (1 + level) / 2) · sd_log · sqrt(1 + 1/1))`` with the spread's
        ``sd_log = sqrt(log(1 + sd² / mean²))`` (:func:`klvae.stats.lognormal_moments`); in the
        claim's unit, both ends > 0.

        Raises:
            ValueError: ``value <= 0`` or a spread mean ``<= 0``.
        """
        if not value > 0:
            raise ValueError(f"a log-scale interval needs a value > 0, got {value}")
        _, sd_log = lognormal_moments(self.mean, self.sd)
        half = float(student_t.ppf((1 + level) / 2, self.n - 1)) * sd_log * math.sqrt(2.0)
        return math.exp(math.log(value) - half), math.exp(math.log(value) + half)

    @property
    def basis_kind(self) -> str:
        """:data:`BASIS_STUDY` where the spread comes from the backend study (its ``source`` says
        so, as rule ``report_study`` writes it), else :data:`BASIS_RUNS` (another run's replicates
        of the setting)."""
        return BASIS_STUDY if "backend study" in self.source.lower() else BASIS_RUNS


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
    ``basis_kind``: one of :data:`BASIS_KINDS` (``""``: derived from ``basis``, :func:`basis_kind_of`).
    ``rel_width``: the interval's or tolerance's half-width as a fraction of the value it is
    about (NaN where there is none). ``reason``: why the verdict is ``inconclusive`` (the row's
    note starts with it), else ``""``.
    """

    verdict: str
    basis: str
    lo: float = math.nan
    hi: float = math.nan
    basis_kind: str = ""
    rel_width: float = math.nan
    reason: str = ""


def judge_value(post: float, mean: float, sd: float, n: int, tolerance: Tolerance,
                unmet: Sequence[str] = (), comparable: bool = True, what: str = "runs",
                spread: Spread | None = None, *, nonnegative: bool = False) -> Judgement:
    """The verdict rule for one numeric claim.

    * ``n >= 2`` runs with ``sd > 0``: ``reproduced`` when the post's value lies inside our
      :func:`prediction_interval`, else ``differs``; basis ``prediction interval, n = 3``,
      kind :data:`BASIS_RUNS`.
    * one run, or ``n >= 2`` identical runs (``sd == 0`` gives a zero-width interval that
      says nothing about run-to-run noise), with a ``spread`` of the same setting measured on
      the same backend: ``reproduced`` when the post's value lies inside
      :meth:`Spread.interval` around ours; basis ``prediction interval, single run ± spread of
      n = 3 runs of the same setting on tensorflow from <source>``, kind :attr:`Spread.basis_kind`.
    * the same without a ``spread``: ``reproduced`` when ours is within ``tolerance`` of the
      post's; basis ``tolerance ±2 %, single run`` (or ``..., 3 identical runs``), kind
      :data:`BASIS_TOLERANCE`.
    * ``nonnegative`` (the quantity cannot be negative, :func:`is_nonnegative`): the intervals
      are on the log scale (:func:`klvae.stats.lognormal_prediction_interval`,
      :meth:`Spread.log_interval`; linear, cut at zero, where ours is not > 0) and the
      tolerance band is cut at zero.
    * ``inconclusive`` instead of ``reproduced`` where the interval's half-width is above
      :data:`klvae.stats.MAX_REL_HALF_WIDTH` of ours, or the tolerance's above that of the
      post's value (``rel_width``; the ``reason`` says which). A post's value outside such an
      interval still ``differs``.
    * ``not comparable`` (``comparable`` false) and ``paper profile only`` (``unmet``
      settings) take precedence; the basis and interval are still computed and shown.

    Args:
        post: the post's value. mean: ours (mean over runs). sd: sample sd (NaN for one run).
        n: runs behind ``mean``. tolerance: used where no spread is known.
        unmet: our settings that differ from the post's (text). what: what ``n`` counts.
        spread: the same setting's spread on this run's backend (:func:`same_backend`), or None.
        nonnegative: the quantity cannot be negative.
    """
    runs = "single run" if n < 2 else f"{n} identical {what}"
    log = nonnegative and mean > 0
    if n >= 2 and sd > 0:
        lo, hi = lognormal_prediction_interval(mean, sd, n) if log else prediction_interval(mean, sd, n)
        ok, basis = lo <= post <= hi, f"prediction interval, n = {n}" + ("" if what == "runs" else f" {what}")
        kind, rel = BASIS_RUNS, relative_half_width(lo, hi, mean)
        reason = run_to_run_reason(sd, n, "" if what == "runs" else what)
    elif spread is not None and spread.sd > 0:
        lo, hi = spread.log_interval(mean) if log and spread.mean > 0 else spread.interval(mean)
        ok = lo <= post <= hi
        basis = (f"prediction interval, {runs} ± spread of n = {spread.n} runs of the same setting on "
                 f"{md_text(spread.backend)} from {md_text(spread.source)}")
        kind, rel = spread.basis_kind, relative_half_width(lo, hi, mean)
        reason = run_to_run_reason(spread.sd, spread.n, f"runs from {spread.source}")
    else:
        band = tolerance.amount * abs(post) if tolerance.kind == "rel" else tolerance.amount
        lo, hi = post - band, post + band
        ok = tolerance.within(mean, post)
        basis = f"tolerance {tolerance.text}, {runs}"
        kind, rel = BASIS_TOLERANCE, relative_half_width(lo, hi, post)
        reason = tolerance_reason(tolerance.text, post)
    if nonnegative:
        lo = max(lo, 0.0)
    verdict = judge(ok, list(unmet), comparable, inconclusive=ok and too_wide(rel))
    return Judgement(verdict, basis, lo, hi, kind, rel, reason if verdict == "inconclusive" else "")


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

    * ``n >= 2`` windows with a spread: the 95 % prediction interval of the per-window ratios
      on the log scale (a ratio of times cannot be negative: :func:`klvae.stats.log_prediction_interval`
      of their logarithms; linear where a ratio is not > 0), judged by :func:`ratio_verdict`
      against the post's range ``post_lo..post_hi`` (``inconclusive``: the basis gives the
      interval). A point claim (``post_lo == post_hi``) is ``reproduced`` when the interval
      contains it. Kind :data:`BASIS_RUNS`.
    * no windows, or identical ones: ``single`` (the ratio of the medians) must lie within
      ``tolerance`` (absolute) of the post's range; the band is cut at zero. Kind
      :data:`BASIS_TOLERANCE`.
    * either way ``inconclusive`` instead of ``reproduced`` where the half-width is above
      :data:`klvae.stats.MAX_REL_HALF_WIDTH` of ours (of the range's middle for a tolerance).

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
        if bool(np.all(np.asarray(per_window) > 0)):
            logs = np.log(np.asarray(per_window, dtype=float))
            lo, hi = log_prediction_interval(float(np.mean(logs)), float(np.std(logs, ddof=1)), n)
        else:
            lo, hi = prediction_interval(mean, sd, n)
            lo = max(lo, 0.0)
        verdict = ratio_verdict(lo, hi, post_lo, post_hi)
        basis = f"prediction interval, n = {n} windows"
        if verdict == "inconclusive":
            basis += f": {lo:.2f} to {hi:.2f}, wider than the post's range {post_lo:g}–{post_hi:g}"
        rel = relative_half_width(lo, hi, mean)
        wide = verdict != "differs" and too_wide(rel)
        return (Judgement("inconclusive" if wide else verdict, basis, lo, hi, BASIS_RUNS, rel,
                          run_to_run_reason(sd, n, "windows") if wide else ""), mean, sd, n)
    ok = post_lo - tolerance.amount <= single <= post_hi + tolerance.amount
    what = f"{n} identical windows" if n >= 2 else "one benchmark run"
    lo, hi = max(post_lo - tolerance.amount, 0.0), post_hi + tolerance.amount
    rel = relative_half_width(post_lo - tolerance.amount, hi, (post_lo + post_hi) / 2)
    wide = ok and too_wide(rel)
    return (Judgement(judge(ok, inconclusive=wide), f"tolerance {tolerance.text}, {what}", lo, hi, BASIS_TOLERANCE,
                      rel, tolerance_reason(tolerance.text, (post_lo + post_hi) / 2) if wide else ""), single, sd, n)


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
    """One scorecard row (:data:`COLUMNS` less ``profile``); ``ours`` a number or text.

    ``rel_width`` is the judgement's relative half-width in percent (2 decimals; empty without an
    interval or tolerance), ``basis_kind`` its kind, ``nonnegative`` (``yes``/``no``) whether the
    quantity can be negative by its ``unit`` (:func:`is_nonnegative`); the note starts with the
    judgement's ``reason`` where it has one.
    """
    interval = "" if math.isnan(judgement.lo) else f"{judgement.lo:.{digits}f} to {judgement.hi:.{digits}f}"
    return {"id": id_, "experiment": experiment, "claim": claim, "compared": compared, "post_value": post_value,
            "ours": ours if isinstance(ours, str) else f"{ours:.{digits}f}", "sd": _fmt(sd, digits) if n > 1 else "",
            "n": int(n), "interval": interval, "rel_width": _percent(judgement.rel_width), "basis": judgement.basis,
            "basis_kind": judgement.basis_kind or basis_kind_of(judgement.basis), "verdict": judgement.verdict,
            "unit": unit, "nonnegative": "yes" if is_nonnegative(unit) else "no",
            "note": "; ".join(p for p in (judgement.reason, note) if p)}


def complete_row(row: Mapping) -> dict:
    """A scorecard row with the :data:`ADDED_COLUMNS` an older CSV (an old bundle's) lacks, derived
    from its other columns: ``basis_kind`` from ``basis`` (:func:`basis_kind_of`), ``nonnegative``
    from ``unit`` (empty for a unit not classified), ``rel_width`` from ``interval`` (its
    half-width ÷ |ours| for a prediction interval, ÷ |post's value| for a tolerance band; empty
    where either is not a number). Present columns are kept as they are."""
    out = dict(row)
    if not out.get("basis_kind"):
        out["basis_kind"] = basis_kind_of(out.get("basis", ""))
    if "nonnegative" not in out:
        unit = str(out.get("unit", ""))
        known = {**registry.units(), **{u: True for u in NONNEGATIVE_UNITS}, **{u: False for u in SIGNED_UNITS}}
        out["nonnegative"] = {True: "yes", False: "no"}.get(known.get(unit), "")
    if "rel_width" not in out:
        rel = math.nan
        ends = str(out.get("interval", "")).split(" to ")
        value = out.get("ours") if out["basis_kind"] in (BASIS_RUNS, BASIS_STUDY) else out.get("post_value")
        try:
            rel = relative_half_width(float(ends[0]), float(ends[1]), float(str(value).replace(",", "")))
        except (ValueError, IndexError):
            pass
        out["rel_width"] = _percent(rel)
    return out


def config_tolerance(tol: dict, key: str, kind: str = "rel", unit: str = "") -> Tolerance:
    return Tolerance(kind, float(tol[key]), unit)


def run_backend(table: str) -> str | None:
    """This run's Keras backend, as a table recorded it (column ``backend``: rule ``e2_timing``'s), or None."""
    t = pd.read_csv(table, keep_default_na=False)
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


def _width_cell(rel_width: str) -> str:
    """The ``rel_width`` column (percent) as the table shows it: ``0.2 %``, ``50.2 %``, ``147 %``,
    ``1,045 %`` (one decimal below 100 %, so that a width just above the threshold does not read as it)."""
    try:
        x = float(rel_width)
    except ValueError:
        return ""
    return "∞" if math.isinf(x) else f"{x:.1f} %" if x < 100 else f"{x:,.0f} %"


def _table(rows: list[dict], experiment: str, profile: str, title: str, shipped: str | None = None) -> str:
    """One experiment's claims: a pipe table (one row per claim) with caption and
    ``{#tbl-scorecard-e1}``-style id; notes shared by rows are numbered under the table.

    Unlike the other tables of the report, this one's caption is written here: there is one
    table per registered experiment (an experiment added to the registry gets its table without
    an edit of ``report/_scorecard.qmd``), so the tables and their captions are data -- the
    experiment's title, the profile, the units, the count of its claims per verdict and the rule
    that made it. What the columns mean, the same for every table, is said in
    ``report/_scorecard.qmd``, right above the tables.

    ``shipped``: the title of a column for a shipped run's verdict (``paper run``), whose cells are
    :func:`shipped_cell` of each row (rows with :data:`SHIPPED_COLUMNS`);
    None: no such column."""
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
                     Markdown(f"{basis}: {md_text(interval)}" if interval else basis),
                     _unbroken(_width_cell(r.get("rel_width", ""))), verdict,
                     *([shipped_cell(r)] if shipped else []), mark])
    units = sorted({r["unit"] for r in rows})
    caption = (f"Scorecard, {md_text(title)} ({md_text(profile)} profile; unit: {md_text(', '.join(units))}). "
               f"{_summary_text({v: sum(r['verdict'] == v for r in rows) for v in VERDICTS})}. "
               "{{< var made_by.report_scorecard >}}")
    header = ["claim", "compared", "post", "ours", "sd", "n", "basis", "rel. width", "verdict",
              *([shipped] if shipped else []), "note"]
    table = markdown_table(header, body, align="llrrrrlrl" + ("l" if shipped else "") + "l") + \
        f"\n: {caption} {{#tbl-scorecard-{experiment.lower()}}}\n"
    listed = "".join(f"{i}. {n}\n" for i, n in enumerate(notes, 1))
    return table + (f"\nNotes to @tbl-scorecard-{experiment.lower()}:\n\n{listed}" if notes else "")


def scorecard_markdown(rows: list[dict], profile: str, titles: Mapping[str, str] | None = None,
                       shipped: str | None = None) -> str:
    """The scorecard fragment: a summary line counting verdicts per experiment, then one table
    per experiment (``{#tbl-scorecard-e1}``, ``-e2``, ``-e3``), one row per claim; ``titles``:
    experiment -> its table's title (default: the experiment's name); ``shipped``: the title of
    the shipped run's column (:func:`_table`), None for none."""
    titles = titles or {}
    counts = verdict_counts(rows)
    experiments = [e for e in counts if e != "all"]
    summary = "**Summary.** " + "; ".join(f"{md_text(e)}: {_summary_text(counts[e])}" for e in experiments) + \
        f". All: {_summary_text(counts['all'])}.\n\n"
    return summary + "\n".join(_table([r for r in rows if r["experiment"] == e], e, profile, titles.get(e, e), shipped)
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
    ``n`` as an int, every other column as the text written. A part written before the
    :data:`ADDED_COLUMNS` existed gets them derived (:func:`complete_row`)."""
    rows: list[dict] = []
    old = [c for c in COLUMNS if c not in ADDED_COLUMNS]
    for part in parts:
        with open(part, newline="") as fh:
            got = list(csv.DictReader(fh))
        if not got or list(got[0]) not in (list(COLUMNS), old):
            raise ValueError(f"{part}: not a scorecard part (columns {', '.join(COLUMNS)} and one row per claim)")
        for r in map(complete_row, got):
            rows.append({**{k: r[k] for k in COLUMNS}, "n": int(r["n"])})
    return rows


# The shipped run's column (klvae.report.shipped judges it; these put it beside ours)


def _number(text) -> str | None:
    """A number written by the scorecard (``"104.21"``, ``"1,162"``), re-formatted from the parsed
    number with the decimals it was written with; None where it is not a finite number."""
    s = str(text).strip().replace(",", "")
    try:
        x = float(s)
    except ValueError:
        return None
    if not math.isfinite(x):
        return None
    decimals = len(s.split(".")[1]) if "." in s and "e" not in s.lower() else 0
    return f"{x:,.{decimals}f}" if abs(x) >= 1000 else f"{x:.{decimals}f}"


def not_held_note(reference_profile: str) -> str:
    """The cell of a claim whose experiment the shipped bundle does not hold (yet)."""
    return "not in the paper bundle yet" if reference_profile == "paper" else "not in the shipped bundle"


def shipped_columns(rows: Sequence[Mapping], shipped_rows: Sequence[Mapping], held: Sequence[str],
                    reference_profile: str) -> list[dict]:
    """This run's scorecard rows with :data:`SHIPPED_COLUMNS` added, matched by claim ``id``.

    Args:
        rows: this run's rows (:func:`read_parts`).
        shipped_rows: the shipped run's rows, judged by today's code on its data.
        held: the experiments (labels, ``E1``) the shipped bundle's manifest lists.
        reference_profile: the shipped run's profile (``paper``), for the note.

    Returns:
        One dict per row: the row's columns, then ``shipped_verdict`` (a verdict of
        :data:`VERDICTS`, or empty), ``shipped_ours``, ``shipped_sd``,
        ``shipped_n`` (empty without a verdict), ``shipped_interval``, ``shipped_basis`` and
        ``shipped_note`` (``not in the paper bundle yet`` where the experiment is not held;
        ``no such claim in the shipped run`` where it is held but judged no such claim; or why
        it could not be judged from the bundle).
    """
    by_id = {str(r["id"]): r for r in shipped_rows}
    judged = {str(r["experiment"]) for r in shipped_rows}
    out = []
    for r in rows:
        s = by_id.get(str(r["id"]))
        if s is not None:
            extra = {"shipped_verdict": s["verdict"], "shipped_ours": s["ours"], "shipped_sd": s["sd"],
                     "shipped_n": int(s["n"]), "shipped_interval": s["interval"], "shipped_basis": s["basis"],
                     "shipped_note": ""}
        else:
            if r["experiment"] not in held:
                note = not_held_note(reference_profile)
            elif r["experiment"] in judged:
                note = "no such claim in the shipped run"
            else:
                note = "the shipped bundle lacks files this claim is judged from"
            extra = {**{k: "" for k in SHIPPED_COLUMNS}, "shipped_note": note}
        out.append({**r, **extra})
    return out


def shipped_cell(row: Mapping) -> str:
    """The table's cell for the shipped run (plain text; the table escapes it): the verdict, the
    number as mean ± sd (n), and the 95 % prediction interval where the shipped verdict rests on
    one -- ``reproduced: 104.21 ± 0.31 (n = 3), PI 103.0–105.4`` -- or the note without a verdict.
    Numbers are re-formatted from the parsed numbers; anything else is shown as text."""
    verdict = str(row.get("shipped_verdict", ""))
    if not verdict:
        return str(row.get("shipped_note", ""))
    if verdict not in VERDICTS:
        verdict = f"verdict {verdict}"
    ours = _number(row.get("shipped_ours", ""))
    number = ours if ours is not None else str(row.get("shipped_ours", ""))
    sd = _number(row.get("shipped_sd", ""))
    n = str(row.get("shipped_n", ""))
    text = f"{verdict}: {number}" + (f" ± {sd}" if sd is not None else "")
    text += f" (n = {n})" if n not in ("", "0") else ""
    if basis_kind_of(str(row.get("shipped_basis", ""))) in (BASIS_RUNS, BASIS_STUDY):
        ends = [_number(x) for x in str(row.get("shipped_interval", "")).split(" to ")]
        if len(ends) == 2 and None not in ends:
            text += f", PI {ends[0]}–{ends[1]}"
    return text


def _fraction(rel_width: str) -> float:
    """The ``rel_width`` column (percent) as a fraction; NaN where empty."""
    try:
        return float(rel_width) / 100
    except ValueError:
        return math.nan


def write_scorecard(table: str, md: str, variables: str, parts: Sequence[str], profile: str,
                    titles: Mapping[str, str] | None = None, shipped_md: str | None = None,
                    shipped_parts: Sequence[str] = (), shipped: Mapping | None = None) -> None:
    """Rule ``report_scorecard``: the experiments' scorecard parts joined, as CSV, markdown
    fragment and YAML variables. It judges nothing itself: each experiment's report rule wrote
    its claims and verdicts (``report_scorecard_e1``, ...; :func:`write_part`).

    Args:
        table: output CSV, one row per claim, :data:`COLUMNS`: ``id``, ``experiment``
            (E1/E2/E3), ``claim`` (short text naming the post), ``compared`` (split, epoch,
            strategy of ours), ``post_value`` and ``ours`` (as printed, in ``unit``; ours is the
            mean over ``n`` runs), ``sd`` (sample sd over the runs, empty for one), ``n``,
            ``interval`` (the prediction interval, or the band the tolerance allows around the
            post's value), ``rel_width`` (its half-width ÷ |value|, percent), ``basis``
            (``prediction interval, n = 3`` or ``tolerance ±2 %, single run``), ``basis_kind``
            (:data:`BASIS_KINDS`), ``verdict`` (one of :data:`VERDICTS`), ``unit``,
            ``nonnegative`` (``yes``: the quantity cannot be negative), ``profile``,
            ``note`` (why; settings that differ from the post's).
        md: output markdown fragment (summary line and ``{#tbl-scorecard-e1}``, ``-e2``, ...).
        variables: output YAML: ``scorecard.n_claims``, ``n_reproduced``, ``n_differs``,
            ``n_inconclusive``, ``n_not_comparable``, ``n_paper_only``, ``n_judged`` (reproduced +
            differs), ``by_experiment`` (the same counts per experiment), ``max_rel_width`` (the
            threshold :data:`klvae.stats.MAX_REL_HALF_WIDTH` in percent, ``50 %``) and
            ``n_too_wide`` (claims inconclusive whose interval or tolerance is above that width).
        parts: the experiments' scorecard CSVs, in the report's order (the experiment registry).
        profile: the config's profile name.
        titles: experiment (``E1``) -> the title of its scorecard table (the registry's titles).
        shipped_md: output, generated include ``scorecard_shipped.md`` (:mod:`klvae.report.includes`):
            the prose on the shipped run's column where there is one (and the sentence on the claims of
            experiments its bundle does not hold, where there are any), else empty.
        shipped_parts: the shipped run's scorecard parts, judged by today's code from the shipped
            bundle's data (rules ``report_shipped_scorecard_<experiment>``, :mod:`klvae.report.shipped`).
        shipped: the shipped bundle (:func:`klvae.report.shipped.reference_facts`: ``name``,
            ``profile``, ``backend``, ``experiments``), None where no bundle is set beside this run:
            then the tables have no shipped column and the CSV's :data:`SHIPPED_COLUMNS`
            are empty. With one, the tables get a column ``paper run`` (``shipped run`` for a bundle of
            another profile), the CSV those columns, and the variables ``scorecard.shipped``: ``available``,
            ``reference`` (the bundle's file name), ``profile``, ``backend``, ``column``, the verdict counts
            of the shipped run (as above, over the claims it has a verdict for), ``n_not_held`` (claims of
            experiments the bundle does not hold), ``n_same`` and ``n_changed`` (claims whose shipped
            verdict is, or is not, ours).
    """
    from klvae.report import includes

    rows = read_parts(parts)
    column = None
    if shipped is not None:
        held = [registry.get(e).label for e in shipped.get("experiments", ())]
        column = "paper run" if shipped.get("profile") == "paper" else "shipped run"
        rows = shipped_columns(rows, read_parts(shipped_parts), held, str(shipped.get("profile", "")))
    else:
        rows = [{**r, **dict.fromkeys(SHIPPED_COLUMNS, "")} for r in rows]
    write_rows(table, rows)
    write_text(md, scorecard_markdown(rows, profile, titles, column))
    if shipped_md is not None:
        write_text(shipped_md, includes.fragment(
            "scorecard_shipped.md", reference=shipped is not None,
            not_held=shipped is not None and any(not r["shipped_verdict"] for r in rows)))
    counts = verdict_counts(rows)

    def keyed(c: dict[str, int]) -> dict[str, int]:
        return {"n_claims": sum(c.values()), "n_reproduced": c["reproduced"], "n_differs": c["differs"],
                "n_inconclusive": c["inconclusive"], "n_not_comparable": c["not comparable"],
                "n_paper_only": c["paper profile only"],
                "n_judged": c["reproduced"] + c["differs"]}

    values = {**keyed(counts["all"]), "by_experiment": {e: keyed(c) for e, c in counts.items() if e != "all"},
              "max_rel_width": f"{100 * MAX_REL_HALF_WIDTH:g} %",
              "n_too_wide": sum(r["verdict"] == "inconclusive" and too_wide(_fraction(r["rel_width"])) for r in rows)}
    values["shipped"] = {"available": "no"}
    if shipped is not None:
        judged = [r for r in rows if r["shipped_verdict"]]
        values["shipped"] = {
            "available": "yes", "reference": str(shipped.get("name", "")), "profile": str(shipped.get("profile", "")),
            "backend": str(shipped.get("backend", "")), "column": column,
            **keyed({v: sum(r["shipped_verdict"] == v for r in judged) for v in VERDICTS}),
            "n_not_held": sum(not r["shipped_verdict"] for r in rows),
            "n_same": sum(r["shipped_verdict"] == r["verdict"] for r in judged),
            "n_changed": sum(r["shipped_verdict"] != r["verdict"] for r in judged)}
    write_variables(variables, {"scorecard": values})
