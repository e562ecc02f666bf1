"""The reproduction scorecard: every numeric claim of the seeds beside this run's number, with a verdict.

The seeds' numbers come from :mod:`klvae.reference` only, ours from the pipeline's output files
(CSV, JSON, the E2 latent ``.npz``), the tolerances from the config's ``scorecard`` section.
Each claim gets one of five verdicts (:data:`VERDICTS`; :func:`judge_value`, :func:`judge_ratio`):

* ``reproduced`` -- the seed's number lies inside our prediction interval for one new run
  (where we have n >= 2 runs of the setting; for a single run, where a spread of the same
  setting measured on the same Keras backend is supplied, :class:`Spread`), or, for a single
  run without one, ours lies within the config's tolerance of the seed's number (the ``basis``
  column says which);
* ``differs`` -- it does not;
* ``inconclusive`` -- a ratio whose prediction interval meets the range the seed claims but is
  wider than it (post VII's 1.3-1.5x slowdown against an interval of 0.06 to 2.09): it
  neither confirms nor refutes the claim;
* ``not comparable`` -- an absolute time or rate the seed measured on its own hardware (a GTX
  960, the seed's CPU): ours is shown, the note says whether ours is faster or slower and by
  what factor;
* ``paper profile only`` -- the seed's number needs settings this run did not use (fewer
  epochs, a subset of the data); ours is still shown, the note says which setting differs.

Whether settings match is read from the outputs (epochs, image counts, batch size, KL weight
recorded by the training and preprocessing jobs), not from the profile's name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from scipy.stats import t as student_t

from klvae import reference as ref
from klvae.io import write_rows, write_text
from klvae.report.tables import markdown_table

VERDICTS = ("reproduced", "differs", "inconclusive", "not comparable", "paper profile only")
COLUMNS = ("id", "experiment", "claim", "compared", "seed_value", "ours", "sd", "n", "interval", "basis", "verdict",
           "unit", "profile", "note")
MNIST_TRAIN, MNIST_TEST = 60_000, 10_000
#: Coverage of the prediction interval for one new run.
LEVEL = 0.95


@dataclass(frozen=True)
class Tolerance:
    """A fixed tolerance from the config's ``scorecard`` section, used where we have one run.

    Attributes:
        kind: ``"rel"`` (a fraction of the seed's value) or ``"abs"`` (in the claim's unit).
        amount: the fraction or the absolute amount (> 0).
        unit: printed after an absolute amount (e.g. ``"nats"``).
    """

    kind: str
    amount: float
    unit: str = ""

    def within(self, ours: float, seed: float) -> bool:
        """Whether ``|ours - seed|`` is at most the tolerance (relative to ``|seed|`` for ``rel``)."""
        return abs(ours - seed) <= (self.amount * abs(seed) if self.kind == "rel" else self.amount)

    @property
    def text(self) -> str:
        """``"±2 %"`` or ``"±1 nats"``."""
        return f"±{100 * self.amount:g} %" if self.kind == "rel" else f"±{self.amount:g}" + (
            f" {self.unit}" if self.unit else "")


def prediction_interval(mean: float, sd: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Student-t prediction interval for one new run, from ``n`` runs of the same setting.

    ``mean ± t(n - 1, (1 + level) / 2) · sd · sqrt(1 + 1/n)`` (e.g. Hahn & Meeker,
    *Statistical Intervals*, 1991, ch. 4): where the seed's single run should fall if it came
    from the same distribution as ours.

    Args:
        mean, sd: sample mean and sample standard deviation (``ddof=1``) of our runs.
        n: number of runs (>= 2).
        level: coverage (0.95 by default).

    Raises:
        ValueError: for ``n < 2`` (no spread to estimate) or a negative ``sd``.
    """
    if n < 2:
        raise ValueError(f"a prediction interval needs n >= 2 runs, got n = {n}")
    if not sd >= 0:
        raise ValueError(f"sd must be >= 0, got {sd}")
    half = float(student_t.ppf((1 + level) / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


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
    tolerance allows around the seed's value (basis ``tolerance``); NaN where neither applies.
    """

    verdict: str
    basis: str
    lo: float = math.nan
    hi: float = math.nan


def judge_value(seed: float, mean: float, sd: float, n: int, tolerance: Tolerance,
                unmet: Sequence[str] = (), comparable: bool = True, what: str = "runs",
                spread: Spread | None = None) -> Judgement:
    """The verdict rule for one numeric claim.

    * ``n >= 2`` runs with ``sd > 0``: ``reproduced`` when the seed's value lies inside our
      :func:`prediction_interval`, else ``differs``; basis ``prediction interval, n = 3``.
    * one run, or ``n >= 2`` identical runs (``sd == 0`` gives a zero-width interval that
      says nothing about run-to-run noise), with a ``spread`` of the same setting measured on
      the same backend: ``reproduced`` when the seed's value lies inside
      :meth:`Spread.interval` around ours; basis ``prediction interval, single run ± spread of
      n = 3 runs of the same setting on tensorflow from <source>``.
    * the same without a ``spread``: ``reproduced`` when ours is within ``tolerance`` of the
      seed's; basis ``tolerance ±2 %, single run`` (or ``..., 3 identical runs``).
    * ``not comparable`` (``comparable`` false) and ``paper profile only`` (``unmet``
      settings) take precedence; the basis and interval are still computed and shown.

    Args:
        seed: the seed's value. mean: ours (mean over runs). sd: sample sd (NaN for one run).
        n: runs behind ``mean``. tolerance: used where no spread is known.
        unmet: our settings that differ from the seed's (text). what: what ``n`` counts.
        spread: the same setting's spread on this run's backend (:func:`same_backend`), or None.
    """
    runs = "single run" if n < 2 else f"{n} identical {what}"
    if n >= 2 and sd > 0:
        lo, hi = prediction_interval(mean, sd, n)
        ok, basis = lo <= seed <= hi, f"prediction interval, n = {n}" + ("" if what == "runs" else f" {what}")
    elif spread is not None and spread.sd > 0:
        lo, hi = spread.interval(mean)
        ok = lo <= seed <= hi
        basis = (f"prediction interval, {runs} ± spread of n = {spread.n} runs of the same setting on "
                 f"{spread.backend} from {spread.source}")
    else:
        band = tolerance.amount * abs(seed) if tolerance.kind == "rel" else tolerance.amount
        lo, hi = seed - band, seed + band
        ok = tolerance.within(mean, seed)
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


def ratio_verdict(lo: float, hi: float, seed_lo: float, seed_hi: float) -> str:
    """The verdict of a ratio's interval ``lo..hi`` against the seed's range ``seed_lo..seed_hi``
    (equal ends for a point claim): ``differs`` when they do not meet; ``inconclusive`` when they
    meet but the interval is wider than a claimed range (``hi - lo > seed_hi - seed_lo > 0``: it
    would also hold values the claim excludes, e.g. 0.06 to 2.09 against 1.3 to 1.5); else
    ``reproduced``."""
    meets = lo <= seed_hi and seed_lo <= hi
    return judge(meets, inconclusive=meets and seed_hi > seed_lo and hi - lo > seed_hi - seed_lo)


def judge_ratio(per_window: np.ndarray, single: float, seed_lo: float, seed_hi: float,
                tolerance: Tolerance) -> tuple[Judgement, float, float, int]:
    """The verdict rule for a ratio of step times, judged on its spread over timing windows.

    * ``n >= 2`` windows with a spread: the 95 % :func:`prediction_interval` of the per-window
      ratios, judged by :func:`ratio_verdict` against the seed's range ``seed_lo..seed_hi``
      (``inconclusive``: the basis gives the interval). A point claim (``seed_lo == seed_hi``)
      is ``reproduced`` when the interval contains it.
    * no windows, or identical ones: ``single`` (the ratio of the medians) must lie within
      ``tolerance`` (absolute) of the seed's range.

    Args:
        per_window: the ratio in each window (dimensionless, any length).
        single: the ratio of the strategies' medians, used without a spread.
        seed_lo, seed_hi: the range the seed claims (equal for a point claim).
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
        verdict = ratio_verdict(lo, hi, seed_lo, seed_hi)
        basis = f"prediction interval, n = {n} windows"
        if verdict == "inconclusive":
            basis += f": {lo:.2f} to {hi:.2f}, wider than the seed's range {seed_lo:g}–{seed_hi:g}"
        return Judgement(verdict, basis, lo, hi), mean, sd, n
    ok = seed_lo - tolerance.amount <= single <= seed_hi + tolerance.amount
    what = f"{n} identical windows" if n >= 2 else "one benchmark run"
    return (Judgement(judge(ok), f"tolerance {tolerance.text}, {what}", seed_lo - tolerance.amount,
                      seed_hi + tolerance.amount), single, sd, n)


def speed_note(seed: float, ours: float, unit: str, higher_is_faster: bool) -> str:
    """Which run was faster, and by what factor: ``"ours 1.39× faster (1,162 vs 833 images/s)"``.

    Args:
        seed, ours: the seed's and our time or rate (> 0), in ``unit``.
        higher_is_faster: True for a rate (images/s), False for a time (ms/step, s/epoch).
    """
    factor = (ours / seed) if higher_is_faster else (seed / ours)
    digits = 0 if max(seed, ours) >= 100 else 1
    numbers = f"({ours:,.{digits}f} vs {seed:,.{digits}f} {unit})"
    if round(factor, 2) == 1:
        return f"ours as fast {numbers}"
    return (f"ours {factor:.2f}× faster " if factor > 1 else f"ours {1 / factor:.2f}× slower ") + numbers


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
            out.append(f"{name} {ours:,} (seed {seed:,})" if isinstance(seed, int)
                       else f"{name} {ours:g} (seed {seed:g})")
    return out


def _note(unmet: list[str], *more: str) -> str:
    parts = ([f"this run: {', '.join(unmet)}"] if unmet else []) + [m for m in more if m]
    return "; ".join(parts)


def _fmt(x: float, digits: int) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _row(id_, experiment, claim, compared, seed_value, ours, unit, judgement: Judgement, note="", *, sd=math.nan,
         n=1, digits=2) -> dict:
    """One scorecard row (:data:`COLUMNS` less ``profile``); ``ours`` a number or text."""
    interval = "" if math.isnan(judgement.lo) else f"{judgement.lo:.{digits}f} to {judgement.hi:.{digits}f}"
    return {"id": id_, "experiment": experiment, "claim": claim, "compared": compared, "seed_value": seed_value,
            "ours": ours if isinstance(ours, str) else f"{ours:.{digits}f}", "sd": _fmt(sd, digits) if n > 1 else "",
            "n": int(n), "interval": interval, "basis": judgement.basis, "verdict": judgement.verdict,
            "unit": unit, "note": note}


def _tol(tol: dict, key: str, kind: str = "rel", unit: str = "") -> Tolerance:
    return Tolerance(kind, float(tol[key]), unit)


#: E1's KL coefficients where single runs on TensorFlow and JAX disagreed beyond the others (the backend study).
BACKEND_SENSITIVE = (0.0, 0.02)


def e1_rows(e1_table: str, tol: dict, spreads: Mapping[tuple[str, str], Spread] | None = None,
            backend: str | None = None) -> list[dict]:
    """Seed 003's table: test loss, reconstruction loss and KL divergence (nats per image) per KL
    coefficient c, after 40 epochs on all of MNIST (:data:`klvae.reference.E1_SEED_TABLE`).

    Ours is the mean over the replicates of each c (rule ``e1_table``: mean, sample sd and
    count), judged by :func:`judge_value`; where a c has one run, with the same-backend spread
    of that claim from ``spreads`` (by ``("E1", id)``, :func:`same_backend`) when there is one.
    The rows of c = 0 and 0.02 (:data:`BACKEND_SENSITIVE`) carry a note naming this run's Keras
    ``backend`` and pointing to the backend study's section (``@sec-backend-study``).
    """
    spreads = spreads or {}
    t = pd.read_csv(e1_table).set_index("kl_weight")
    epochs, n_test = int(t["epochs"].min()), int(t["n_test"].min())
    unmet = unmet_settings([("epochs", epochs, ref.E1_SEED_EPOCHS, True),
                            ("training images", int(t["n_train"].min()), MNIST_TRAIN, True),
                            ("test images", n_test, MNIST_TEST, True)])
    quantities = (("loss", "test loss", "loss", _tol(tol, "loss_rel")),
                  ("reconstruction_loss", "reconstruction loss", "rec", _tol(tol, "loss_rel")),
                  # absolute: the KL divergence spans 0.68 to 507 nats
                  ("kl_loss", "KL divergence", "kl", _tol(tol, "kl_abs", "abs", "nats")))
    compared = f"test set ({n_test:,}), epoch {epochs}"
    rows = []
    for c, *seed in ref.E1_SEED_TABLE:
        for (col, name, short, tolerance), s in zip(quantities, seed, strict=True):
            id_, claim = f"e1-c{c:g}-{short}", f"c = {c:g}: {name}"
            if c not in t.index:
                rows.append(_row(id_, "E1", claim, "--", f"{s:.2f}", "--", "nats/image",
                                 Judgement("paper profile only", f"tolerance {tolerance.text}"),
                                 f"c = {c:g} not trained in this run", n=0))
                continue
            r = t.loc[c]
            n, sd = int(r.replicates), float(r[col + "_sd"])
            j = judge_value(s, float(r[col]), sd, n, tolerance, unmet, spread=spreads.get(("E1", id_)))
            study = (f"made on the {backend or 'recorded'} backend; whether the framework or chance explains a "
                     "difference at this KL weight: @sec-backend-study") if c in BACKEND_SENSITIVE else ""
            rows.append(_row(id_, "E1", claim, compared, f"{s:.2f}", float(r[col]), "nats/image", j,
                             _note(unmet, study), sd=sd, n=n))
    return rows


def _runs(e2_runs: list[str]) -> dict[tuple[str, int], dict]:
    """Training records by (strategy, z_dim); of two runs of one pair (rule ``e2_seed_log``'s
    longer run beside the main one) the one with more epochs."""
    runs: dict[tuple[str, int], dict] = {}
    for path in e2_runs:
        m = json.loads(Path(path).read_text())
        key = (m["strategy"], int(m["z_dim"]))
        if key not in runs or int(m["epochs"]) > int(runs[key]["epochs"]):
            runs[key] = m
    return runs


def _e2_unmet(run: dict, epochs: int) -> list[str]:
    return unmet_settings([("epochs", int(run["epochs"]), epochs, True),
                           ("training images", int(run["n_train"]), MNIST_TRAIN, True),
                           ("batch", int(run["batch_size"]), ref.E2_SEED_BATCH_SIZE, False),
                           ("KL weight fact", float(run["fact"]), ref.E2_SEED_FACT, False)])


def vii_rows(e2_runs: list[str], e2_histories: list[str], tol: dict,
             spreads: Mapping[tuple[str, str], Spread] | None = None) -> list[dict]:
    """Post VII's training log (z_dim 12, ``model_add_loss``, epochs 3-6: loss, BCE, KL_seed;
    :data:`klvae.reference.SEED_VII_LOG`) against our ``model_add_loss`` history at the same
    epoch, the last one both have (epoch 6 once we train 6 or more). Where several histories
    of that pair are given (rule ``e2_seed_log``), the longest is used. One run: the basis is
    the same-backend spread of the claim in ``spreads`` (by ``("E2", id)``) where there is one,
    else the tolerance."""
    spreads = spreads or {}
    log, z = ref.SEED_VII_LOG, ref.SEED_VII_LOG["z_dim"]
    run = _runs(e2_runs).get(("model_add_loss", z))
    candidates = [h for h in (pd.read_csv(p) for p in e2_histories)
                  if {"model_add_loss"} == set(h["strategy"]) and set(h["z_dim"]) == {z}]
    hist = max(candidates, key=lambda h: int(h["epoch"].max()), default=None)
    quantities = (("loss", "loss", "loss (mean BCE + fact · KL_seed)", _tol(tol, "loss_rel"), log["loss"]),
                  ("bce", "reconstruction_loss", "BCE", _tol(tol, "loss_rel"), log["reconstruction_loss"]),
                  ("kl", "kl_loss", "KL_seed (unscaled)", _tol(tol, "kl_rel"), log["kl_seed"]))
    if run is None or hist is None:
        return [_row(f"e2-vii-log-{k}", "E2", f"VII, z_dim {z}, epoch {log['epoch'][-1]}: {name}", "--",
                     f"{seed[-1]:.{3 if k == 'kl' else 4}f}", "--", "KL_seed" if k == "kl" else "nats/pixel",
                     Judgement("paper profile only", f"tolerance {t.text}"),
                     f"`model_add_loss` at z_dim {z} not trained in this run", n=0)
                for k, _, name, t, seed in quantities]
    first, final = log["epoch"][0], log["epoch"][-1]
    last = int(hist["epoch"].max())
    our_epoch = min(last, final)  # the same epoch as the seed's log where we have it
    seed_epoch = max(our_epoch, first)
    i = log["epoch"].index(seed_epoch)
    ours = hist.set_index("epoch").loc[our_epoch]
    unmet = _e2_unmet(run, final)
    compared = f"training log, epoch {our_epoch}, `model_add_loss`"
    rows = []
    for k, col, name, tolerance, seed in quantities:
        digits = 3 if k == "kl" else 4
        note = _note(unmet, f"ours: epoch {our_epoch}, the seed's: {seed_epoch}" if our_epoch != seed_epoch else "",
                     f"seed: fact · KL_seed = {log['kl_scaled'][i]:g}, ÷ fact" if k == "kl" else "")
        j = judge_value(seed[i], float(ours[col]), math.nan, 1, tolerance, unmet,
                        spread=spreads.get(("E2", f"e2-vii-log-{k}")))
        rows.append(_row(f"e2-vii-log-{k}", "E2", f"VII, z_dim {z}, epoch {seed_epoch}: {name}", compared,
                         f"{seed[i]:.{digits}f}", float(ours[col]), "KL_seed" if k == "kl" else "nats/pixel", j,
                         note, digits=digits))
    return rows


def latent_rows(e2_latents: list[str], e2_runs: list[str], tol: dict) -> list[dict]:
    """Post IV's latent extent at z_dim 2 (:data:`klvae.reference.SEED_LATENT_EXTENT`) against the
    ``q``..``1 - q`` quantiles of our test-set z_mean per axis (``end_layer``, post IV's strategy,
    when it was trained; the seed's box leaves out outliers such as its 6s). One run: each end
    must lie within the tolerance."""
    data = {str(d["strategy"]): d for d in (np.load(p) for p in e2_latents)}
    strategy = "end_layer" if "end_layer" in data else sorted(data)[0]
    z = data[strategy]["z_mean"]
    q = tol["latent_quantile"]
    lo, hi = np.quantile(z, [q, 1 - q], axis=0)
    run = _runs(e2_runs).get((strategy, int(z.shape[1])))
    unmet = _e2_unmet(run, ref.E2_SEED_EPOCHS) if run else ["no training record"]
    epochs = f", epoch {int(run['epochs'])}" if run else ""
    tolerance = Tolerance("abs", float(tol["latent_abs"]), "per end")
    rows = []
    for i, axis in enumerate(("x", "y")):
        s_lo, s_hi = ref.SEED_LATENT_EXTENT[axis]
        ok = tolerance.within(lo[i], s_lo) and tolerance.within(hi[i], s_hi)
        j = Judgement(judge(ok, unmet), f"tolerance {tolerance.text}, single run")
        rows.append(_row(f"e2-iv-latent-{axis}", "E2", f"IV, z_dim 2: z_mean[{i}] ({axis}) range",
                         f"test z_mean, {100 * q:g}–{100 * (1 - q):g} % quantiles, `{strategy}`{epochs}",
                         f"{s_lo:g} to {s_hi:g}", f"{lo[i]:.1f} to {hi[i]:.1f}", "latent units", j,
                         _note(unmet, f"seed: {ref.SEED_LATENT_EXTENT_EPOCHS} epochs at batch 128")))
    return rows


def _window_ratios(windows: pd.DataFrame | None, num: str, den: str | list[str]) -> np.ndarray:
    """Per-window ratio of one strategy's ms/step to another's, or to the median of several
    (``den`` a list: the comparator fixed in advance), in each window (interleaved windows: same
    conditions). Empty without windows or where a strategy was not timed."""
    if windows is None:
        return np.array([])
    w = windows.pivot_table(index="window", columns="strategy", values="ms_per_step")
    dens = [den] if isinstance(den, str) else list(den)
    if num not in w or not dens or any(d not in w for d in dens):
        return np.array([])
    return (w[num] / w[dens].median(axis=1, skipna=False)).dropna().to_numpy(float)


def timing_rows(e2_timing: str, tol: dict, e2_timing_windows: str | None = None) -> list[dict]:
    """Posts IV and VII's timings (:data:`klvae.reference.SEED_VII_LOG`, ``SEED_VII_SLOWDOWN``,
    ``SEED_IV_S_PER_EPOCH``, all on a GTX 960) against rule ``e2_timing``'s medians.

    Ratios of strategies carry across machines and are judged on their spread over the timing
    windows (each window times every strategy back to back: the windows are the ratio's
    replicates) by :func:`judge_ratio`. Post VII's ``model.add_loss()`` slowdown is
    ``model_add_loss`` divided by a comparator fixed before the data are seen: in each window
    the median ms/step of the other strategies with a KL term (``no_kl`` left out), never the
    fastest one picked afterwards. Absolute times were measured on the seed's GPU and are
    ``not comparable`` on any other machine; the note says whether ours is faster or slower.
    """
    t = pd.read_csv(e2_timing, keep_default_na=False).set_index("strategy")
    windows = pd.read_csv(e2_timing_windows) if e2_timing_windows else None
    gpu = str(t["gpu"].iloc[0]) if "gpu" in t.columns else ""
    on_gpu = gpu.strip().lower() not in ("", "none", "nan")
    cpu = f"{t['cpu'].iloc[0]}, {t['cpu_count'].iloc[0]} logical CPUs"
    where = f"ours: {gpu}" if on_gpu else f"ours: {cpu}, no GPU" + (" recorded" if "gpu" not in t.columns else "")
    n_windows = int(t["n_windows"].iloc[0]) if "n_windows" in t.columns else 1
    batch = int(t["batch_size"].iloc[0]) if "batch_size" in t.columns else ref.E2_SEED_BATCH_SIZE
    compared = f"median of {n_windows} windows, batch {batch}"
    device = ref.SEED_VII_LOG["device"]
    rows = []

    def absolute(id_, claim, seed, strategy, col, unit):
        if strategy not in t.index:
            return
        ours = float(t.loc[strategy, col])
        rows.append(_row(id_, "E2", claim, compared, f"{seed:g}", ours, unit,
                         Judgement("not comparable", f"other hardware (seed: {device})"),
                         f"{speed_note(seed, ours, unit, higher_is_faster=False)}; seed: {device}; {where}",
                         digits=1))

    def ratio(id_, claim, seed_text, seed_lo, seed_hi, num, den, unit, note, comparator=""):
        medians = t["median_ms_per_step"].astype(float)
        single = float(medians[num] / (medians[den] if isinstance(den, str) else medians[den].median()))
        j, ours, sd, n = judge_ratio(_window_ratios(windows, num, den), single, seed_lo, seed_hi,
                                     _tol(tol, "ratio_abs", "abs"))
        rows.append(_row(id_, "E2", claim, f"per window, {n} windows" if n else compared, seed_text, ours, unit,
                         Judgement(j.verdict, j.basis + comparator, j.lo, j.hi), f"{note}; {where}", sd=sd,
                         n=max(n, 1)))

    log = ref.SEED_VII_LOG
    absolute("e2-vii-ms", f"VII: `model_add_loss` step time, batch {ref.E2_SEED_BATCH_SIZE}", log["ms_per_step"],
             "model_add_loss", "median_ms_per_step", "ms/step")
    others = [s for s in t.index if s not in ("no_kl", "model_add_loss")]
    if "model_add_loss" in t.index and others:
        lo, hi = ref.SEED_VII_SLOWDOWN
        names = ", ".join(f"`{s}`" for s in others)
        ratio("e2-vii-slowdown", "VII: `model.add_loss()` slowdown (\"in certain conditions\")", f"{lo:g}–{hi:g}",
              lo, hi, "model_add_loss", others, "× median of the others",
              f"comparator fixed in advance: in each window the median ms/step of {names} (`no_kl` left out); "
              "reproduced if the interval meets the seed's range and is no wider than it, inconclusive if wider",
              f"; ÷ median of the other {len(others)} strategies" + (" per window" if windows is not None else ""))
    iv = ref.SEED_IV_S_PER_EPOCH
    absolute("e2-iv-end-s", "IV: end layer epoch time", iv["end_layer"], "end_layer", "s_per_epoch", "s/epoch")
    absolute("e2-iv-encoder-s", "V: encoder layer epoch time (\"10 to 11\")", iv["encoder_layer"], "encoder_layer",
             "s_per_epoch", "s/epoch")
    if {"end_layer", "encoder_layer"} <= set(t.index):
        seed = iv["end_layer"] / iv["encoder_layer"]
        ratio("e2-iv-ratio", "IV/V: end layer ÷ encoder layer time", f"{seed:.2f}", seed, seed, "end_layer",
              "encoder_layer", "ratio", f"seed: {iv['end_layer']:g} ÷ 10–11 s/epoch")
    return rows


def _quantity(frame: pd.DataFrame, quantity: str, **match) -> pd.Series | None:
    rows = frame[frame["quantity"] == quantity]
    for k, v in match.items():
        rows = rows[rows[k].astype(str) == str(v)]
    return rows.iloc[0] if len(rows) else None


def e3_rows(e3_manifest: str, e3_latents: str, e3_preprocessing: str, e3_memory: str, tol: dict,
            spreads: Mapping[tuple[str, str], Spread] | None = None) -> list[dict]:
    """Post IX's preprocessing time and memory (:data:`klvae.reference.SEED_PREPROCESS_SECONDS`,
    ``SEED_FLOAT32_GB``) and the AE-latent post's range (``SEED_AE_LATENT_RANGE``) against rules
    ``e3_bench_preprocessing``, ``e3_bench_memory`` and ``e3_ae_latents``. The preprocessing
    rate was measured on the seed's CPU: ``not comparable``, the note says whether ours is faster
    or slower and by what factor. The memory: one run, judged with the claim's same-backend
    spread in ``spreads`` (by ``("E3", id)``) where there is one, else the tolerance."""
    spreads = spreads or {}
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
                         f"1 process, {data}", f"{seed:.0f}", ours, "images/s per core",
                         Judgement("not comparable", "other hardware (seed: its own CPU)"),
                         f"{speed_note(seed, ours, 'images/s', higher_is_faster=True)}; seed: "
                         f"{ref.SEED_PREPROCESS_SECONDS:g} s for {ref.SEED_PREPROCESS_IMAGES:,}, ours {secs:.0f} s; "
                         f"different CPU ({rate.cpu}); the seed also wrote q95 JPEGs", digits=0))
    mem = pd.read_csv(e3_memory, keep_default_na=False)
    f170 = _quantity(mem, "peak_rss_float32_at_170000_extrapolated")
    s170 = _quantity(mem, "peak_rss_stream_at_170000_extrapolated")
    if f170 is not None:
        ours = float(f170.value)
        stream = f"; this project's streamed uint8: {float(s170.value):.2f} GB" if s170 is not None else ""
        j = judge_value(ref.SEED_FLOAT32_GB, ours, math.nan, 1, _tol(tol, "memory_rel"), unmet,
                        spread=spreads.get(("E3", "e3-ix-memory")))
        rows.append(_row("e3-ix-memory", "E3", f"IX: {ref.SEED_N_TRAIN:,} faces as one float32 array in RAM",
                         f"peak RSS, from {int(f170.n_images):,} images", f"{ref.SEED_FLOAT32_GB:g}", ours, "GB", j,
                         _note(unmet, f"ours extrapolated to {ref.SEED_N_TRAIN:,}{stream}"), digits=1))
    lat = pd.read_csv(e3_latents).iloc[0]
    lo, hi = ref.SEED_AE_LATENT_RANGE
    frac = float(lat.frac_in_0_20)
    majority = float(tol["ae_latent_majority"])
    rows.append(_row("e3-ae-latent-range", "E3", f"AE latent values mostly in {lo:g} < z_i < {hi:g}",
                     f"test faces, {data}", "most", f"{100 * frac:.1f} %", "share of values",
                     Judgement(judge(frac >= majority, unmet), f"\"most\" = ≥ {100 * majority:g} %, single run"),
                     _note(unmet, f"ours: 1–99 % quantiles {lat.q01:.2f} to {lat.q99:.2f}")))
    return rows


