"""Retrieval: embed the query, run hybrid (dense + BM25 fused with RRF), keep one hit per paper.

Results are in the total order of ``rag.search.store.ranking``; one hit per paper keeps each paper's
first chunk in that order, so the same query on the same index gives the same hits every time.

Example:
    >>> from rag.testing import FakeEmbedder
    >>> from rag.search.store import open_store
    >>> from rag.config import Settings
    >>> from rag.ingest.corpus import Paper
    >>> from rag.ingest import ingest_papers
    >>> s = Settings.load(None, **{"store.backend": "server", "store.url": ":memory:"})
    >>> store = open_store(s.store, s.data_dir, "doc", dim=FakeEmbedder.dim)
    >>> _ = ingest_papers([Paper("Cats", "Cats purr."), Paper("Dogs", "Dogs bark loudly.")], s, FakeEmbedder(), store, progress=False)
    >>> [h.title for h in Retriever(FakeEmbedder(), store, s.retrieval).search("why do dogs bark", k=1).hits]
    ['Dogs']
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from rag.config import RetrievalSettings
from rag.errors import InputError
from rag.text import names
from rag.search.store import QuerySpec, VectorStore, sparse_query

MAX_QUERY_CHARS = 10_000


@dataclass
class Hit:
    """One retrieved paper (its best-matching chunk)."""

    title: str
    score: float
    text: str
    paper_id: str
    chunk: int = 0
    pages: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Retrieval:
    """Hits plus what refusal and timing need."""

    query: str
    hits: list[Hit]
    best_dense: float | None  # cosine similarity of the closest chunk (refusal threshold); None in sparse mode
    embed_ms: float
    search_ms: float
    vector: list[float] | None = None  # the query's dense vector (None in sparse mode)


class Retriever:
    def __init__(self, embedder, store: VectorStore, settings: RetrievalSettings):
        """``store``: shared with other threads only as a ``LockedStore`` (``App.locked_store``)."""
        self.embedder = embedder
        self.store = store
        self.settings = settings

    def search(self, query: str, k: int | None = None, filters: dict | None = None, mode: str | None = None,
               one_per_paper: bool | None = None, vector: list[float] | None = None) -> Retrieval:
        """``vector``: the dense query vector to search with instead of the query's embedding (``feedback``)."""
        query = check_query(query)
        s = self.settings
        k = s.k if k is None else k
        mode = mode or s.mode
        if mode == "hybrid" and s.fusion == "auto" and not names(query):
            mode = "dense"  # a paraphrase names nothing: BM25 would only add papers that share common words
        if mode not in ("hybrid", "dense", "sparse"):
            raise InputError(f"unknown search mode '{mode}': use hybrid, dense or sparse")
        per_paper = s.one_per_paper if one_per_paper is None else one_per_paper
        if not 1 <= k <= 1000:
            raise InputError(f"k must be between 1 and 1000, got {k}")
        t0 = time.perf_counter()
        dense = None if mode == "sparse" else vector if vector is not None else self.embedder.embed_query(query)
        t1 = time.perf_counter()
        sparse = sparse_query(query)
        limit = k * 4 if per_paper else k  # several chunks of one paper may rank together
        prefetch = max(s.prefetch, limit)
        if mode == "hybrid":  # every fused candidate: one per paper needs them, refusal needs the best dense score
            limit = 2 * prefetch
        spec = QuerySpec(dense=dense, sparse=sparse, mode=mode, limit=limit, prefetch=prefetch,
                         rrf_k=s.rrf_k, weights=(s.dense_weight, s.sparse_weight), filters=filters or {},
                         fields=[])  # payloads are read only for the hits kept (reading them costs more than the search)
        stored = self.store.query(spec)
        kept = self._keep(stored, k, per_paper)
        payloads = self.store.payloads([h.id for h in kept])
        t2 = time.perf_counter()
        hits = [_hit(payloads[h.id], h.score) for h in kept if h.id in payloads]
        # cosine similarity of the closest chunk, for the refusal threshold
        if mode == "sparse":
            best = None
        elif mode == "dense":
            best = stored[0].score if stored else 0.0
        else:
            best = max((h.dense for h in stored if h.dense is not None), default=0.0)
        return Retrieval(query, hits, best, (t1 - t0) * 1000, (t2 - t1) * 1000, dense)


    def feedback(self, first: Retrieval, docs: int, weight: float, k: int | None = None,
                 filters: dict | None = None) -> Retrieval:
        """A second round: the query vector moved toward the first round's top ``docs`` hits (``rocchio``), searched
        again (BM25 still reads the question's words). No LLM: one batch of ``docs`` chunks embedded."""
        if first.vector is None or not first.hits:
            return first
        t0 = time.perf_counter()
        vectors = self.embedder.embed_documents([f"{h.title}. {h.text}" for h in first.hits[:docs]], progress=False)
        moved = rocchio(first.vector, vectors, weight)
        embed_ms = (time.perf_counter() - t0) * 1000
        second = self.search(first.query, k=k or len(first.hits), filters=filters, vector=moved)
        second.embed_ms += embed_ms + first.embed_ms
        second.search_ms += first.search_ms
        second.best_dense = first.best_dense  # closeness of the question itself, for the refusal rule
        second.vector = first.vector
        return second

    def _keep(self, stored: list, k: int, per_paper: bool) -> list:
        """The first k hits in rank order; with ``per_paper`` only each paper's first, reading paper ids in batches."""
        if not per_paper:
            return stored[:k]
        kept, seen, batch = [], set(), 4 * k
        for start in range(0, len(stored), batch):
            part = stored[start : start + batch]
            ids = self.store.payloads([h.id for h in part], ["paper_id"])
            for h in part:
                pid = ids.get(h.id, {}).get("paper_id")
                if pid is None or pid in seen:
                    continue
                seen.add(pid)
                kept.append(h)
                if len(kept) == k:
                    return kept
        return kept


def rocchio(query: list[float], docs: list[list[float]], weight: float) -> list[float]:
    """Pseudo-relevance feedback (Rocchio): ``query + weight x mean(docs)``, normalised to unit length.

    >>> rocchio([1.0, 0.0], [[0.0, 1.0], [0.0, 1.0]], 1.0)
    [0.7071067811865475, 0.7071067811865475]
    >>> rocchio([1.0, 0.0], [], 1.0)
    [1.0, 0.0]
    """
    if not docs:
        return list(query)
    mean = [sum(col) / len(docs) for col in zip(*docs)]
    moved = [q + weight * m for q, m in zip(query, mean)]
    norm = sum(x * x for x in moved) ** 0.5 or 1.0
    return [x / norm for x in moved]


def _hit(p: dict, score: float) -> Hit:
    meta = {key: v for key, v in p.items() if key not in ("title", "text", "paper_id", "chunk", "pages", "payload_hash")}
    return Hit(p["title"], score, p["text"], p["paper_id"], p.get("chunk", 0), p.get("pages", []), meta)


def check_query(query: str) -> str:
    """Reject empty or huge queries with a clear message; strip control characters."""
    if not isinstance(query, str):
        raise InputError("the question must be text")
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in query).strip()
    if not cleaned:
        raise InputError("the question is empty: type a question about the indexed papers")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise InputError(f"the question is {len(cleaned):,} characters; keep it under {MAX_QUERY_CHARS:,}")
    return cleaned
