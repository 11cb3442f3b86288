"""Answering: retrieve, prompt, generate (streamed), attribute citations, or refuse.

    question -> (chat: rewrite follow-up) -> retrieve -> [refuse if nothing relevant]
             -> LLM over numbered sources (JSON {found, answer} on llama.cpp) -> stream text
             -> attribute each sentence to a source -> Answer (or the fixed refusal)

Example (fakes; the real models run the same code):
    >>> from rag.testing import FakeEmbedder, FakeGenerator
    >>> import rag
    >>> import tempfile
    >>> app = rag.load(data_dir=tempfile.mkdtemp(), embedder=FakeEmbedder(), generator=FakeGenerator())
    >>> _ = app.ingest(["data/sample"], progress=False)
    >>> a = app.ask("Which benchmark evaluates Chinese multimodal math?")
    >>> a.refused, a.citations[0].title.startswith("CMM-Math")
    (False, True)
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator

from rag.answer import Answer
from rag.citations import attribute
from rag.errors import InputError
from rag.prompting import ANSWER_SCHEMA, answer_messages, closed_book_messages, rewrite_messages
from rag.retrieval import check_query

log = logging.getLogger(__name__)
CLOSED_BOOK_TOKENS = 120  # 1-3 sentences; the baseline need not pay for long answers


class Answerer:
    """Turns questions into Answers using an App's retriever, generator and embedder."""

    def __init__(self, app):
        self.app = app
        self.settings = app.settings.answer

    # -- public -------------------------------------------------------------------------
    def stream(self, question: str, k: int | None = None, filters: dict | None = None,
               history: list[dict] | None = None) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        question = self._check(question)
        standalone, rewrite_s = question, 0.0
        if history:
            t = time.perf_counter()
            standalone = self.rewrite(history, question)
            rewrite_s = time.perf_counter() - t
        retrieval = self.app.retrieve(standalone, k=k, filters=filters)
        timings = {"rewrite_s": rewrite_s, "embed_ms": retrieval.embed_ms, "search_ms": retrieval.search_ms,
                   "retrieval_ms": retrieval.embed_ms + retrieval.search_ms}
        base = dict(question=question, standalone_question=standalone, sources=retrieval.hits, model=self._model_id())
        too_far = retrieval.best_dense is not None and retrieval.best_dense < self.settings.min_retrieval_score
        if not retrieval.hits or too_far:
            yield self.settings.refusal_text
            yield self._refusal(base, timings, t0, "retrieval")
            return
        sources = retrieval.hits[: self.settings.llm_sources]
        json_mode = self.settings.output == "json" and getattr(self.app.generator, "supports_json_schema", False)
        messages = answer_messages(standalone, sources, self.settings.refusal_text, json_mode, self.settings.max_source_chars)
        raw = yield from self._generate(messages, json_mode, timings)
        found, text = parse_output(raw, json_mode)
        if not found or self._is_refusal(text):
            yield self._refusal(base, timings, t0, "model")
            return
        cited, citations, dropped = attribute(text, sources, self.settings.attribution_threshold, self.app.embedder)
        if not citations:
            yield self._refusal(base, timings, t0, "unsupported", dropped)
            return
        timings["total_s"] = time.perf_counter() - t0
        yield Answer(text=cited, citations=citations, refused=False, timings=timings, dropped_sentences=dropped, **base)

    def closed_book(self, question: str) -> Answer:
        """The LLM alone, no sources (an eval baseline showing what retrieval adds)."""
        t0 = time.perf_counter()
        question = self._check(question)
        timings: dict = {}
        messages = closed_book_messages(question, self.settings.refusal_text)
        raw = "".join(self._generate(messages, False, timings, max_new_tokens=CLOSED_BOOK_TOKENS))
        text = " ".join(raw.split())
        refused = self._is_refusal(text)
        timings["total_s"] = time.perf_counter() - t0
        return Answer(question, self.settings.refusal_text if refused else text, [], [], refused,
                      timings=timings, model=self._model_id(), refusal_reason="model" if refused else "")

    def rewrite(self, history: list[dict], question: str) -> str:
        """Turn a follow-up into a standalone question using the last turns of the conversation."""
        turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")]
        turns = turns[-2 * self.settings.history_turns :]
        if not turns:
            return question
        out = self.app.generator.complete(rewrite_messages(turns, question), max_new_tokens=60, temperature=0.0)
        out = " ".join(out.strip().strip('"').split())
        out = re.sub(r"^(rewritten question|question)\s*:\s*", "", out, flags=re.I)
        if not out or len(out) > len(question) + 120:  # the model answered or copied instead of rewriting
            last_user = next((m["content"] for m in reversed(turns) if m["role"] == "user"), "")
            out = f"{last_user} {question}".strip()  # fallback: keep the topic of the previous turn
        return out

    # -- internals ----------------------------------------------------------------------
    def _check(self, question: str) -> str:
        question = check_query(question)
        if len(question) > self.settings.max_question_chars:
            raise InputError(f"the question is {len(question):,} characters; keep it under {self.settings.max_question_chars:,}")
        return question

    def _generate(self, messages: list[dict], json_mode: bool, timings: dict, max_new_tokens: int | None = None):
        """Yield visible text pieces; return the raw output. Fills ttft_s, tokens_per_s, completion_tokens."""
        gen = self.app.generator
        t = time.perf_counter()
        first, pieces, raw = None, 0, []
        extractor = JsonAnswerExtractor() if json_mode else None
        stream = gen.stream(messages, max_new_tokens=max_new_tokens, json_schema=ANSWER_SCHEMA if json_mode else None)
        for piece in stream:
            if first is None:
                first = time.perf_counter()
            pieces += 1
            raw.append(piece)
            visible = extractor.feed(piece) if extractor else piece
            if visible:
                yield visible
        end = time.perf_counter()
        first = first or end
        timings.update(ttft_s=first - t, generation_s=end - t, completion_tokens=pieces,
                       tokens_per_s=(pieces - 1) / (end - first) if pieces > 1 and end > first else 0.0)
        return "".join(raw)

    def _is_refusal(self, text: str) -> bool:
        norm = lambda s: " ".join(re.findall(r"[a-z]+", s.lower()))  # noqa: E731
        return not text.strip() or norm(self.settings.refusal_text) in norm(text)

    def _refusal(self, base: dict, timings: dict, t0: float, reason: str, dropped: list[str] | None = None) -> Answer:
        timings["total_s"] = time.perf_counter() - t0
        return Answer(text=self.settings.refusal_text, citations=[], refused=True, timings=timings,
                      refusal_reason=reason, dropped_sentences=dropped or [], **base)

    def _model_id(self) -> str:
        gen = self.app._generator
        return getattr(gen, "model_id", "") if gen is not None else self.app.settings.generation.model


