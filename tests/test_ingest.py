"""Idempotent ingest: re-ingest adds nothing, changes replace chunks, a killed run resumes cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rag
from rag.chunking import chunk_paper, chunk_papers
from rag.config import REPO_ROOT, SAMPLE_CORPUS, Settings
from rag.corpus import Paper, load_papers
from rag.ingest import PAPERS_PER_BATCH, ingest_papers
from rag.store import open_store
from rag.testing import FakeEmbedder

pytestmark = pytest.mark.filterwarnings("ignore:Local mode:UserWarning")


@pytest.fixture(scope="module")
def sample() -> list[Paper]:
    return load_papers([SAMPLE_CORPUS])


def _settings(tmp_path, backend="server", **kw) -> Settings:
    return Settings.load(None, data_dir=str(tmp_path), **{"store.backend": backend, "store.url": ":memory:", **kw})


def _copy(papers):
    return [Paper(p.title, p.abstract, list(p.pages), dict(p.metadata)) for p in papers]


class CountingEmbedder(FakeEmbedder):
    def __init__(self):
        self.texts = 0

    def embed_documents(self, texts, progress=None):
        self.texts += len(texts)
        return super().embed_documents(texts, progress)


@pytest.mark.parametrize("backend", ["server", "edge"])
def test_reingest_is_idempotent(tmp_path, sample, backend):
    papers = sample[:80]  # more than one ingest batch
    assert len(papers) > PAPERS_PER_BATCH
    s = _settings(tmp_path, backend)
    store = open_store(s.store, s.data_dir, "idem", FakeEmbedder.dim)
    try:
        first = ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        n_chunks = len(chunk_papers(papers, s.chunking))
        assert (first.papers, first.added, first.updated, first.unchanged) == (80, 80, 0, 0)
        assert first.chunks_written == first.points_total == store.count() == n_chunks
        emb = CountingEmbedder()
        second = ingest_papers(_copy(papers), s, emb, store, progress=False)
        assert (second.papers, second.added, second.updated, second.unchanged) == (80, 0, 0, 80)
        assert second.chunks_written == 0
        assert emb.texts == 0  # nothing re-embedded
        assert second.points_total == store.count() == n_chunks
    finally:
        store.close()


def test_reingest_whole_sample_via_app(tmp_path):
    """A clean ingest of the sample gives 651 points; the crash test below must reach the same."""
    with rag.load(None, data_dir=str(tmp_path), embedder=FakeEmbedder()) as app:
        r1 = app.ingest([SAMPLE_CORPUS], progress=False)
        assert (r1.papers, r1.added, r1.points_total) == (342, 342, 651)
        assert r1.collection == app.collection
        r2 = app.ingest([SAMPLE_CORPUS], progress=False)
        assert (r2.added, r2.updated, r2.unchanged, r2.chunks_written, r2.points_total) == (0, 0, 342, 0, 651)
        assert app.count() == 651
        assert "342 unchanged" in r2.summary()


def test_changed_abstract_replaces_that_papers_chunks(tmp_path, sample):
    s = _settings(tmp_path)
    papers = _copy(sample[:20])
    target = max(papers, key=lambda p: len(p.abstract))
    store = open_store(s.store, s.data_dir, "upd", FakeEmbedder.dim)
    try:
        ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        old_ids = [c.point_id for c in chunk_paper(target, s.chunking)]
        assert len(old_ids) == 2 and store.count(target.paper_id) == 2
        total = store.count()

        target.abstract = "Zebras are striped. Nothing else is known about zebras."
        new_chunks = chunk_paper(target, s.chunking)
        report = ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        assert (report.added, report.updated, report.unchanged) == (0, 1, 19)
        assert report.chunks_written == len(new_chunks) == 1
        assert store.count(target.paper_id) == 1
        assert store.count() == total - 1
        assert store.payloads(old_ids, ["text"]) == {}  # old chunks gone
        got = store.payloads([c.point_id for c in new_chunks], ["text", "title"])
        assert got == {new_chunks[0].point_id: {"text": target.abstract, "title": target.title}}

        # and back: the long abstract returns, with both chunks
        target.abstract = next(p.abstract for p in sample if p.paper_id == target.paper_id)
        report = ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        assert (report.updated, report.unchanged) == (1, 19)
        assert store.count(target.paper_id) == 2 and store.count() == total
    finally:
        store.close()


def test_new_page_for_known_paper_updates_pages(tmp_path, sample):
    s = _settings(tmp_path)
    papers = _copy(sample[:5])
    store = open_store(s.store, s.data_dir, "pages", FakeEmbedder.dim)
    try:
        ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        papers[0].pages.append("999_new.txt (Mar 20)")
        report = ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        assert (report.updated, report.unchanged) == (1, 4)
        ids = [c.point_id for c in chunk_paper(papers[0], s.chunking)]
        got = store.payloads(ids, ["pages", "dates"])
        assert all("999_new.txt (Mar 20)" in v["pages"] and "Mar 20" in v["dates"] for v in got.values())
        assert len(got) == len(ids) == store.count(papers[0].paper_id)
    finally:
        store.close()


def test_partially_written_paper_is_completed(tmp_path, sample):
    """A paper whose chunks were only partly written (crash between upserts) is rewritten whole."""
    s = _settings(tmp_path)
    papers = _copy(sample[:10])
    store = open_store(s.store, s.data_dir, "partial", FakeEmbedder.dim)
    try:
        ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        target = next(p for p in papers if len(chunk_paper(p, s.chunking)) == 2)
        first_id = chunk_paper(target, s.chunking)[0].point_id
        store.delete_paper(target.paper_id)
        # put back only its first chunk, as a crashed run might have left it
        from rag.store import PointData, sparse_doc

        c0 = chunk_paper(target, s.chunking)[0]
        store.upsert([PointData(first_id, FakeEmbedder().embed_query(c0.embed_text), sparse_doc(c0.embed_text), c0.payload())])
        report = ingest_papers(papers, s, FakeEmbedder(), store, progress=False)
        assert (report.updated, report.unchanged) == (1, 9)
        assert store.count(target.paper_id) == 2
        assert store.count() == len(chunk_papers(papers, s.chunking))
    finally:
        store.close()


# -- crash and resume -------------------------------------------------------------------

CHILD = r"""
import sys, time
from pathlib import Path
from rag.config import Settings
from rag.corpus import load_papers
from rag.ingest import ingest_papers
from rag.store import open_store
from rag.testing import FakeEmbedder

