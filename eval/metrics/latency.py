"""Latency statistics.

``None`` entries (e.g. a request that errored) are ignored; an empty input
gives ``None`` statistics.  Percentiles use linear interpolation between
closest ranks (numpy's default ``"linear"`` method), with ``p`` in [0, 100].

Worked example:

>>> latencies = [1.0, 2.0, 3.0, 4.0, 10.0]
>>> percentile(latencies, 50)
3.0
>>> round(percentile(latencies, 95), 6)     # rank 0.95 * 4 = 3.8: 4 + 0.8 * (10 - 4)
8.8
>>> {k: round(v, 6) for k, v in summarize(latencies).items()}
{'n': 5, 'mean': 4.0, 'p50': 3.0, 'p95': 8.8, 'max': 10.0}
>>> summarize([])
{'n': 0, 'mean': None, 'p50': None, 'p95': None, 'max': None}
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["percentile", "summarize"]


def _clean(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([float(v) for v in values if v is not None], dtype=float)


def percentile(values: Iterable[float | None], p: float) -> float | None:
    """The ``p``-th percentile (0-100, linear interpolation); ``None`` if empty.

    >>> percentile([10.0, 20.0], 25)
    12.5
    >>> percentile([], 50) is None
    True
    """
    if not 0 <= p <= 100:
        raise ValueError(f"p must be in [0, 100], got {p!r}")
    arr = _clean(values)
    if arr.size == 0:
        return None
    return float(np.percentile(arr, p))


def summarize(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """``{"n", "mean", "p50", "p95", "max"}`` of the non-``None`` values.

    >>> summarize([0.5, None, 1.5])
    {'n': 2, 'mean': 1.0, 'p50': 1.0, 'p95': 1.45, 'max': 1.5}
    """
    arr = _clean(values)
    if arr.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }
