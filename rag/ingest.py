"""Idempotent ingest: papers -> chunks -> vectors -> Qdrant.

Point ids are uuid5 of (paper, chunk, content) and every point carries a hash of its paper's
stored content. For each batch of papers we look up the expected ids: a paper whose points all
exist with the current hash is unchanged (nothing embedded); otherwise its old points are
deleted and the new ones written. So re-ingesting adds nothing, a changed abstract replaces that
paper's chunks, and a run killed half-way is completed, without duplicates, by running it again.

Example:
    >>> from rag.testing import FakeEmbedder
    >>> from rag.store import open_store
    >>> from rag.config import Settings
    >>> from rag.corpus import Paper
    >>> s = Settings.load(None, **{"store.backend": "server", "store.url": ":memory:"})
    >>> store = open_store(s.store, s.data_dir, "doc", dim=FakeEmbedder.dim)
    >>> papers = [Paper("A", "Alpha beta."), Paper("B", "Gamma delta.")]
    >>> ingest_papers(papers, s, FakeEmbedder(), store, progress=False).added
    2
    >>> ingest_papers(papers, s, FakeEmbedder(), store, progress=False).unchanged
    2
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from rag.chunking import chunk_paper, paper_hash
from rag.config import Settings
from rag.corpus import Paper
from rag.store import PointData, VectorStore, sparse_doc

log = logging.getLogger(__name__)
PAPERS_PER_BATCH = 64


@dataclass
class IngestReport:
    papers: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks_written: int = 0
    points_total: int = 0
    parse_seconds: float = 0.0
    embed_seconds: float = 0.0
    seconds: float = 0.0
    collection: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.papers} papers: {self.added} added, {self.updated} updated, {self.unchanged} unchanged; "
            f"{self.chunks_written} chunks written, {self.points_total} in the index; {self.seconds:.1f} s"
        )


def ingest_papers(papers: list[Paper], settings: Settings, embedder, store: VectorStore, progress: bool = True) -> IngestReport:
    """Write papers into the store, skipping unchanged ones. See the module docstring."""
    t0 = time.perf_counter()
    report = IngestReport(papers=len(papers))
    bar = _progress(len(papers), progress)
    for start in range(0, len(papers), PAPERS_PER_BATCH):
        batch = papers[start : start + PAPERS_PER_BATCH]
        _ingest_batch(batch, settings, embedder, store, report)
        bar.update(len(batch))
    bar.close()
    if report.chunks_written:
        store.flush()
    report.points_total = store.count()
    if report.chunks_written and report.points_total >= settings.store.hnsw_threshold:
        t = time.perf_counter()
        store.optimize()
        log.info("built the HNSW index over %d points in %.1f s", report.points_total, time.perf_counter() - t)
    report.seconds = time.perf_counter() - t0
    return report


def _ingest_batch(batch: list[Paper], settings: Settings, embedder, store: VectorStore, report: IngestReport) -> None:
    planned = []  # (paper, chunks, hash)
    for paper in batch:
        h = paper_hash(paper, settings.chunking)
        planned.append((paper, chunk_paper(paper, settings.chunking), h))
    ids = [c.point_id for _, chunks, _ in planned for c in chunks]
    existing = store.payloads(ids, ["paper_hash"])
    todo = []
    for paper, chunks, h in planned:
        if all(existing.get(c.point_id, {}).get("paper_hash") == h for c in chunks):
            report.unchanged += 1
            continue
        if store.count(paper.paper_id):
            report.updated += 1
            store.delete_paper(paper.paper_id)
        else:
            report.added += 1
        todo.extend((c, h) for c in chunks)
    if not todo:
        return
    t = time.perf_counter()
    vectors = embedder.embed_documents([c.embed_text for c, _ in todo], progress=False)
    report.embed_seconds += time.perf_counter() - t
    points = [PointData(c.point_id, v, sparse_doc(c.embed_text), c.payload(h)) for (c, h), v in zip(todo, vectors)]
    step = settings.store.upsert_batch
    for i in range(0, len(points), step):
        store.upsert(points[i : i + step])
    report.chunks_written += len(points)


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="paper", desc="ingest", leave=False)
