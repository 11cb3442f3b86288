"""Percentile-bootstrap confidence intervals for per-question metrics (``scipy.stats.bootstrap``).

``None`` values (questions where a metric is undefined) are dropped first.
Resampling uses ``numpy.random.default_rng(seed)``, so results are
deterministic for a given seed.  The interval is clamped to contain the
point estimate, so a constant sample gives ``low == high == point``.

Worked example:

>>> bootstrap_ci([1.0, 1.0, None, 1.0])
(1.0, 1.0, 1.0)
>>> point, low, high = mean_ci([0, 1] * 50)
>>> point, low <= point <= high, 0.35 < low < 0.5 < high < 0.65
(0.5, True, True)
>>> bootstrap_ci([None, None])
(None, None, None)
>>> mean_defined([1.0, None, 0.0])
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["bootstrap_ci", "mean_ci", "mean_defined"]


def _clean(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None], dtype=float)


def mean_defined(values: Iterable[float | None]) -> float | None:
    """Mean of the non-``None`` values; ``None`` if there are none.

    >>> mean_defined([None]) is None
    True
    """
    arr = _clean(values)
    return float(arr.mean()) if arr.size else None


def bootstrap_ci(
    values: Iterable[float | None],
    stat: Callable[[np.ndarray], Any] = np.mean,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float | None, float | None, float | None]:
    """``(point, low, high)``: ``stat`` on the data and its ``1 - alpha`` percentile-bootstrap CI.

    ``stat`` maps a 1-D float array to a number.  ``None`` values are
    ignored; with no values left the result is ``(None, None, None)``.

    >>> bootstrap_ci([3.0])
    (3.0, 3.0, 3.0)
    >>> bootstrap_ci([0.0, 1.0, 1.0, 0.0], seed=1) == bootstrap_ci([0.0, 1.0, 1.0, 0.0], seed=1)
    True
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    arr = _clean(values)
    if arr.size == 0:
        return (None, None, None)
    point = float(stat(arr))
    if arr.size == 1 or np.all(arr == arr[0]):  # no spread to resample
        return (point, point, point)
    from scipy.stats import bootstrap

    vectorized = stat is np.mean  # the common case, done in one array operation
    res = bootstrap((arr,), (lambda x, axis=-1: np.mean(x, axis=axis)) if vectorized else stat, n_resamples=n_resamples,
                    confidence_level=1 - alpha, method="percentile", vectorized=vectorized, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (point, min(low, point), max(high, point))


def mean_ci(
    values: Iterable[float | None],
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float | None, float | None, float | None]:
    """:func:`bootstrap_ci` with ``stat=numpy.mean``.

    >>> mean_ci([])
    (None, None, None)
    """
    return bootstrap_ci(values, np.mean, n_resamples=n_resamples, alpha=alpha, seed=seed)
