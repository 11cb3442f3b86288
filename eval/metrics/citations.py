"""Per-answer citation metrics.

``cited`` are the paper titles the answer cites, ``retrieved`` the titles that
were put in the prompt, ``gold`` the titles that actually answer the question.
Titles are compared after :func:`eval.metrics.normalize_title` and each metric
works on *unique* normalised titles (citing the same paper twice counts once);
empty titles are ignored.  A metric whose denominator would be empty returns
``None`` so the question can be excluded from means.

Worked example -- the answer cites one retrieved gold paper, one retrieved
non-gold paper and one paper that was never retrieved (hallucinated):

>>> cited = ["Paper A", "paper b", "Paper Z"]
>>> retrieved = ["Paper A", "Paper B", "Paper C"]
>>> gold = ["Paper A", "Paper D"]
>>> round(citation_validity(cited, retrieved), 4)   # A, B of A, B, Z
0.6667
>>> round(citation_precision(cited, gold), 4)       # A of A, B, Z
0.3333
>>> citation_recall(cited, gold)                    # A of A, D
0.5
>>> cites_gold(cited, gold)
1.0
>>> citation_validity([], retrieved) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eval.metrics import normalize_title

__all__ = ["citation_validity", "citation_precision", "citation_recall", "cites_gold"]


def _titles(titles: Iterable[str]) -> set[str]:
    """Unique non-empty normalised titles."""
    return {t for t in (normalize_title(x) for x in titles) if t}


def citation_validity(cited: Sequence[str], retrieved: Sequence[str]) -> float | None:
    """Share of the unique cited titles that are among the retrieved titles.

    Returns ``None`` when nothing is cited.

    >>> citation_validity(["A", "Z"], ["a", "b"])
    0.5
    """
    c = _titles(cited)
    if not c:
        return None
    return len(c & _titles(retrieved)) / len(c)


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
