"""Per-question retrieval metrics over ranked paper titles.

All functions take ``retrieved`` (titles in rank order, best first) and
``gold`` (the titles that answer the question).  Titles are compared after
:func:`eval.metrics.normalize_title`; duplicates in ``retrieved`` are dropped
keeping the first (best-ranked) occurrence, so a paper retrieved via several
chunks counts once, at its best rank.  Relevance is binary.

Questions with no gold titles (e.g. unanswerable ones) make every metric
return ``None`` so they can be excluded from means.

Worked example -- retrieved ``[A, B, C]``, gold ``[C, D]``:

>>> retrieved, gold = ["A", "B", "C"], ["C", "D"]
>>> recall_at_k(retrieved, gold, 1), recall_at_k(retrieved, gold, 3)
(0.0, 0.5)
>>> hit_at_k(retrieved, gold, 2), hit_at_k(retrieved, gold, 3)
(0.0, 1.0)
>>> round(reciprocal_rank(retrieved, gold), 4)
0.3333
>>> # DCG@3 = 1/log2(4) = 0.5;  IDCG@3 = 1/log2(2) + 1/log2(3) ~= 1.6309
>>> round(ndcg_at_k(retrieved, gold, 3), 4)
0.3066
>>> all_gold_at_k(retrieved, gold, 3)
0.0
>>> recall_at_k(["a", "A", "c"], ["C"], 2)   # "A" duplicates "a": c is rank 2
1.0
>>> recall_at_k(retrieved, [], 3) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from eval.metrics import normalize_title

__all__ = ["recall_at_k", "hit_at_k", "reciprocal_rank", "ndcg_at_k", "all_gold_at_k"]


def _ranked(retrieved: Iterable[str]) -> list[str]:
    """Normalised titles in rank order, duplicates removed (first kept)."""
    seen: set[str] = set()
    out: list[str] = []
    for title in retrieved:
        t = normalize_title(title)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _gold_set(gold: Iterable[str]) -> set[str]:
    """Unique normalised gold titles (empty titles ignored)."""
    return {t for t in (normalize_title(g) for g in gold) if t}


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def recall_at_k(retrieved: Sequence[str], gold: Sequence[str], k: int) -> float | None:
    """Fraction of the unique gold titles found in the top ``k`` retrieved.

    Returns ``None`` when there is no gold title.

    >>> recall_at_k(["A", "B", "C"], ["C", "D"], 3)
    0.5
    """
    _check_k(k)
    g = _gold_set(gold)
    if not g:
        return None
    top = set(_ranked(retrieved)[:k])
    return len(g & top) / len(g)


def hit_at_k(retrieved: Sequence[str], gold: Sequence[str], k: int) -> float | None:
    """1.0 if any gold title is in the top ``k`` retrieved, else 0.0 (``None`` without gold).

    >>> hit_at_k(["A", "B", "C"], ["C", "D"], 2)
    0.0
    """
    _check_k(k)
    g = _gold_set(gold)
    if not g:
        return None
    return 1.0 if g & set(_ranked(retrieved)[:k]) else 0.0


def reciprocal_rank(retrieved: Sequence[str], gold: Sequence[str], k: int | None = None) -> float | None:
    """1 / (rank of the first gold title), 0.0 if none is retrieved (``None`` without gold).

    Ranks are 1-based and counted after de-duplication.  With ``k`` given,
    only the top ``k`` count (MRR@k).

    >>> reciprocal_rank(["A", "B", "C"], ["B"])
    0.5
    >>> reciprocal_rank(["A", "B", "C"], ["C"], k=2)
    0.0
    """
    if k is not None:
        _check_k(k)
    g = _gold_set(gold)
    if not g:
        return None
    ranked = _ranked(retrieved)
    if k is not None:
        ranked = ranked[:k]
    for i, title in enumerate(ranked, start=1):
        if title in g:
            return 1.0 / i
    return 0.0


def ndcg_at_k(retrieved: Sequence[str], gold: Sequence[str], k: int) -> float | None:
    """Binary-relevance nDCG@k (``None`` without gold).

    ``DCG = sum(1 / log2(rank + 1))`` over gold titles in the top ``k``;
    the ideal DCG places ``min(len(gold), k)`` gold titles at ranks 1, 2, ...

    >>> ndcg_at_k(["C", "D", "A"], ["C", "D"], 3)
    1.0
    """
    _check_k(k)
    g = _gold_set(gold)
    if not g:
        return None
    dcg = sum(1.0 / math.log2(i + 1) for i, t in enumerate(_ranked(retrieved)[:k], start=1) if t in g)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(g), k) + 1))
    return dcg / idcg


def all_gold_at_k(retrieved: Sequence[str], gold: Sequence[str], k: int) -> float | None:
    """1.0 if every gold title is in the top ``k`` retrieved, else 0.0 (``None`` without gold).

    >>> all_gold_at_k(["D", "A", "C"], ["C", "D"], 3)
    1.0
    """
    _check_k(k)
    g = _gold_set(gold)
    if not g:
        return None
    return 1.0 if g <= set(_ranked(retrieved)[:k]) else 0.0