def run_backend(e2_timing: str) -> str | None:
    """This run's Keras backend, as rule ``e2_timing`` recorded it (column ``backend``), or None."""
    t = pd.read_csv(e2_timing, keep_default_na=False)
    value = str(t["backend"].iloc[0]).strip().lower() if "backend" in t.columns and len(t) else ""
    return value or None


def scorecard_rows(e1_table: str, e2_runs: list[str], e2_histories: list[str], e2_latents: list[str],
                   e2_timing: str, e3_manifest: str, e3_latents: str, e3_preprocessing: str, e3_memory: str,
                   tolerances: dict, profile: str, e2_timing_windows: str | None = None,
                   spreads: str | Path | Mapping | None = None, backend: str | None = None) -> list[dict]:
    """All claims, in the report's order (E1, E2, E3), each a dict with :data:`COLUMNS`.

    ``spreads`` (:func:`load_spreads`): same-setting spreads measured elsewhere, used for claims
    this run has one run of, and only those measured on this run's ``backend`` (default: the one
    rule ``e2_timing`` recorded, :func:`run_backend`; a spread of another backend is never used).
    """
    book = same_backend(load_spreads(spreads), backend or run_backend(e2_timing))
    rows = (e1_rows(e1_table, tolerances, book, backend or run_backend(e2_timing))
            + vii_rows(e2_runs, e2_histories, tolerances, book)
            + latent_rows(e2_latents, e2_runs, tolerances) + timing_rows(e2_timing, tolerances, e2_timing_windows)
            + e3_rows(e3_manifest, e3_latents, e3_preprocessing, e3_memory, tolerances, book))
    return [{k: {**r, "profile": profile}[k] for k in COLUMNS} for r in rows]


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


