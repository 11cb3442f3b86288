"""Ingest: corpus files -> papers -> chunks -> vectors -> Qdrant, streaming, resumable, idempotent.

Two entry points share one writer (``write_papers``):

* ``ingest_files`` (``rag ingest``, ``App.ingest``): streams the files through the on-disk state
  of ``rag.ingest.state`` in three steps, each resumable after a kill:
  1. read: new or changed files are parsed record by record into the state (unchanged files are
     skipped unread; a partly read file resumes at its last committed line). Bad records are
     skipped and counted by reason (``strict``: the first one raises ``CorpusError``).
  2. resolve: each paper whose entries changed is compared with what the index holds: new, updated
     (title/abstract changed: re-embed), payload only (pages, dates, metadata: no embedding) or
     unchanged. A dry run stops here and rolls the state back.
  3. write: pending papers, 64 at a time, are read again from their files, embedded and written.
  Memory stays flat whatever the corpus size: nothing is held per paper beyond one batch.
* ``ingest_papers``: papers already in memory (tests, benchmarks).

The writer never removes before it has written: a changed paper's new chunks are upserted first,
then the paper's points that are not among them are deleted, so a crash (or a CUDA OOM while
embedding) leaves the old version searchable, never a missing paper. Point ids are uuid5 of
(paper, chunk, content): a paper whose ids all exist is not embedded again, only its payload is
refreshed when its pages/dates changed. The HNSW index is built (``optimize``) at the end of a run
that wrote something; a run killed during that build leaves a mark, and the next run builds it.

Example:
    >>> from rag.testing import FakeEmbedder
    >>> from rag.search.store import open_store
    >>> from rag.config import Settings
    >>> from rag.ingest.corpus import Paper
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
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from rag.ingest.chunking import chunk_paper, paper_payload
from rag.config import Settings
from rag.ingest.metadata import METADATA_FIELDS
from rag.ingest.corpus import Entry, Paper, Skip, content_hash, input_files, read_entry_at, read_file
from rag.errors import CorpusError
from rag.search.store import PointData, VectorStore, sparse_doc

log = logging.getLogger(__name__)
PAPERS_PER_BATCH = 64
RECORDS_PER_COMMIT = 5000
SKIP_EXAMPLES = 5
LEGACY_FIELDS = ("paper_hash",)  # written by earlier versions; removed when such a point's payload is refreshed


@dataclass
class IngestReport:
    papers: int = 0  # distinct papers in this run's input files
    added: int = 0
    updated: int = 0  # title/abstract or pages/dates/metadata changed
    payload_only: int = 0  # of the updated: nothing re-embedded, only the payload rewritten
    unchanged: int = 0
    chunks_written: int = 0
    points_total: int = 0
    records: int = 0  # records read from files (entries; duplicates of one paper count each)
    skipped: dict = field(default_factory=dict)  # reason -> count
    skipped_examples: list = field(default_factory=list)  # the first few 'file:line: why'
    files_read: int = 0
    files_unchanged: int = 0
    files_resumed: int = 0
    optimized: bool = False
    dry_run: bool = False
    parse_seconds: float = 0.0
    embed_seconds: float = 0.0
    seconds: float = 0.0
    collection: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def skip(self, s: Skip) -> None:
        self.skipped[s.reason] = self.skipped.get(s.reason, 0) + 1
        if len(self.skipped_examples) < SKIP_EXAMPLES:
            self.skipped_examples.append(s.message)

    def summary(self) -> str:
        head = "dry run, nothing embedded or written: " if self.dry_run else ""
        verb = "would be " if self.dry_run else ""
        text = (
            f"{head}{self.papers} papers: {self.added} {verb}added, {self.updated} {verb}updated "
            f"({self.payload_only} pages/dates only), {self.unchanged} unchanged"
        )
        if not self.dry_run:
            text += f"; {self.chunks_written} chunks written, {self.points_total} in the index"
        if self.files_read or self.files_unchanged:
            text += f"; files: {self.files_read} read ({self.files_resumed} resumed), {self.files_unchanged} unchanged"
        text += f"; {self.seconds:.1f} s"
        if self.skipped:
            n = sum(self.skipped.values())
            reasons = ", ".join(f"{c} {r}" for r, c in sorted(self.skipped.items(), key=lambda x: (-x[1], x[0])))
            text += f"\nskipped {n} of {self.records + n} records ({reasons}); first:\n  " + "\n  ".join(self.skipped_examples)
        return text


# -- the writer ------------------------------------------------------------------------------


def write_papers(papers: list[Paper], settings: Settings, embedder, store: VectorStore, report: IngestReport) -> list[int]:
    """Make the store hold exactly these papers' current chunks. Returns each paper's chunk count.

    Unchanged papers (every chunk id present, same payload hash) cost one lookup; payload-only
    changes are a payload update; the rest are embedded and upserted, and only then are the papers'
    other points (old chunks) deleted.
    """
    plans = [(p, paper_payload(p), chunk_paper(p, settings.chunking)) for p in papers]
    ids = [c.point_id for _, _, chunks in plans for c in chunks]
    existing = store.payloads(ids, ["payload_hash"])
    todo = []
    for paper, fields, chunks in plans:
        have = [existing.get(c.point_id) for c in chunks]
        if all(h is not None for h in have):
            if all(h.get("payload_hash") == fields["payload_hash"] for h in have):
                report.unchanged += 1
            else:
                store.set_paper_payload(paper.paper_id, fields, [k for k in (*METADATA_FIELDS, *LEGACY_FIELDS) if k not in fields])
                report.updated += 1
                report.payload_only += 1
            continue
        if store.count(paper.paper_id):
            report.updated += 1
        else:
            report.added += 1
        todo.extend((c, fields) for c in chunks)
    if todo:
        t = time.perf_counter()
        vectors = embedder.embed_documents([c.embed_text for c, _ in todo], progress=False)
        report.embed_seconds += time.perf_counter() - t
        points = [PointData(c.point_id, v, sparse_doc(c.embed_text), c.payload(f)) for (c, f), v in zip(todo, vectors)]
        step = settings.store.upsert_batch
        for i in range(0, len(points), step):
            store.upsert(points[i : i + step])
        report.chunks_written += len(points)
    store.delete_stale([p.paper_id for p, _, _ in plans], ids)  # after the new chunks exist
    return [len(chunks) for _, _, chunks in plans]


def ingest_papers(papers: list[Paper], settings: Settings, embedder, store: VectorStore, progress: bool = True) -> IngestReport:
    """Write papers held in memory into the store, skipping unchanged ones. See the module docstring."""
    t0 = time.perf_counter()
    report = IngestReport(papers=len(papers))
    bar = Progress(len(papers), progress, "ingest")
    for start in range(0, len(papers), PAPERS_PER_BATCH):
        batch = papers[start : start + PAPERS_PER_BATCH]
        write_papers(batch, settings, embedder, store, report)
        bar.update(len(batch))
    bar.close()
    if report.chunks_written or report.payload_only:
        store.flush()
    report.points_total = store.count()
    if report.chunks_written and report.points_total >= settings.store.hnsw_threshold:
        build_index(store, report)
    report.seconds = time.perf_counter() - t0
    return report


def build_index(store: VectorStore, report: IngestReport) -> None:
    t = time.perf_counter()
    log.info("building the HNSW index over %d points", report.points_total)
    store.optimize()
    report.optimized = True
    log.info("built the HNSW index over %d points in %.1f s", report.points_total, time.perf_counter() - t)


# -- streaming ingest ------------------------------------------------------------------------


def ingest_files(paths: Iterable[str | Path], settings: Settings, state, open_store: Callable[[], VectorStore],
                 embedder, *, strict: bool = False, progress: bool = True) -> IngestReport:
    """Stream corpus files into the index through ``state`` (an ``IngestState``). See the module docstring.

    ``open_store`` is called only for a real run (a dry run, ``state.dry_run``, never opens the index);
    ``embedder`` is used only when something must be embedded (it may load its model lazily).
    """
    t0 = time.perf_counter()
    report = IngestReport(dry_run=state.dry_run)
    files = [p.resolve() for p in input_files(paths)]
    file_ids = []
    for path in files:
        file_ids.append(_read_file(path, state, report, strict, progress))
    report.papers = state.papers_in(file_ids)
    report.parse_seconds = time.perf_counter() - t0
    counts = state.resolve_dirty()
    log.info("resolved changed papers: %s", counts)
    if state.dry_run:
        report.added, report.payload_only = counts["new"], counts["payload"]
        report.updated = counts["update"] + counts["payload"]
        report.unchanged = max(0, report.papers - report.added - report.updated)
        report.seconds = time.perf_counter() - t0
        return report

    store = open_store()
    if store.count() == 0 and state.stored_papers():
        log.warning("the index is empty but the ingest state remembers %d papers: writing them all again", state.forget_index())
    todo = state.count_pending()
    log.info("writing %d papers (%d points in the index)", todo, store.count())
    if todo or state.get_meta("optimize_pending") == "1":
        state.set_meta("optimize_pending", "1")  # cleared only once optimize() has returned
        state.commit()
    bar = Progress(todo, progress, "embed+write")
    after = ""
    while keys := state.pending(after, PAPERS_PER_BATCH):
        after = keys[-1]
        papers, written = [], []
        for key in keys:
            paper, r = _load_paper(state, key, report)
            if paper is not None:
                papers.append(paper)
                written.append((key, r.chash, r.mhash))
        chunks = write_papers(papers, settings, embedder, store, report) if papers else []
        state.mark_written([(k, c, m, n) for (k, c, m), n in zip(written, chunks)])
        state.commit()
        bar.update(len(keys))
    bar.close()
    store.flush()
    report.points_total = store.count()
    if state.get_meta("optimize_pending") == "1":
        if report.points_total >= settings.store.hnsw_threshold:
            build_index(store, report)
        state.set_meta("optimize_pending", "0")
        state.commit()
    report.unchanged = max(0, report.papers - report.added - report.updated)
    report.seconds = time.perf_counter() - t0
    return report


def _read_file(path: Path, state, report: IngestReport, strict: bool, progress: bool) -> int:
    """Step 1 for one file; returns its id in the state."""
    status, row = state.check_file(path)
    if status == "unchanged":
        report.files_unchanged += 1
        return row.id
    report.files_read += 1
    if status == "resume":
        report.files_resumed += 1
        file_id, start, line = row.id, row.next_offset, row.next_line
        log.info("%s: resuming at line %d", path, line + 1)
    else:
        file_id, start, line = state.start_file(path, row), 0, 0
    bar = Progress(path.stat().st_size, progress if path.stat().st_size > 50_000_000 else False, f"read {path.name}", unit="B", done=start)
    batch: list[Entry] = []
    for rec in read_file(path, start, line):
        if isinstance(rec, Skip):
            if strict:
                state.commit()
                raise CorpusError(f"{rec.message} (--strict stops at the first bad record; without it, bad records are skipped)")
            report.skip(rec)
            continue
        batch.append(rec)
        report.records += 1
        if len(batch) >= RECORDS_PER_COMMIT:
            state.add_entries(file_id, batch)
            state.commit()
            bar.set(batch[-1].offset)
            batch = []
    state.add_entries(file_id, batch)
    state.finish_file(file_id, path)
    state.commit()
    bar.close()
    return file_id


def _load_paper(state, key: str, report: IngestReport):
    """The pending paper ``key`` with its text read again from its file, or (None, None) if it cannot be."""
    r = state.resolve(key)
    if r is None:
        return None, None
    rec = None
    try:
        rec = read_entry_at(Path(r.path), r.offset, r.line)
    except CorpusError:
        pass
    if not isinstance(rec, Entry) or content_hash(rec.title, rec.abstract) != r.chash:
        report.skip(Skip(r.path, r.line, "source_changed", "the file changed or vanished since it was read; run ingest on it again"))
        return None, None
    return Paper(rec.title, rec.abstract, r.pages, dict(rec.extra)), r


# -- progress --------------------------------------------------------------------------------


class Progress:
    """A tqdm bar on a terminal (rate and ETA); otherwise, when enabled, a line to stderr every 30 s.
    ``enabled`` may be a callable ``(desc, done, total)``: then it is called on every update instead
    (the server reports ingest progress to the UI this way)."""

    def __init__(self, total: int, enabled, desc: str, unit: str = "paper", done: int = 0, every: float = 30.0):
        self.total, self.n, self.desc, self.unit, self.every = total, done, desc, unit, every
        self.callback = enabled if callable(enabled) else None
        self.enabled = bool(enabled) and total > 0
        self._t0 = self._last = time.perf_counter()
        self._n0 = done
        self._bar = None
        if self.enabled and self.callback is None and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit=unit, unit_scale=unit == "B", desc=desc, leave=False)

    def update(self, n: int) -> None:
        self.set(self.n + n)

    def set(self, n: int) -> None:
        if not self.enabled:
            return
        if self.callback is not None:
            self.n = n
            self.callback(self.desc, n, self.total)
            return
        if self._bar is not None:
            self._bar.update(n - self.n)
        self.n = n
        now = time.perf_counter()
        if self._bar is None and now - self._last >= self.every:
            self._last = now
            print(self.line(now), file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        rate = (self.n - self._n0) / max(now - self._t0, 1e-9)
        eta = (self.total - self.n) / rate if rate > 0 else float("inf")
        return f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}s, {rate:,.1f} {self.unit}s/s, ETA {_duration(eta)}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _duration(s: float) -> str:
    if s == float("inf"):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
