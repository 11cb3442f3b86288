"""One question's way through the pipeline: what is known so far, and the one place an ``Answer`` is made.

The pipeline's steps add to a ``Turn`` (the standalone question, the sources, the answerability signals, the
timings) and end by asking it for the ``Answer``; no step builds an Answer itself, so every answer of a kind has
the same fields filled the same way.

Example:
    >>> t = Turn("What is X?", model="fake")
    >>> a = t.answer("refusal", "I could not find this.", reason="weak_evidence")
    >>> a.refused, a.sources, a.standalone_question, a.refusal_reason
    (True, [], '', 'weak_evidence')
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag.answer.result import DECLINED_KINDS, Answer, Citation
from rag.search.retrieval import Hit


@dataclass
class Turn:
    question: str  # as the user asked it
    model: str  # the generation model's id, recorded in the answer
    language: str = "en"  # of the question (``rag.answer.intent``)
    standalone: str = ""  # the English, standalone question retrieval and evidence use
    t0: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)
    sources: list[Hit] = field(default_factory=list)  # the papers the answer is made from, then the other hits
    signals: dict = field(default_factory=dict)  # answerability signals (``rag.answer.answerability``)
    filtered: str = ""  # the search filters, as people read them ('year ≥ 2024'; ``rag.answer.constraints``)
    filter_note: str = ""  # a constraint of the question that the index could not apply

    @contextlib.contextmanager
    def timed(self, key: str, scale: float = 1.0) -> Iterator[None]:
        """Add the seconds the block takes (times ``scale``: 1000 for ms) to ``timings[key]``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - t) * scale

    def answer(self, kind: str, text: str, citations: list[Citation] | None = None, *, reason: str = "",
               related: list[Hit] | None = None, dropped: list[str] | None = None, generated: str = "",
               signals: dict | None = None, sources: list[Hit] | None = None) -> Answer:
        """The Answer of this turn: declined kinds have no sources (unless ``sources`` says otherwise)."""
        refused = kind in DECLINED_KINDS
        self.timings["total_s"] = time.perf_counter() - self.t0
        if sources is None:
            sources = [] if refused else self.sources
        return Answer(question=self.question, text=text, citations=list(citations or []), sources=sources,
                      refused=refused, standalone_question=self.standalone, timings=self.timings, model=self.model,
                      refusal_reason=reason, dropped_sentences=list(dropped or []), kind=kind,
                      related=list(related or []), language=self.language,
                      signals=self.signals if signals is None else signals, generated_text=generated,
                      filtered=self.filtered, filter_note=self.filter_note)
