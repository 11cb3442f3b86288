"""Vector store: one small interface, two Qdrant backends.

* ``EdgeStore`` (default): qdrant-edge-py, Qdrant's in-process engine, persisted under the data dir.
* ``ServerStore``: qdrant-client against a Qdrant server by URL (``:memory:`` in tests).

Both hold, per chunk, a dense vector ``dense`` (cosine) and a BM25 sparse vector ``bm25``
(IDF applied by Qdrant). Sparse vectors are computed client-side with qdrant-edge's ``Bm25`` for
both backends. A backend only runs single-vector searches (``_search_many``); ``VectorStore.query``
puts every result list into one total order and fuses hybrid queries with RRF
(``rag.search.store.ranking`` documents the order and why Qdrant's own tie order cannot be used), so
the same query gives the same ranking in every process and on both backends
(tests/test_store.py checks this id by id).

Every failure inside a backend operation (server down, disk full, a damaged shard) reaches the
caller as one ``StoreError`` line saying what failed and what to do (``store_error``).

Example:
    >>> store = open_store(StoreSettings(backend="server", url=":memory:"), Path("."), "demo", dim=2)
    >>> store.upsert([PointData("00000000-0000-0000-0000-000000000001", [1.0, 0.0], sparse_doc("tiny"), {"paper_id": "p", "title": "T"})])
    >>> [h.payload["title"] for h in store.query(QuerySpec(dense=[1.0, 0.0], sparse=sparse_query("tiny"), limit=1))]
    ['T']
    >>> store.close()
"""

from __future__ import annotations

import errno
import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from rag.config import StoreSettings
from rag.errors import InputError, RagError, StoreError
from rag.search.store.ranking import TIE_SLACK, StoredHit, fuse_rrf, needs_more, sort_single

DENSE, SPARSE = "dense", "bm25"


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
    use_quantization: bool = True  # False: search the original vectors even where int8 copies exist
    fields: list[str] | None = None  # payload fields returned with each hit; None = the whole payload, [] = none


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


class VectorStore(ABC):
    """What the pipeline needs from Qdrant. Not re-entrant across threads: callers serialise.

    Backends implement the abstract methods; ``query`` (ordering, tie handling, fusion) is shared.
    Each operation in ``GUARDED`` is wrapped so that a backend failure becomes a ``StoreError``.
    """

    name: str
    GUARDED = ("upsert", "delete_paper", "delete_stale", "set_paper_payload", "payloads", "scroll", "has_field", "facet", "info", "count", "optimize",
               "flush", "close", "_search_many")

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for op in cls.GUARDED:
            if op in cls.__dict__:
                setattr(cls, op, _guarded(op.lstrip("_"), cls.__dict__[op]))

    @abstractmethod
    def upsert(self, points: list[PointData]) -> None: ...
    @abstractmethod
    def delete_paper(self, paper_id: str) -> None: ...
    @abstractmethod
    def delete_stale(self, paper_ids: list[str], keep_ids: list[str]) -> None:
        """Delete the points of these papers whose id is not in ``keep_ids`` (old chunks after an update)."""
    @abstractmethod
    def set_paper_payload(self, paper_id: str, fields: dict, unset: list[str] = ()) -> None:
        """Set ``fields`` on every point of a paper and remove the keys ``unset`` (vectors untouched)."""
    @abstractmethod
    def payloads(self, ids: list[str], fields: list[str] | None = None) -> dict[str, dict]:
        """Payloads of the points that exist, by id (``fields``: only these keys; None = all)."""
    @abstractmethod
    def scroll(self, filters: dict[str, Any], fields: list[str] | None = None, limit: int = 1000) -> list[tuple[str, dict]]:
        """(id, payload) of up to ``limit`` points matching ``filters`` (as in QuerySpec), in id order."""
    @abstractmethod
    def has_field(self, key: str) -> bool:
        """Whether any point's payload has the field ``key`` (``year``, ``author_keys``): can a filter on it match."""
    @abstractmethod
    def info(self) -> dict:
        """``{"points", "indexed_vectors", "segments"}``: how much of the collection the HNSW index covers."""
    @abstractmethod
    def facet(self, field: str, limit: int = 1000) -> list[tuple[str, int]]:
        """(value, points) of a keyword-indexed payload field (``dates``, ``sources``), most common first."""
    @abstractmethod
    def count(self, paper_id: str | None = None) -> int: ...
    @abstractmethod
    def optimize(self) -> None: ...
    @abstractmethod
    def flush(self) -> None: ...
    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _search_many(self, requests: list[tuple[QuerySpec, int]]) -> list[list[StoredHit]]:
        """Run single-vector searches (``spec.mode`` is "dense" or "sparse"), each for its limit,
        with the payload fields ``spec.fields``. The order within equal scores does not matter: ``query`` re-sorts."""

    def query(self, spec: QuerySpec) -> list[StoredHit]:
        """Best points first, in the total order of ``rag.search.store.ranking``."""
        if spec.mode == "hybrid":
            dense, sparse = self._ranked([(replace(spec, mode="dense"), spec.prefetch),
                                          (replace(spec, mode="sparse"), spec.prefetch)])
            return fuse_rrf(dense, sparse, spec.rrf_k, spec.weights, spec.limit)
        if spec.mode not in ("dense", "sparse"):
            raise InputError(f"unknown search mode '{spec.mode}': use hybrid, dense or sparse")
        return self._ranked([(spec, spec.limit)])[0]

    def _ranked(self, requests: list[tuple[QuerySpec, int]]) -> list[list[StoredHit]]:
        """Each request's first ``limit`` points in the total order, fetching more while a cut splits a tie."""
        fetch = [limit + TIE_SLACK for _, limit in requests]
        out: list = [None if self._has_vector(spec) else [] for spec, _ in requests]
        while todo := [i for i, hits in enumerate(out) if hits is None]:
            for i, hits in zip(todo, self._search_many([(requests[i][0], fetch[i]) for i in todo])):
                hits, limit = sort_single(hits), requests[i][1]
                if needs_more(hits, limit, fetch[i]):
                    fetch[i] *= 2
                else:
                    out[i] = hits[:limit]
        return out

    @staticmethod
    def _has_vector(spec: QuerySpec) -> bool:
        return (spec.dense if spec.mode == "dense" else spec.sparse) is not None


