"""Statistics the scorecard, the bundle comparison and the backend study share.

* :data:`LEVEL` -- the coverage of every interval the report shows (95 %).
* :func:`prediction_interval` -- where one new run of a setting should fall, from ``n`` runs.

Below the report and the bundles (both read it); imports no deep-learning framework.
"""

from __future__ import annotations

import math

from scipy.stats import t as student_t

#: Coverage of the prediction interval for one new run (and of the backend study's Welch interval).
LEVEL = 0.95


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


__all__ = ["LEVEL", "prediction_interval"]
