"""Idempotent ingest: re-ingest adds nothing, changes replace chunks, a killed run resumes cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rag
from rag.ingest.chunking import chunk_paper, chunk_papers
from rag.config import REPO_ROOT, SAMPLE_CORPUS, Settings
from rag.ingest.corpus import Paper, load_papers
from rag.ingest.run import PAPERS_PER_BATCH, ingest_papers
from rag.search.store import open_store
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
        from rag.search.store import PointData, sparse_doc

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
from rag.ingest.corpus import load_papers
from rag.ingest import ingest_papers
from rag.search.store import open_store
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


def _kill_after_upserts(tmp_path, code: str, args: list[str], upserts: int) -> int:
    """Run ``code`` in a child (it prints 'batch N' after each upsert), SIGKILL it after ``upserts``
    upserts; returns how many points those upserts acknowledged."""
    script = tmp_path / "child.py"
    script.write_text(code)
    venv_py = REPO_ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([str(venv_py if venv_py.exists() else sys.executable), str(script), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env)
    watchdog = threading.Timer(300, child.kill)
    watchdog.start()
    batches, written, lines = 0, 0, []
    try:
        while batches < upserts:
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
    assert batches == upserts, "child ended early:\n" + "".join(lines) + child.stderr.read()[-3000:]
    assert child.returncode == -signal.SIGKILL
    assert not any(ln.startswith("done") for ln in lines)
    return written


def test_killed_ingest_resumes_without_duplicates(tmp_path, sample):
    data_dir = tmp_path / "data"
    # 20 upserts of 8 points: past the first 64-paper batch (~120 chunks), inside the second
    written = _kill_after_upserts(tmp_path, CHILD, [str(data_dir), str(SAMPLE_CORPUS)], 20)

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
                     {"embedding.model": "BAAI/bge-base-en-v1.5"}, {"embedding.precision": "int8"}, {"embedding.precision": "float16"}):
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


# -- streaming ingest through the on-disk state (rag ingest) ------------------------------


class FailingEmbedder(FakeEmbedder):
    """Raises when asked to embed: proves that nothing was embedded (or simulates a CUDA OOM)."""

    def embed_documents(self, texts, progress=None):
        raise RuntimeError("CUDA out of memory (simulated)")


def _rows(n: int, start: int = 0, version: str = "2024-01-01", **over) -> list[dict]:
    return [{"id": f"2401.{i:05d}", "title": f"Paper number {i}", "abstract": f"Abstract of paper {i} about topic {i % 7}. " * 3,
             "authors": "A. Author", "categories": "cs.LG", "update_date": version, **over} for i in range(start, start + n)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _app(tmp_path, embedder=None, **kw):
    return rag.load(None, data_dir=str(tmp_path / "data"), embedder=embedder or FakeEmbedder(), **kw)


def test_rerun_skips_unchanged_files_unread_and_embeds_nothing(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", _rows(30))
    with _app(tmp_path) as app:
        r1 = app.ingest([f, SAMPLE_CORPUS], progress=False)
        assert (r1.papers, r1.added, r1.files_read, r1.records) == (372, 372, 6, 479)
    with _app(tmp_path, FailingEmbedder()) as app:
        r2 = app.ingest([f, SAMPLE_CORPUS], progress=False)
        assert (r2.papers, r2.unchanged, r2.added, r2.updated, r2.records) == (372, 372, 0, 0, 0)
        assert (r2.files_read, r2.files_unchanged) == (0, 6)
        assert r2.points_total == app.count() == r1.points_total
        os.utime(f, (time.time() + 100, time.time() + 100))  # touched, same content: still not re-read
        r3 = app.ingest([f], progress=False)
        assert (r3.files_read, r3.files_unchanged, r3.unchanged) == (0, 1, 30)


def test_changed_file_reembeds_only_changed_papers_and_payload_changes_embed_nothing(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", _rows(20))
    with _app(tmp_path) as app:
        app.ingest([f], progress=False)
        total = app.count()
    rows = _rows(20)
    rows[3]["update_date"] = "2024-02-02"  # a payload-only change (the date)
    rows[4]["authors"] = "B. Other"  # metadata only
    with _app(tmp_path, FailingEmbedder()) as app:
        r = app.ingest([_write_jsonl(f, rows)], progress=False)
        assert (r.added, r.updated, r.payload_only, r.unchanged, r.chunks_written) == (0, 2, 2, 18, 0)
        hit = app.search("Abstract of paper 3 about topic 3", k=1, filters={"date": "2024-02-02"})[0]
        assert hit.title == "Paper number 3" and hit.pages == ["a.jsonl (2024-02-02)"]
        assert app.search("paper 4", k=1, filters={"paper_id": hit.paper_id})[0].metadata["authors"] == "A. Author"
        pid4 = rag.ingest.corpus.paper_id_of("arxiv:2401.00004")
        assert app.search("paper 4", k=1, filters={"paper_id": pid4})[0].metadata["authors"] == "B. Other"
    rows[5]["abstract"] = "A completely new abstract about zebras."
    emb = CountingEmbedder()
    with _app(tmp_path, emb) as app:
        r = app.ingest([_write_jsonl(f, rows)], progress=False)
        assert (r.added, r.updated, r.payload_only, r.unchanged) == (0, 1, 0, 19)
        assert emb.texts == r.chunks_written == 1
        assert app.count() == total  # the old chunk was replaced, not kept beside the new one
        assert app.search("zebras", k=1)[0].title == "Paper number 5"


def test_new_snapshot_with_shifted_lines_reembeds_nothing_old(tmp_path):
    f = _write_jsonl(tmp_path / "snap.json", _rows(25))
    with _app(tmp_path) as app:
        app.ingest([f], progress=False)
    emb = CountingEmbedder()
    with _app(tmp_path, emb) as app:
        r = app.ingest([_write_jsonl(f, _rows(3, start=100) + _rows(25))], progress=False)  # 3 new papers first
        assert (r.added, r.updated, r.unchanged, r.files_read) == (3, 0, 25, 1)
        assert emb.texts == r.chunks_written == 3


def test_arxiv_new_version_updates_the_same_paper(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", _rows(5))
    with _app(tmp_path) as app:
        app.ingest([f], progress=False)
        n = app.count()
        v2 = _rows(1, start=2, version="2024-06-01", title="Paper number 2 (revised)", abstract="Revised abstract with new results.")
        r = app.ingest([_write_jsonl(tmp_path / "b.jsonl", v2)], progress=False)
        assert (r.added, r.updated) == (0, 1)
        assert app.count() == n
        (hit,) = app.search("revised abstract new results", k=1)
        assert (hit.title, hit.metadata["id"]) == ("Paper number 2 (revised)", "2401.00002")
        assert hit.pages == ["a.jsonl (2024-01-01)", "b.jsonl (2024-06-01)"]


def test_dry_run_counts_without_embedding_or_writing(tmp_path):
    good = _write_jsonl(tmp_path / "a.jsonl", _rows(10))
    with _app(tmp_path, FailingEmbedder()) as app:
        d = app.ingest([good, SAMPLE_CORPUS], progress=False, dry_run=True)
        assert (d.dry_run, d.papers, d.added, d.updated, d.unchanged) == (True, 352, 352, 0, 0)
        assert "dry run" in d.summary() and "would be added" in d.summary()
    assert not (tmp_path / "data").exists()  # a dry run on a fresh data dir leaves nothing behind
    with _app(tmp_path) as app:
        app.ingest([good], progress=False)
        count = app.count()
    rows = _rows(10)
    rows[0]["abstract"] = "Changed."
    rows[1]["update_date"] = "2025-01-01"
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    with _app(tmp_path, FailingEmbedder()) as app:
        d = app.ingest([good, SAMPLE_CORPUS], progress=False, dry_run=True)
        assert (d.papers, d.added, d.updated, d.payload_only, d.unchanged) == (352, 342, 2, 1, 8)
        assert d.skipped == {"invalid_json": 1}
        assert app.count() == count
    with _app(tmp_path) as app:  # the dry run left the state as it was: the real run sees the same changes
        r = app.ingest([good, SAMPLE_CORPUS], progress=False)
        assert (r.papers, r.added, r.updated, r.payload_only, r.unchanged) == (352, 342, 2, 1, 8)


def test_failure_while_embedding_an_update_keeps_the_old_version(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", _rows(10))
    with _app(tmp_path) as app:
        app.ingest([f], progress=False)
        before = app.count()
    rows = _rows(10)
    rows[7]["abstract"] = "Brand new text about quokkas."
    _write_jsonl(f, rows)
    with _app(tmp_path, FailingEmbedder()) as app:
        with pytest.raises(RuntimeError, match="out of memory"):
            app.ingest([f], progress=False)
        assert app.count() == before  # nothing deleted before the new chunks were written
        assert app.search("Abstract of paper 7 about topic 0", k=1)[0].title == "Paper number 7"
    with _app(tmp_path) as app:
        r = app.ingest([f], progress=False)
        assert (r.updated, r.files_read, r.files_unchanged) == (1, 0, 1)  # the pending update, file not re-read
        assert app.search("quokkas", k=1)[0].title == "Paper number 7" and app.count() == before


def test_interrupted_read_resumes_at_the_last_committed_line(tmp_path, monkeypatch):
    import rag.ingest.run as ingest_mod
    from rag.ingest.state import IngestState

    f = _write_jsonl(tmp_path / "big.jsonl", _rows(50))
    monkeypatch.setattr(ingest_mod, "RECORDS_PER_COMMIT", 10)
    real_add, calls = IngestState.add_entries, []

    def add_then_die(self, file_id, entries):
        real_add(self, file_id, entries)
        calls.append(len(entries))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed after 3 commits of 10 records

    monkeypatch.setattr(IngestState, "add_entries", add_then_die)
    with _app(tmp_path) as app:
        with pytest.raises(KeyboardInterrupt):
            app.ingest([f], progress=False)
        assert app.count() == 0  # nothing written before the file was read
    monkeypatch.setattr(IngestState, "add_entries", real_add)
    with _app(tmp_path) as app:
        r = app.ingest([f], progress=False)
        assert (r.files_resumed, r.records, r.added, r.papers) == (1, 50 - 29, 50, 50)  # from line 30 (re-read once)
        assert app.count() == len(chunk_papers(load_papers([f]), app.settings.chunking))


def test_optimize_interrupted_is_run_by_the_next_ingest(tmp_path, monkeypatch):
    from rag.search.store.edge import EdgeStore

    f = _write_jsonl(tmp_path / "a.jsonl", _rows(5))
    real = EdgeStore.optimize

    def killed(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(EdgeStore, "optimize", killed)
    with _app(tmp_path, **{"store.hnsw_threshold": 1}) as app:
        with pytest.raises(KeyboardInterrupt):
            app.ingest([f], progress=False)
    calls = []
    monkeypatch.setattr(EdgeStore, "optimize", lambda self: calls.append(1) or real(self))
    with _app(tmp_path, FailingEmbedder(), **{"store.hnsw_threshold": 1}) as app:
        r = app.ingest([f], progress=False)
        assert (r.optimized, r.unchanged, len(calls)) == (True, 5, 1)
        r = app.ingest([f], progress=False)  # built: not again
        assert (r.optimized, len(calls)) == (False, 1)


def test_emptied_index_is_written_again(tmp_path):
    import shutil

    f = _write_jsonl(tmp_path / "a.jsonl", _rows(8))
    with _app(tmp_path) as app:
        app.ingest([f], progress=False)
        n, coll = app.count(), app.collection
    shutil.rmtree(tmp_path / "data" / "qdrant" / coll)  # the shard, not the state beside it
    (tmp_path / "data" / "qdrant" / f"{coll}.json").unlink()
    with _app(tmp_path) as app:
        r = app.ingest([f], progress=False)
        assert (r.added, app.count()) == (8, n)


def test_second_concurrent_ingest_gets_a_clear_error(tmp_path):
    from filelock import FileLock
    from rag.errors import StoreError

    with _app(tmp_path) as app:
        path = app.ingest_state_path()
        path.parent.mkdir(parents=True)
        with FileLock(f"{path}.lock"):
            with pytest.raises(StoreError, match="another `rag ingest` is running"):
                app.ingest([SAMPLE_CORPUS], progress=False)


CHILD_STREAM = r"""
import sys, time
import rag
from rag.search.store.edge import EdgeStore
from rag.testing import FakeEmbedder