_TITLES = {"E1": "E1, seed 003: test losses per KL coefficient c",
           "E2": "E2, posts IV-VIII: training log, latent extent and timings",
           "E3": "E3, post IX and the AE-latent post: faces"}


def _unbroken(value) -> str:
    """A number or range (``-3 to 4.5``, ``1.3–1.5``) that a narrow table cell must not break:
    no-break spaces, and a word joiner (U+2060) after each en dash."""
    return str(value).replace(" ", "\u00a0").replace("–", "–\u2060")


def _table(rows: list[dict], experiment: str, profile: str) -> str:
    """One experiment's claims: a pipe table (one row per claim) with caption and
    ``{#tbl-scorecard-e1}``-style id; notes shared by rows are numbered under the table."""
    notes: list[str] = []
    body = []
    for r in rows:
        if r["note"] and r["note"] not in notes:
            notes.append(r["note"])
        mark = str(notes.index(r["note"]) + 1) if r["note"] else ""
        verdict = f"**{r['verdict']}**" if r["verdict"] == "differs" else r["verdict"]
        basis = r["basis"].replace("prediction interval", "PI").replace("tolerance ", "")
        interval = r["interval"] if r["basis"].startswith("prediction interval") and r["interval"] not in basis else ""
        body.append([r["claim"], r["compared"], *(_unbroken(r[k]) for k in ("seed_value", "ours", "sd")),
                     str(r["n"]) if r["n"] else "",
                     f"{basis}: {interval}" if interval else basis, verdict, mark])
    units = sorted({r["unit"] for r in rows})
    caption = (f"Scorecard, {_TITLES.get(experiment, experiment)} ({profile} profile; unit: {', '.join(units)}). "
               f"ours: the mean over n runs (sd: their sample standard deviation); basis: the 95 % prediction "
               f"interval (PI) for one new run where n ≥ 2 (or where a spread of the same setting on the same "
               f"backend is supplied), else the config's tolerance. "
               f"{_summary_text({v: sum(r['verdict'] == v for r in rows) for v in VERDICTS})}. "
               "{{< var made_by.report_scorecard >}}")
    table = markdown_table(["claim", "compared", "seed", "ours", "sd", "n", "basis", "verdict", "note"], body,
                           caption, f"tbl-scorecard-{experiment.lower()}", align="llrrrrlll")
    listed = "".join(f"{i}. {n}\n" for i, n in enumerate(notes, 1))
    return table + (f"\nNotes to @tbl-scorecard-{experiment.lower()}:\n\n{listed}" if notes else "")


