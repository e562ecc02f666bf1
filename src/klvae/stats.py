"""Statistics the scorecard, the bundle comparison and the backend study share.

* :data:`LEVEL` -- the coverage of every interval the report shows (95 %).
* :func:`prediction_interval` -- where one new run of a setting should fall, from ``n`` runs.
* :func:`log_prediction_interval`, :func:`lognormal_prediction_interval` -- the same on the log
  scale, for quantities that cannot be negative (losses, KL, times, ratios): never below zero.
* :data:`MAX_REL_HALF_WIDTH` and :func:`relative_half_width` -- when an interval (or a tolerance)
  is too wide, for the quantity it is about, to judge anything by.

Below the report and the bundles (both read it); imports no deep-learning framework.
"""

from __future__ import annotations

import math

from scipy.stats import t as student_t

#: Coverage of the prediction interval for one new run (and of the backend study's Welch interval).
LEVEL = 0.95
#: Fixed in advance: an interval or tolerance whose half-width is above this fraction of the value
#: it is about (:func:`relative_half_width`) is wider than the quantity itself and decides nothing:
#: a claim that would be reproduced within it is ``inconclusive`` (:mod:`klvae.report.scorecard`).
MAX_REL_HALF_WIDTH = 0.5


def prediction_interval(mean: float, sd: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Student-t prediction interval for one new run, from ``n`` runs of the same setting.

    ``mean ± t(n - 1, (1 + level) / 2) · sd · sqrt(1 + 1/n)`` (e.g. Hahn & Meeker,
    *Statistical Intervals*, 1991, ch. 4): where the post's single run should fall if it came
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


def lognormal_moments(mean: float, sd: float) -> tuple[float, float]:
    """Mean and sd of ``log X`` for a positive ``X`` with mean ``mean`` and sd ``sd``, where only
    those two are known: the log-normal with the same mean and sd,

    ``sd_log = sqrt(log(1 + sd² / mean²))``, ``mean_log = log(mean) - sd_log² / 2``

    (for a small ``sd / mean`` this is the delta method's ``sd_log ≈ sd / mean``). ``mean`` and
    ``sd`` are in the quantity's unit; ``mean_log`` is in log units of it, ``sd_log`` is
    dimensionless.

    Raises:
        ValueError: ``mean <= 0`` (no log-normal has it) or a negative or non-finite ``sd``.
    """
    if not mean > 0:
        raise ValueError(f"a log-normal needs mean > 0, got {mean}")
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    sd_log = math.sqrt(math.log1p((sd / mean) ** 2))
    return math.log(mean) - sd_log ** 2 / 2, sd_log


def log_prediction_interval(mean_log: float, sd_log: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Prediction interval for one new run of a positive quantity, on the log scale.

    ``exp(mean_log ± t(n - 1, (1 + level) / 2) · sd_log · sqrt(1 + 1/n))``: :func:`prediction_interval`
    of the runs' logarithms, taken back to the quantity's unit. Both ends are > 0, and the
    interval is wider above than below (a factor, not an amount).

    Args:
        mean_log, sd_log: sample mean and sample sd (``ddof=1``) of ``log`` of the ``n`` runs'
            values (the values in the quantity's unit, e.g. nats or ms/step; ``sd_log`` is
            dimensionless).
        n: number of runs (>= 2).
        level: coverage (0.95 by default).

    Returns:
        ``(lo, hi)`` in the quantity's unit.

    Raises:
        ValueError: for ``n < 2``, a negative ``sd_log`` or a non-finite ``mean_log``.
    """
    if not math.isfinite(mean_log):
        raise ValueError(f"mean_log must be finite, got {mean_log}")
    lo, hi = prediction_interval(mean_log, sd_log, n, level)
    return math.exp(lo), math.exp(hi)


def lognormal_prediction_interval(mean: float, sd: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Prediction interval for one new run of a positive quantity of which only the runs' mean and
    sd are known: :func:`log_prediction_interval` of :func:`lognormal_moments`,

    ``exp(mean_log ± t(n - 1, (1 + level) / 2) · sd_log · sqrt(1 + 1/n))`` with
    ``sd_log = sqrt(log(1 + sd² / mean²))`` and ``mean_log = log(mean) - sd_log² / 2``.

    Args:
        mean, sd: sample mean and sample sd (``ddof=1``) of the ``n`` runs, in the quantity's unit.
        n: number of runs (>= 2).
        level: coverage (0.95 by default).

    Returns:
        ``(lo, hi)`` in the quantity's unit, both > 0.

    Raises:
        ValueError: ``mean <= 0``, a negative or non-finite ``sd``, ``n < 2``.
    """
    mean_log, sd_log = lognormal_moments(mean, sd)
    return log_prediction_interval(mean_log, sd_log, n, level)


def relative_half_width(lo: float, hi: float, value: float) -> float:
    """``(hi - lo) / 2 / |value|``: an interval's (or a tolerance band's) half-width as a fraction of
    the value it is about (dimensionless; ``lo``, ``hi`` and ``value`` in one unit). ``inf`` where
    ``value`` is 0 and the interval is not a point, NaN where an end or the value is NaN.
    Compared with :data:`MAX_REL_HALF_WIDTH`."""
    if any(math.isnan(x) for x in (lo, hi, value)):
        return math.nan
    half = (hi - lo) / 2
    if value == 0:
        return 0.0 if half == 0 else math.inf
    return half / abs(value)


__all__ = ["LEVEL", "MAX_REL_HALF_WIDTH", "prediction_interval", "lognormal_moments", "log_prediction_interval",
           "lognormal_prediction_interval", "relative_half_width"]
