"""Vector store: one small interface, two Qdrant backends.

* ``EdgeStore`` (default): qdrant-edge-py, Qdrant's in-process engine, persisted under the data dir.
* ``ServerStore``: qdrant-client against a Qdrant server by URL (``:memory:`` in tests).

Both hold, per chunk, a dense vector ``dense`` (cosine) and a BM25 sparse vector ``bm25``
(IDF applied by Qdrant), and run hybrid queries as two prefetches fused with RRF inside Qdrant.
Sparse vectors are computed client-side with qdrant-edge's ``Bm25`` for both backends, so the
two give the same ranking for the same data, up to the order of exactly tied scores (edge
compares in float32, qdrant-client's local mode in float64; tests/test_store.py checks this).

Example:
    >>> store = open_store(StoreSettings(backend="server", url=":memory:"), Path("."), "demo", dim=2)
    >>> store.upsert([PointData("00000000-0000-0000-0000-000000000001", [1.0, 0.0], sparse_doc("tiny"), {"paper_id": "p", "title": "T"})])
    >>> [h.payload["title"] for h in store.query(QuerySpec(dense=[1.0, 0.0], sparse=sparse_query("tiny"), limit=1))]
    ['T']
    >>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from rag.config import StoreSettings
from rag.errors import InputError, StoreError

DENSE, SPARSE = "dense", "bm25"
# payload fields with a keyword index, usable in filters
FILTER_FIELDS = {"title": "title", "paper_id": "paper_id", "date": "dates", "page": "sources"}


@dataclass
class Sparse:
    indices: list[int]
    values: list[float]


@dataclass
class PointData:
    id: str
    dense: list[float]
    sparse: Sparse
    payload: dict


@dataclass
class QuerySpec:
    dense: list[float] | None = None
    sparse: Sparse | None = None
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    limit: int = 10
    prefetch: int = 50
    rrf_k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)
    filters: dict[str, Any] = field(default_factory=dict)
    exact: bool = False


@dataclass
class StoredHit:
    id: str
    score: float
    payload: dict


@lru_cache(maxsize=1)
def _bm25():
    import qdrant_edge

    return qdrant_edge.Bm25()


def sparse_doc(text: str) -> Sparse:
    """BM25 document vector (term frequencies with k, b, avg_len; Qdrant applies IDF)."""
    v = _bm25().embed_document(text)
    return Sparse(list(v.indices), list(v.values))


def sparse_query(text: str) -> Sparse:
    v = _bm25().embed_query(text)
    return Sparse(list(v.indices), list(v.values))


def normalize_filters(filters: dict[str, Any] | None) -> dict[str, list[str]]:
    """Validate user filters ({"title": ..., "date": ..., "page": ..., "paper_id": ...}) into field -> values."""
    out: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        if key not in FILTER_FIELDS:
            raise InputError(f"unknown filter '{key}': use one of {sorted(FILTER_FIELDS)}")
        values = [value] if isinstance(value, str) else list(value)
        if not values or not all(isinstance(v, str) and v for v in values):
            raise InputError(f"filter '{key}' needs a non-empty string or list of strings")
        out[FILTER_FIELDS[key]] = values
    return out


class VectorStore:
    """What the pipeline needs from Qdrant. Not re-entrant across threads: callers serialise."""

    name: str

    def upsert(self, points: list[PointData]) -> None: ...
    def delete_paper(self, paper_id: str) -> None: ...
    def payloads(self, ids: list[str], fields: list[str]) -> dict[str, dict]: ...
    def count(self, paper_id: str | None = None) -> int: ...
    def query(self, spec: QuerySpec) -> list[StoredHit]: ...
    def optimize(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def open_store(settings: StoreSettings, data_dir: Path, collection: str, dim: int) -> VectorStore:
    """Open (creating if needed) the collection for vectors of size ``dim``."""
    if settings.backend == "edge":
        from rag.store.edge import EdgeStore

        return EdgeStore(Path(data_dir) / "qdrant" / collection, dim)
    if not settings.url:
        raise StoreError("store.backend 'server' needs store.url (e.g. http://localhost:6333, or ':memory:' for tests)")
    from rag.store.server import ServerStore

    return ServerStore(settings.url, settings.api_key, collection, dim)
