"""The one total order of search results, and RRF fusion that keeps it.

Qdrant orders equal scores however its internals happen to (its RRF "does not break ties" and
collects fused points in a hash map seeded per process), so the same query on the same index
could return tied chunks in a different order in each process: the answer then followed
whichever chunk came first. Every ranking in this project is therefore re-sorted here, in one
documented order:

* one vector (dense or BM25): score, higher first; then point id, ascending. Scores are float32,
  as Qdrant computes them (qdrant-client's local mode computes in float64: the server backend
  rounds its scores with ``f32``, so both backends see the same ties).
* hybrid: the RRF score, higher first; then the dense score (a point missing from the dense
  list counts as lowest); then the BM25 score (likewise); then point id, ascending.
* one hit per paper (``rag.search.retrieval``): the first chunk of each paper in that order.

RRF is computed with Qdrant's formula, ``weight / (position + 1 + weight * (k - 1))``, i.e.
``1 / ((position + 1) / weight + k - 1)`` with 0-based positions, which is ``1 / (position + k)``
for weight 1. A list cut at ``limit`` keeps exactly the first ``limit`` points of the total
order: stores fetch more when the cut falls inside a group of equal scores
(``needs_more``).

Example:
    >>> a = StoredHit("b", 0.5, {}); b = StoredHit("a", 0.5, {}); c = StoredHit("c", 0.9, {})
    >>> [h.id for h in sort_single([a, b, c])]
    ['c', 'a', 'b']
    >>> dense = [StoredHit("x", 0.9, {}), StoredHit("y", 0.8, {})]
    >>> sparse = [StoredHit("y", 7.0, {}), StoredHit("x", 6.0, {})]
    >>> [(h.id, round(h.score, 5), h.dense) for h in fuse_rrf(dense, sparse, k=60)]
    [('x', 0.03306, 0.9), ('y', 0.03306, 0.8)]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TIE_SLACK = 8  # extra points fetched beyond a cut, to see whether the cut splits equal scores


@dataclass
class StoredHit:
    """A point returned by a store query. For hybrid queries ``score`` is the RRF score and
    ``dense`` / ``sparse`` are the point's scores in the two prefetch lists (None if absent)."""

    id: str
    score: float
    payload: dict
    dense: float | None = None
    sparse: float | None = None


def f32(x: float) -> float:
    """``x`` rounded to float32, the precision Qdrant scores in.

    >>> f32(0.6918474394276422) == f32(0.691847440538309)
    True
    """
    return struct.unpack("f", struct.pack("f", x))[0]


def single_key(hit: StoredHit) -> tuple:
    return (-hit.score, hit.id)


def sort_single(hits: list[StoredHit]) -> list[StoredHit]:
    """Sort one vector's hits into the total order (score desc, id asc)."""
    return sorted(hits, key=single_key)


def needs_more(sorted_hits: list[StoredHit], limit: int, fetched: int) -> bool:
    """True when ``fetched`` points were asked for, all came back, and the point at the cut
    (position ``limit``) ties with the last one fetched: the tie group may extend beyond what
    the engine returned, so which of its members make the cut is not yet known."""
    if len(sorted_hits) < fetched or len(sorted_hits) <= limit:
        return False
    return sorted_hits[limit - 1].score == sorted_hits[-1].score


def _lowest(x: float | None) -> float:
    return float("inf") if x is None else -x


def fused_key(hit: StoredHit) -> tuple:
    return (-hit.score, _lowest(hit.dense), _lowest(hit.sparse), hit.id)


def fuse_rrf(dense: list[StoredHit], sparse: list[StoredHit], k: int = 60,
             weights: tuple[float, float] = (1.0, 1.0), limit: int | None = None) -> list[StoredHit]:
    """Reciprocal rank fusion of two lists already in the total order; result in the total order."""
    fused: dict[str, StoredHit] = {}
    for which, hits, weight in (("dense", dense, weights[0]), ("sparse", sparse, weights[1])):
        for pos, h in enumerate(hits):
            part = 0.0 if weight <= 0 else 1.0 / ((pos + 1) / weight + k - 1)
            f = fused.get(h.id)
            if f is None:
                f = fused[h.id] = StoredHit(h.id, 0.0, h.payload)
            f.score += part
            setattr(f, which, h.score)
    out = sorted(fused.values(), key=fused_key)
    return out if limit is None else out[:limit]
