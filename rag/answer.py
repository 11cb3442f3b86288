"""What an answer is: text with ``[n]`` markers, the cited papers, the sources, refusal and timings.

Example:
    >>> from rag.retrieval import Hit
    >>> src = [Hit("Paper A", 0.03, "A does X.", "id-a")]
    >>> a = Answer("What does A do?", "A does X [1].", [Citation(1, "Paper A", "id-a", "A does X.")], src, refused=False)
    >>> a.to_dict()["citations"][0]["title"], a.format_references()
    ('Paper A', '[1] Paper A')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rag.retrieval import Hit


@dataclass
class Citation:
    number: int  # the source number, as in the [n] markers of the text
    title: str
    paper_id: str
    text: str  # the cited passage


@dataclass
class Answer:
    question: str
    text: str  # the answer with [n] markers, or the refusal phrase
    citations: list[Citation]  # unique cited sources, in order of first citation
    sources: list[Hit]  # what was retrieved, best first; the first answer.llm_sources are the prompt's [1]..[n]
    refused: bool
    standalone_question: str = ""  # the question used for retrieval (a rewritten follow-up in chat)
    timings: dict = field(default_factory=dict)  # retrieval_ms, ttft_s, tokens_per_s, total_s, ...
    model: str = ""
    refusal_reason: str = ""  # "", "retrieval", "model", "unsupported"
    dropped_sentences: list[str] = field(default_factory=list)  # generated but supported by no source

    def format_references(self) -> str:
        return "\n".join(f"[{c.number}] {c.title}" for c in self.citations)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [asdict(c) for c in self.citations],
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "standalone_question": self.standalone_question or self.question,
            "sources": [h.to_dict() for h in self.sources],
            "timings": self.timings,
            "model": self.model,
            "dropped_sentences": self.dropped_sentences,
        }