def parse_output(raw: str, json_mode: bool) -> tuple[bool, str]:
    """(found, answer text) from the model's raw output."""
    if not json_mode:
        return True, raw.strip()
    try:
        obj = json.loads(raw)
        found, text = bool(obj.get("found", True)), str(obj.get("answer", "")).strip()
    except (json.JSONDecodeError, AttributeError):  # cut off by max_new_tokens: keep what was written
        log.info("model output is not complete JSON (token limit?): %r", raw[:200])
        found = not re.search(r'"found"\s*:\s*false', raw)
        text = JsonAnswerExtractor().feed(raw).strip() or raw.strip()
    if text.startswith("{") and '"answer"' in text:  # small models sometimes nest the JSON in the answer
        text = JsonAnswerExtractor().feed(text).strip() or text
    return found, text


class JsonAnswerExtractor:
    """Streams the value of the ``"answer"`` string out of JSON arriving piece by piece.

    >>> x = JsonAnswerExtractor()
    >>> "".join(x.feed(p) for p in ['{"found": true, "ans', 'wer": "A \\\\"b', '\\\\" [1].', '"}'])
    'A "b" [1].'
    """

    _ESC = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "b": "", "f": "", "r": ""}

    def __init__(self):
        self.buf = ""
        self.pos = -1  # index in buf where the answer string starts; -1 = not yet
        self.done = False

    def feed(self, piece: str) -> str:
        self.buf += piece
        if self.done:
            return ""
        if self.pos < 0:
            m = re.search(r'"answer"\s*:\s*"', self.buf)
            if not m:
                return ""
            self.pos = m.end()
        out, i = [], self.pos
        while i < len(self.buf):
            ch = self.buf[i]
            if ch == "\\":
                if i + 1 >= len(self.buf):
                    break
                nxt = self.buf[i + 1]
                if nxt == "u":
                    if i + 6 > len(self.buf):
                        break
                    out.append(chr(int(self.buf[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                out.append(self._ESC.get(nxt, nxt))
                i += 2
                continue
            if ch == '"':
                self.done = True
                i += 1
                break
            out.append(ch)
            i += 1
        self.pos = i
        return "".join(out)