class SlowEmbedder(FakeEmbedder):
    def embed_documents(self, texts, progress=None):
        time.sleep(0.05)
        return super().embed_documents(texts, progress)

_upsert = EdgeStore.upsert
def upsert(self, points):
    _upsert(self, points)
    print("batch", len(points), flush=True)
    time.sleep(0.02)
EdgeStore.upsert = upsert
with rag.load(None, data_dir=sys.argv[1], embedder=SlowEmbedder(), **{"store.upsert_batch": 8}) as app:
    print("ready", flush=True)
    app.ingest(sys.argv[2:], progress=False)
print("done", flush=True)
"""


def test_kill_9_during_streaming_ingest_then_rerun_is_complete(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", _rows(120))
    data_dir = tmp_path / "data"
    written = _kill_after_upserts(tmp_path, CHILD_STREAM, [str(data_dir), str(f), str(SAMPLE_CORPUS)], 25)
    papers = load_papers([f, SAMPLE_CORPUS])
    with rag.load(None, data_dir=str(data_dir), embedder=FakeEmbedder()) as app:
        expected = [c.point_id for c in chunk_papers(papers, app.settings.chunking)]
        assert written <= app.count() < len(expected)  # every acknowledged upsert survived SIGKILL
        r = app.ingest([f, SAMPLE_CORPUS], progress=False)
        assert r.papers == len(papers) == 462 and r.files_read == 0  # both read before the kill: not re-read
        assert r.added >= 1 and r.added + r.updated + r.unchanged == 462
        assert app.count() == r.points_total == len(expected)
        assert len(app.store.payloads(expected, ["paper_id"])) == len(expected)  # every expected id: no strays
        again = app.ingest([f, SAMPLE_CORPUS], progress=False)
        assert (again.added, again.updated, again.unchanged, again.points_total) == (0, 0, 462, len(expected))


def test_large_preset_keeps_the_cpu_collection_and_sets_big_corpus_store_settings():
    large, cpu = Settings.load("large"), Settings.load("cpu")
    assert large.index_fingerprint() == cpu.index_fingerprint()
    assert (large.store.quantization, large.store.vectors_on_disk, large.store.payload_on_disk) == ("int8", True, True)


def test_unusable_ingest_state_is_a_one_line_store_error(tmp_path):
    from rag.errors import StoreError

    with _app(tmp_path) as app:
        app.ingest_state_path().mkdir(parents=True)  # a folder where the SQLite file should be
        with pytest.raises(StoreError, match=r"^open failed on ingest state .*unable to open database file") as ei:
            app.ingest([SAMPLE_CORPUS], progress=False)
        assert "\n" not in str(ei.value)


def test_progress_line_shows_rate_and_eta():
    from rag.ingest.run import Progress

    p = Progress(1000, False, "embed+write")
    p.n, p._t0 = 250, p._t0 - 50.0  # 250 papers in 50 s
    line = p.line(p._t0 + 50.0)
    assert line == "embed+write: 250/1,000 papers, 5.0 papers/s, ETA 2m30s"


def test_index_from_an_earlier_version_is_adopted_without_embedding(tmp_path):
    """Points written before payload_hash existed (same ids, a 'paper_hash' field) get their payload
    refreshed; nothing is embedded again."""
    from rag.ingest.chunking import chunk_paper, paper_payload
    from rag.search.store import PointData, sparse_doc

    papers = load_papers([SAMPLE_CORPUS])[:10]
    with _app(tmp_path) as app:
        old = []
        for p in papers:
            fields = {k: v for k, v in paper_payload(p).items() if k != "payload_hash"} | {"paper_hash": "0123456789abcdef"}
            old += [PointData(c.point_id, FakeEmbedder().embed_query(c.embed_text), sparse_doc(c.embed_text), c.payload(fields))
                    for c in chunk_paper(p, app.settings.chunking)]
        app.store.upsert(old)
    f = tmp_path / "ten.jsonl"
    f.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    with _app(tmp_path, FailingEmbedder()) as app:
        r = app.ingest([f], progress=False)
        assert (r.added, r.updated, r.payload_only, r.chunks_written) == (0, 10, 10, 0)
        got = app.store.payloads([pt.id for pt in old])
        assert len(got) == len(old) and all("paper_hash" not in v and v["pages"] == ["ten.jsonl"] for v in got.values())