def scorecard_markdown(rows: list[dict], profile: str) -> str:
    """The scorecard fragment: a summary line counting verdicts per experiment, then one table
    per experiment (``{#tbl-scorecard-e1}``, ``-e2``, ``-e3``), one row per claim."""
    counts = verdict_counts(rows)
    experiments = [e for e in counts if e != "all"]
    summary = "**Summary.** " + "; ".join(f"{e}: {_summary_text(counts[e])}" for e in experiments) + \
        f". All: {_summary_text(counts['all'])}.\n\n"
    return summary + "\n".join(_table([r for r in rows if r["experiment"] == e], e, profile) for e in experiments)


def write_scorecard(table: str, md: str, variables: str, e1_table: str, e2_runs: list[str],
                    e2_histories: list[str], e2_latents: list[str], e2_timing: str, e3_manifest: str,
                    e3_latents: str, e3_preprocessing: str, e3_memory: str, tolerances: dict,
                    profile: str, e2_timing_windows: str | None = None, spreads: str | Path | Mapping | None = None,
                    backend: str | None = None) -> None:
    """Rule ``report_scorecard``: the scorecard as CSV, markdown fragment and YAML variables.

    Args:
        table: output CSV, one row per claim, :data:`COLUMNS`: ``id``, ``experiment``
            (E1/E2/E3), ``claim`` (short text naming the seed post), ``compared`` (split, epoch,
            strategy of ours), ``seed_value`` and ``ours`` (as printed, in ``unit``; ours is the
            mean over ``n`` runs), ``sd`` (sample sd over the runs, empty for one), ``n``,
            ``interval`` (the prediction interval, or the band the tolerance allows around the
            seed's value), ``basis`` (``prediction interval, n = 3`` or
            ``tolerance ±2 %, single run``), ``verdict`` (one of :data:`VERDICTS`), ``profile``,
            ``note`` (why; settings that differ from the seed's).
        md: output markdown fragment (summary line and ``{#tbl-scorecard-e1}``, ``-e2``, ``-e3``).
        variables: output YAML: ``scorecard.n_claims``, ``n_reproduced``, ``n_differs``,
            ``n_inconclusive``, ``n_not_comparable``, ``n_paper_only``, ``n_judged`` (reproduced +
            differs), and ``by_experiment`` (the same counts per experiment).
        e1_table: rule ``e1_table``'s CSV (mean, sd and count of the replicates per c).
        e2_runs, e2_histories: every E2 training job's ``metrics.json`` and ``history.csv``
            (rule ``e2_seed_log``'s longer run included where the profile has it).
        e2_latents: rule ``e2_analyse``'s latent ``.npz`` files at z_dim 2.
        e2_timing, e2_timing_windows: rule ``e2_timing``'s summary and per-window CSVs.
        e3_manifest, e3_latents, e3_preprocessing, e3_memory: the face manifest, the AE-latent
            summary and two E3 benchmark CSVs.
        tolerances: the validated ``scorecard`` section of the config.
        profile: the config's profile name.
        spreads, backend: optional same-setting spreads and this run's Keras backend (see
            :func:`scorecard_rows`); None: no spreads, the backend from ``e2_timing``.
    """
    rows = scorecard_rows(e1_table, e2_runs, e2_histories, e2_latents, e2_timing, e3_manifest, e3_latents,
                          e3_preprocessing, e3_memory, tolerances, profile, e2_timing_windows, spreads, backend)
    write_rows(table, rows)
    write_text(md, scorecard_markdown(rows, profile))
    counts = verdict_counts(rows)

    def keyed(c: dict[str, int]) -> dict[str, int]:
        return {"n_claims": sum(c.values()), "n_reproduced": c["reproduced"], "n_differs": c["differs"],
                "n_inconclusive": c["inconclusive"], "n_not_comparable": c["not comparable"],
                "n_paper_only": c["paper profile only"],
                "n_judged": c["reproduced"] + c["differs"]}

    values = {**keyed(counts["all"]), "by_experiment": {e: keyed(c) for e, c in counts.items() if e != "all"}}
    write_text(variables, yaml.safe_dump({"scorecard": values}, sort_keys=False, allow_unicode=True))
