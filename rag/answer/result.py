"""What an answer is: text with ``[n]`` markers, the cited papers with quotes, the sources, its kind.

Every citation carries quotes: sentences copied verbatim from the cited paper's abstract, with
their character offsets in it (``Citation.text[q.start:q.end] == q.text``). A quote that supports
a sentence of the answer names that sentence in ``supports``; the others are the paper's evidence
for the question that the answer did not use.

Example:
    >>> from rag.search.retrieval import Hit
    >>> src = [Hit("Paper A", 0.03, "A does X. It is fast.", "id-a")]
    >>> q = Quote("A does X.", 0, 9, supports="A does X [1].")
    >>> a = Answer("What does A do?", "A does X [1].", [Citation(1, "Paper A", "id-a", "A does X. It is fast.", [q])], src, refused=False)
    >>> print(a.format())
    A does X [1].
    <BLANKLINE>
    [1] Paper A
        "A does X."
    >>> a.to_dict()["citations"][0]["quotes"][0]["start"], a.cited_titles()
    (0, ['Paper A'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rag.search.retrieval import Hit

# What kind of answer this is
ANSWER, EXTRACTIVE, LIST = "answer", "extractive", "list"
REFUSAL, OFF_TOPIC, EMERGENCY, INJECTION = "refusal", "off_topic", "emergency", "injection"
DECLINED_KINDS = (REFUSAL, OFF_TOPIC, EMERGENCY, INJECTION)


@dataclass
class Quote:
    text: str  # copied verbatim from the abstract
    start: int  # character offsets in Citation.text
    end: int
    supports: str = ""  # the answer sentence this quote supports ("" = evidence the answer did not use)


@dataclass
class Citation:
    number: int  # the source number, as in the [n] markers of the text
    title: str
    paper_id: str
    text: str  # the paper's abstract, which the quote offsets point into
    quotes: list[Quote] = field(default_factory=list)

    @property
    def quote(self) -> str:
        """The first supporting quote (or the first quote)."""
        best = next((q for q in self.quotes if q.supports), self.quotes[0] if self.quotes else None)
        return best.text if best else ""

    @property
    def shown_quotes(self) -> list[Quote]:
        """The quotes to show people: each passage once, in order. ``quotes`` keeps one entry per answer
        sentence a passage supports (two sentences of the answer can rest on the same quote).

        >>> c = Citation(1, "T", "t", "A. B.", [Quote("A.", 0, 2, "x"), Quote("A.", 0, 2, "y"), Quote("B.", 3, 5)])
        >>> [q.text for q in c.shown_quotes]
        ['A.', 'B.']
        """
        shown: dict[tuple[int, int], Quote] = {}
        for q in self.quotes:
            shown.setdefault((q.start, q.end), q)
        return list(shown.values())


@dataclass
class Sources:
    """The papers an answer is being made from, yielded by ``ask_stream`` before the answer's text."""

    hits: list[Hit]
    question: str  # the standalone question they were retrieved for
    filtered: str = ""  # the filters they were searched with, as people read them ('year ≥ 2024, category cs.CL')


@dataclass
class Answer:
    question: str
    text: str  # the answer with [n] markers, or a refusal / decline message
    citations: list[Citation]  # cited papers, in order of first citation
    sources: list[Hit]  # papers the answer was made from, [n] = sources[n-1]; then the other retrieved ones
    refused: bool  # True for every declined kind (refusal, off-topic, emergency, injection)
    standalone_question: str = ""  # the question used for retrieval (rewritten follow-up, English translation)
    timings: dict = field(default_factory=dict)  # retrieval_ms, evidence_ms, ttft_s, tokens_per_s, total_s, ...
    model: str = ""
    refusal_reason: str = ""  # "", "missing_terms", "weak_evidence", "retrieval", "model", "unsupported", "off_topic", "emergency", "injection"
    dropped_sentences: list[str] = field(default_factory=list)  # generated but not supported by a quote
    kind: str = ANSWER  # answer | extractive | list | refusal | off_topic | emergency | injection
    related: list[Hit] = field(default_factory=list)  # closest papers when declining (not sources: nothing is cited)
    language: str = "en"  # the question's language; the text is in it
    signals: dict = field(default_factory=dict)  # answerability signals (rag.answer.answerability)
    generated_text: str = ""  # the model's own supported sentences (empty for the extractive fallback and lists)
    original_text: str = ""  # for a question in another language: the English text before translation
    filtered: str = ""  # the search filters (the caller's and the question's own), as people read them
    filter_note: str = ""  # a constraint the question states that the index could not apply (it has no years, ...)

    def cited_titles(self) -> list[str]:
        return [c.title for c in self.citations]

    def format_references(self) -> str:
        return "\n".join(f"[{c.number}] {c.title}" for c in self.citations)

    def format(self, quotes: bool = True) -> str:
        """The answer as shown to people: text, then each cited paper with its quotes."""
        parts = [self.text]
        if self.filtered or self.filter_note:
            parts.append(" ".join(x for x in (f"Filtered: {self.filtered}." if self.filtered else "", self.filter_note) if x))
        if self.citations:
            refs = []
            for c in self.citations:
                lines = [f"[{c.number}] {c.title}"]
                if quotes:
                    lines += [f'    "{q.text}"' for q in c.shown_quotes]
                refs.append("\n".join(lines))
            parts.append("\n".join(refs))
        elif self.related:
            parts.append("Closest papers (not sources):\n" + "\n".join(f"- {h.title}" for h in self.related))
        return "\n\n".join(parts)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "kind": self.kind,
            "citations": [asdict(c) for c in self.citations],
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "standalone_question": self.standalone_question or self.question,
            "language": self.language,
            "sources": [h.to_dict() for h in self.sources],
            "related": [{"title": h.title, "paper_id": h.paper_id} for h in self.related],
            "timings": self.timings,
            "model": self.model,
            "dropped_sentences": self.dropped_sentences,
            "generated_text": self.generated_text,
            "original_text": self.original_text,
            "filtered": self.filtered,
            "filter_note": self.filter_note,
            "signals": self.signals,
        }