class SlowEmbedder(FakeEmbedder):
    def embed_documents(self, texts, progress=None):
        time.sleep(0.05)
        return super().embed_documents(texts, progress)

s = Settings.load(None, data_dir=sys.argv[1], **{"store.backend": "edge", "store.upsert_batch": 8})
store = open_store(s.store, s.data_dir, "crash", FakeEmbedder.dim)
_upsert = store.upsert
def upsert(points):
    _upsert(points)
    print("batch", len(points), flush=True)
    time.sleep(0.02)
store.upsert = upsert
papers = load_papers([sys.argv[2]])
print("ready", len(papers), flush=True)
ingest_papers(papers, s, SlowEmbedder(), store, progress=False)
print("done", flush=True)
"""


def test_killed_ingest_resumes_without_duplicates(tmp_path, sample):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    data_dir = tmp_path / "data"
    venv_py = REPO_ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([str(venv_py if venv_py.exists() else sys.executable), str(script), str(data_dir), str(SAMPLE_CORPUS)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env)
    watchdog = threading.Timer(300, child.kill)
    watchdog.start()
    batches, written, lines = 0, 0, []
    try:
        # 20 upserts of 8 points: past the first 64-paper batch (~120 chunks), inside the second
        while batches < 20:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("batch"):
                batches += 1
                written += int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert batches == 20, "child ended early:\n" + "".join(lines) + child.stderr.read()[-3000:]
    assert child.returncode == -signal.SIGKILL
    assert not any(ln.startswith("done") for ln in lines)

    s = Settings.load(None, data_dir=str(data_dir), **{"store.backend": "edge"})
    expected_ids = [c.point_id for c in chunk_papers(sample, s.chunking)]
    assert len(expected_ids) == len(set(expected_ids)) == 651
    store = open_store(s.store, s.data_dir, "crash", FakeEmbedder.dim)  # the lock died with the child
    try:
        partial = store.count()
        assert written <= partial < 651, (written, partial)  # every acknowledged upsert survived SIGKILL
        report = ingest_papers(load_papers([SAMPLE_CORPUS]), s, FakeEmbedder(), store, progress=False)
        assert report.added + report.updated + report.unchanged == 342
        assert report.unchanged >= PAPERS_PER_BATCH  # the first batch was complete and is not redone
        assert report.added >= 1
        assert store.count() == report.points_total == 651
        present = store.payloads(expected_ids, ["paper_id"])
        assert len(present) == 651  # every expected id, hence no strays or duplicates
        again = ingest_papers(load_papers([SAMPLE_CORPUS]), s, FakeEmbedder(), store, progress=False)
        assert (again.added, again.updated, again.unchanged, again.points_total) == (0, 0, 342, 651)
    finally:
        store.close()


# -- collection naming ------------------------------------------------------------------


def test_index_fingerprint_tracks_model_and_chunking():
    base = Settings.load(None)
    fp = base.index_fingerprint()
    assert fp == Settings.load(None).index_fingerprint()
    assert len(fp) == 10
    for override in ({"chunking.chunk_size": 128}, {"chunking.chunk_overlap": 0},
                     {"embedding.model": "BAAI/bge-base-en-v1.5"}):
        assert Settings.load(None, **override).index_fingerprint() != fp, override
    # settings that do not change the stored vectors keep the collection
    for override in ({"retrieval.k": 9}, {"embedding.batch_size": 8}, {"embedding.query_prefix": "q: "},
                     {"store.backend": "server"}, {"generation.max_new_tokens": 50}, {"data_dir": "/elsewhere"}):
        assert Settings.load(None, **override).index_fingerprint() == fp, override


def test_app_collection_name_changes_with_chunk_settings(tmp_path):
    a = rag.load(None, data_dir=str(tmp_path))
    b = rag.load(None, data_dir=str(tmp_path), **{"chunking.chunk_size": 128})
    c = rag.load(None, data_dir=str(tmp_path), **{"embedding.model": "some/other-model"})
    assert a.collection.startswith("papers_") and a.collection.endswith(a.settings.index_fingerprint())
    assert len({a.collection, b.collection, c.collection}) == 3
    d = rag.load(None, data_dir=str(tmp_path), **{"store.collection": "mine"})
    assert d.collection == f"mine_{a.settings.index_fingerprint()}"


def test_different_chunk_settings_live_side_by_side(tmp_path):
    """Two chunkings of one corpus go to two edge collections under one data dir."""
    corpus = [Paper("A Paper", "First sentence here. " * 30), Paper("B Paper", "Other words entirely. " * 30)]
    counts = {}
    for size in (256, 64):
        with rag.load(None, data_dir=str(tmp_path), embedder=FakeEmbedder(), **{"chunking.chunk_size": size}) as app:
            ingest_papers(corpus, app.settings, app.embedder, app.store, progress=False)
            counts[size] = (app.collection, app.count())
    assert counts[256][0] != counts[64][0]
    assert counts[64][1] > counts[256][1]
    assert sorted(p.name for p in (tmp_path / "qdrant").iterdir() if p.is_dir()) == sorted([counts[256][0], counts[64][0]])
    with rag.load(None, data_dir=str(tmp_path), embedder=FakeEmbedder()) as app:  # reopening finds it intact
        assert app.count() == counts[256][1]