class LockedStore:
    """A store whose every call holds ``lock``: a long ingest shares the store with queries call by call.

    >>> import threading
    >>> s = LockedStore(open_store(StoreSettings(backend="server", url=":memory:"), Path("."), "lk", dim=2), threading.RLock())
    >>> s.count(), s.name.startswith("server:")
    (0, True)
    """

    def __init__(self, store: VectorStore, lock):
        self._store, self._lock = store, lock

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args, **kw):
            with self._lock:
                return attr(*args, **kw)

        return call


def store_error(name: str, op: str, e: BaseException) -> StoreError:
    """One line for a failed store operation: what failed, the engine's words, and what to do."""
    msg = " ".join(str(e).split()) or type(e).__name__
    low = msg.lower()
    if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "no space left" in low or "os error 28" in low:
        hint = "the disk is full: free some space (or use another --data-dir) and run it again; finished work is kept"
    elif any(w in low for w in ("connection refused", "connecterror", "connect error", "timed out", "name or service",
                                "server disconnected", "connection reset", "all connection attempts failed")):
        hint = "the Qdrant server did not answer: is it running and reachable? Run it again once it is"
    elif "wouldblock" in low:
        hint = "the index is open in another process (a running `rag serve`?); stop it or use another --data-dir"
    else:
        hint = "run it again; if it keeps failing, the index may be damaged: ingest into a fresh --data-dir"
    if len(msg) > 300:
        msg = msg[:297] + "..."
    return StoreError(f"{op} failed on {name}: {msg} ({hint})")


def _guarded(op: str, fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kw):
        try:
            return fn(self, *args, **kw)
        except RagError:
            raise
        except Exception as e:  # noqa: BLE001 - qdrant_edge raises plain Exception; qdrant-client many kinds
            raise store_error(getattr(self, "name", type(self).__name__), op, e) from None

    return wrapper


def open_store(settings: StoreSettings, data_dir: Path, collection: str, dim: int) -> VectorStore:
    """Open (creating if needed) the collection for vectors of size ``dim``."""
    if settings.backend == "edge":
        from rag.search.store.edge import EdgeStore

        return EdgeStore(Path(data_dir) / "qdrant" / collection, dim, settings)
    if not settings.url:
        raise StoreError("store.backend 'server' needs store.url (e.g. http://localhost:6333, or ':memory:' for tests)")
    from rag.search.store.server import ServerStore

    return ServerStore(settings.url, settings.api_key, collection, dim, settings)
