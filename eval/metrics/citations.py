"""Per-answer citation metrics.

``cited`` are the paper titles the answer cites, ``gold`` the titles that
actually answer the question (for a list question: the complete list, so
precision and recall are the list's set precision and recall).
Titles are compared after :func:`eval.metrics.normalize_title` and each metric
works on *unique* normalised titles (citing the same paper twice counts once);
empty titles are ignored.  A metric whose denominator would be empty returns
``None`` so the question can be excluded from means.

Worked example -- the answer cites one gold paper and two others:

>>> cited = ["Paper A", "paper b", "Paper Z"]
>>> gold = ["Paper A", "Paper D"]
>>> round(citation_precision(cited, gold), 4)       # A of A, B, Z
0.3333
>>> citation_recall(cited, gold)                    # A of A, D
0.5
>>> cites_gold(cited, gold)
1.0
>>> citation_precision([], gold) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eval.metrics import normalize_title

__all__ = ["citation_precision", "citation_recall", "cites_gold"]


def _titles(titles: Iterable[str]) -> set[str]:
    """Unique non-empty normalised titles."""
    return {t for t in (normalize_title(x) for x in titles) if t}


def citation_precision(cited: Sequence[str], gold: Sequence[str]) -> float | None:
    """Share of the unique cited titles that are gold (``None`` when nothing is cited).

    >>> citation_precision(["A", "B"], ["A"])
    0.5
    """
    c = _titles(cited)
    if not c:
        return None
    return len(c & _titles(gold)) / len(c)


def citation_recall(cited: Sequence[str], gold: Sequence[str]) -> float | None:
    """Share of the unique gold titles that are cited (``None`` when there is no gold).

    >>> citation_recall(["A"], ["A", "B"])
    0.5
    >>> citation_recall([], ["A"])
    0.0
    """
    g = _titles(gold)
    if not g:
        return None
    return len(_titles(cited) & g) / len(g)


def cites_gold(cited: Sequence[str], gold: Sequence[str]) -> float | None:
    """1.0 if any cited title is gold, else 0.0 (``None`` when there is no gold).

    >>> cites_gold(["X", "a"], ["A"]), cites_gold([], ["A"])
    (1.0, 0.0)
    """
    g = _titles(gold)
    if not g:
        return None
    return 1.0 if _titles(cited) & g else 0.0
