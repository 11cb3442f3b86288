"""The public Python API: ``rag.load()`` returns an ``App`` that ingests, searches and answers.

Components (embedding model, Qdrant store, LLM) are built lazily from the settings on first
use, or injected (tests pass fakes). One App is safe to share between threads.

Example:
    >>> import rag
    >>> from rag.testing import FakeEmbedder
    >>> import tempfile
    >>> app = rag.load(data_dir=tempfile.mkdtemp(), embedder=FakeEmbedder())
    >>> app.ingest(["data/sample"], progress=False).papers
    342
    >>> app.search("Chinese multimodal math benchmark", k=1)[0].title
    'CMM-Math: A Chinese Multimodal Math Dataset To Evaluate and Enhance the Mathematics Reasoning of Large Multimodal Models'
    >>> app.close()
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from filelock import FileLock, Timeout

from rag.answer.result import Answer, Sources
from rag.config import Settings
from rag.errors import InputError, StoreError
from rag.ingest import IngestReport, ingest_files
from rag.search.store import LockedStore, store_error
from rag.search.retrieval import Hit, Retrieval, Retriever

log = logging.getLogger(__name__)


class App:
    def __init__(self, settings: Settings, embedder=None, store=None, generator=None, evidence_embedder=None, reranker=None):
        self.settings = settings
        self._reranker = reranker
        self._embedder = embedder
        self._store = store
        self._generator = generator
        # injected components (tests, custom models) are recorded under their own names
        self._injected_ids = {"embedder": getattr(embedder, "model_id", None), "generator": getattr(generator, "model_id", None)}
        self._retriever: Retriever | None = None
        self._answerer = None
        self._evidence_embedder = evidence_embedder
        self._lock = threading.RLock()  # guards lazy construction and the (non re-entrant) store
        self._memory_state = None  # ingest state of an in-memory (":memory:") store lives as long as the App

    # -- components -------------------------------------------------------------------
    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from rag.search.embedding import Embedder

                self._embedder = Embedder(self.settings.embedding, self.settings.cache_dir)
            return self._embedder

    @property
    def evidence_embedder(self):
        """The embedder that scores evidence sentences: the retrieval one unless ``answer.evidence_model`` names another."""
        name = self.settings.answer.evidence_model
        if self._evidence_embedder is None and (not name or name == self.settings.embedding.model or self._injected_ids["embedder"]):
            return self.embedder
        with self._lock:
            if self._evidence_embedder is None:
                from rag.search.embedding import Embedder

                s = self.settings.embedding.model_copy(update={"model": name, "query_prefix": "", "precision": "float32"})
                self._evidence_embedder = Embedder(s, self.settings.cache_dir)
            return self._evidence_embedder

    @property
    def collection(self) -> str:
        return f"{self.settings.store.collection}_{self.settings.index_fingerprint()}"

    @property
    def store(self):
        return self._open_store()

    def _open_store(self, dim: int | None = None):
        """The store; ``dim`` (known from an earlier ingest) spares loading the embedding model to learn it."""
        with self._lock:
            if self._store is None:
                from rag.search.store import open_store

                self._store = open_store(self.settings.store, self.settings.data_dir, self.collection, dim or self.embedder.dim)
            return self._store

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.embedder, self.locked_store, self.settings.retrieval)
            return self._retriever

    @property
    def generator(self):
        with self._lock:
            if self._generator is None:
                from rag.generation import build_generator

                self._generator = build_generator(self.settings.generation, self.settings.cache_dir)
            return self._generator

    @property
    def locked_store(self) -> LockedStore:
        """The store as every reader and writer uses it: each call holds the App's lock (the store is not
        re-entrant across threads), so an ingest in one thread and questions in others share it call by call."""
        return LockedStore(self.store, self._lock)

    def generator_id(self) -> str:
        """The generation model as configured (stable whether or not it is loaded; recorded in answers and evals)."""
        if self._injected_ids["generator"]:
            return self._injected_ids["generator"]
        g = self.settings.generation
        return g.model + ("" if g.quantization == "none" else f" [{g.quantization}]")

    def embedder_id(self) -> str:
        """The embedding model as configured (or the injected one's name)."""
        return self._injected_ids["embedder"] or self.settings.embedding.model

    # -- ingest and search ------------------------------------------------------------
    def ingest(self, paths: list[str | Path] | None = None, progress: bool = True, dry_run: bool = False,
               strict: bool = False) -> IngestReport:
        """Index corpus files (default: the configured corpus, the bundled sample), streaming.

        Unchanged files are skipped unread, bad records are skipped and reported (``strict``: the
        first one raises CorpusError before anything is written to the index), a killed run resumes
        where it stopped. ``dry_run``: parse, deduplicate and count what would change, without
        loading the embedding model or touching the index. See ``rag.ingest``.

        Questions are answered while an ingest runs (in another thread): the store is shared call by
        call, and the papers of each written batch are searchable at once. ``progress``: True for a
        bar / log lines, or a callable ``(stage, done, total)``.
        """
        state, cleanup = self._ingest_state(dry_run)  # holds the data dir's ingest lock: one ingest at a time
        try:
            report = ingest_files(paths or self.settings.corpus, self.settings, state,
                                  lambda: LockedStore(self._open_store(_int(state.get_meta("dim"))), self._lock),
                                  _LazyEmbedder(self), strict=strict, progress=progress)
            if self._embedder is not None and not dry_run:
                state.set_meta("dim", str(self._embedder.dim))
        except sqlite3.Error as e:
            raise store_error(f"ingest state {state.path}", "ingest", e) from None
        finally:
            cleanup()
        report.collection = self.collection
        log.info("ingest: %s", report.summary())
        return report

    def ingest_state_path(self) -> Path | None:
        """Where ingest keeps its state for this collection (None: an in-memory store, state in memory too)."""
        s, data = self.settings.store, Path(self.settings.data_dir)
        if s.backend == "edge":
            return data / "qdrant" / f"{self.collection}.ingest.sqlite"
        if s.url == ":memory:":
            return None
        return data / "ingest" / f"{re.sub(r'[^A-Za-z0-9]+', '_', s.url or '').strip('_')}__{self.collection}.sqlite"

    def _ingest_state(self, dry_run: bool):
        """(state, cleanup) for one ingest run, holding a lock so that two runs never interleave."""
        from rag.ingest.state import IngestState

        path = self.ingest_state_path()
        if path is None:
            if self._memory_state is None:
                self._memory_state = IngestState(":memory:")
            st = self._memory_state
            st.dry_run = dry_run
            return st, st.end
        if dry_run and not path.exists():
            tmp = Path(tempfile.mkdtemp(prefix="rag-dry-run-"))
            st = IngestState(tmp / "state.sqlite", dry_run=True)
            return st, lambda: (st.close(), shutil.rmtree(tmp, ignore_errors=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise StoreError(f"another `rag ingest` is running on {self.settings.data_dir} (lock {path}.lock); wait for it to finish") from None
        try:
            st = IngestState(path, dry_run=dry_run)
        except sqlite3.Error as e:
            lock.release()
            raise store_error(f"ingest state {path}", "open", e) from None
        except BaseException:
            lock.release()
            raise
        return st, lambda: (st.close(), lock.release())

    def retrieve(self, query: str, k: int | None = None, filters: dict | None = None, **kw: Any) -> Retrieval:
        """Search with timings and the best dense score (what answering needs)."""
        return self.retriever.search(query, k=k, filters=filters, **kw)

    def search(self, query: str, k: int = 5, filters: dict | None = None, mode: str | None = None,
               one_per_paper: bool | None = None) -> list[Hit]:
        """Best hits first, one per paper unless ``one_per_paper=False``.

        ``filters``: ``{"title": ..., "date": "Mar 13", "page": "000_f8d5cab1cc16e04b.txt", "paper_id": ...}``
        (a string or a list of strings each). ``mode``: hybrid (default), dense or sparse.
        """
        return self.retrieve(query, k=k, filters=filters, mode=mode, one_per_paper=one_per_paper).hits

    # -- answers ---------------------------------------------------------------------
    @property
    def answerer(self):
        from rag.answer.evidence import EvidenceScorer
        from rag.answer.pipeline import Answerer
        from rag.search.rerank import build_reranker

        with self._lock:
            if self._answerer is None:
                scorer = EvidenceScorer(self.evidence_embedder, self.settings.answer.policy)
                fb = self.settings.retrieval.feedback
                feedback = (lambda r, k, filters: self.retriever.feedback(r, fb.docs, fb.weight, k, filters)) if fb.enabled else None
                self._answerer = Answerer(self.settings, retrieve=self.retrieve, search=self.search, store=self.locked_store,
                                          generator=lambda: self.generator, scorer=scorer, model_id=self.generator_id(),
                                          shared_vector=scorer.embedder is self.embedder,
                                          reranker=self._reranker or build_reranker(self.settings.rerank, lambda: self.generator),
                                          feedback=feedback)
            return self._answerer

    def warm_up(self) -> dict:
        """Load everything the first answer would otherwise wait for; returns seconds per part.

        The models, the answer pipeline, the language identifier and one search (first inference
        and first store query are slower). Generates nothing. ``rag serve`` calls it before listening.
        """
        from rag.answer.intent import detect_language

        t, out = time.perf_counter(), {}
        for name, step in (("embedder", lambda: self.embedder), ("generator", lambda: self.generator),
                           ("answerer", lambda: self.answerer), ("language", lambda: detect_language("warm up the model")),
                           ("search", lambda: self.search("warm up", k=1))):
            step()
            out[name], t = time.perf_counter() - t, time.perf_counter()
        return out

    def ask(self, question: str, k: int | None = None, filters: dict | None = None, closed_book: bool = False) -> Answer:
        """A cited answer (or a refusal / decline). ``closed_book=True``: the LLM alone, no retrieval."""
        if closed_book:
            return self.answerer.closed_book(question)
        return _last(self.ask_stream(question, k=k, filters=filters))

    def extractive(self, question: str, k: int | None = None) -> Answer:
        """The no-LLM baseline: the 3 sentences of the top retrieved paper that best match the question."""
        return self.answerer.extractive(question, k=k)

    def ask_stream(self, question: str, k: int | None = None, filters: dict | None = None,
                   history: list[dict] | None = None, cancel: threading.Event | None = None) -> Iterator[Sources | str | Answer]:
        """Yield ``Sources`` as soon as retrieval is done, then the answer's text in pieces (each piece
        already checked and cited: their concatenation is the final text), then the ``Answer``.
        ``cancel``: an Event another thread may set to stop the answer (raises ``Cancelled``)."""
        return self.answerer.stream(question, k=k, filters=filters, history=history, cancel=cancel)

    def chat(self, messages: list[dict], k: int | None = None, filters: dict | None = None) -> Answer:
        """Answer the last user message of a conversation; earlier turns resolve follow-ups."""
        return _last(self.chat_stream(messages, k=k, filters=filters))

    def chat_stream(self, messages: list[dict], k: int | None = None, filters: dict | None = None,
                    cancel: threading.Event | None = None) -> Iterator[Sources | str | Answer]:
        """``ask_stream`` for the last user message; earlier turns (``{"role", "content"}``, an assistant
        turn may add ``"papers"``: the paper ids it cited) resolve follow-ups."""
        if not messages or messages[-1].get("role") != "user":
            raise InputError("chat needs a list of messages ending with the user's question")
        return self.ask_stream(messages[-1].get("content", ""), k=k, filters=filters, history=messages[:-1], cancel=cancel)

    def count(self) -> int:
        return self.locked_store.count()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
                self._retriever = None
                self._answerer = None
            if self._memory_state is not None:
                self._memory_state.close()
                self._memory_state = None
            if self._generator is not None and hasattr(self._generator, "close"):
                self._generator.close()
                self._generator = None

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _LazyEmbedder:
    """The App's embedder, loaded only when ingest has something to embed."""

    def __init__(self, app: App):
        self._app = app

    def embed_documents(self, texts, progress=None):
        return self._app.embedder.embed_documents(texts, progress=progress)


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _last(stream: Iterator[str | Answer]) -> Answer:
    answer = None
    for item in stream:
        answer = item
    assert isinstance(answer, Answer)
    return answer


def load(config: str | Path | dict | None = "cpu", *, embedder=None, store=None, generator=None, evidence_embedder=None,
         reranker=None, **overrides: Any) -> App:
    """Build an App from a preset (``cpu``, the default, as for the CLI; ``gpu``), a YAML file or a dict, plus
    overrides (``None``: the code defaults of ``rag.config``).

    Overrides are settings by name, dotted for sections: ``rag.load(data_dir="idx", **{"retrieval.k": 8})``.
    ``embedder``, ``store``, ``generator`` and ``evidence_embedder`` (scores evidence sentences; default: the
    ``answer.evidence_model``, else the retrieval embedder) and ``reranker`` (a ``rag.search.rerank.Reranker``)
    replace the components built from the settings.
    """
    settings = Settings.load(config, **overrides)
    return App(settings, embedder=embedder, store=store, generator=generator, evidence_embedder=evidence_embedder,
               reranker=reranker)
