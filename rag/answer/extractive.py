"""Answers made of quotes: the fallback when the model declines, and completing a model answer.

The pipeline falls back to quoting the evidence when the model declines (or writes nothing the
quotes support) although the evidence scorer says the papers answer. What to quote:

* the best paper's best selected sentences (``answer.policy.fallback_quotes``: two);
* for a question that names several of the selected papers ("How do MIO and LLaVA-KD train?"),
  also the best selected sentence of every other paper it names, so each part gets its quote.

``complete`` does the same for a model answer: a question naming two papers whose answer cites only
one gets the best quote of the other appended (the 0.5B model often answers only the first part), and
an answer that leaves out the paper with the best evidence gets that paper's best quote (the 0.5B
sometimes names a weaker paper's model for "which model ...?"; dev: in 5 of the 6 answers that did
not cite the best-evidence paper, that paper was the right one and the cited one was not).

Example:
    >>> from types import SimpleNamespace as P
    >>> from rag.text import split_sentences
    >>> def paper(title, text, scores):
    ...     return P(title=title, paper_id=title, abstract=text, sentences=split_sentences(text),
    ...              ranked=lambda: sorted(range(len(scores)), key=lambda i: -scores[i]))
    >>> mio = paper("MIO: tokens", "MIO is big. MIO has four training stages.", [0.2, 0.9])
    >>> kd = paper("LLaVA-KD: distilling", "LLaVA-KD uses three stages. It is small.", [0.8, 0.1])
    >>> parts = fallback(Question("How are MIO and LLaVA-KD trained?"), [(mio, [0, 1]), (kd, [0, 1])], n=2)
    >>> [(n, i) for n, i in parts]
    [(0, [0, 1]), (1, [0])]
    >>> text, cites = quote_answer([(mio, [0, 1]), (kd, [0, 1])], parts)
    >>> text
    '“MIO is big.” [1] “MIO has four training stages.” [1] “LLaVA-KD uses three stages.” [2]'
    >>> big = paper("CMM-Math: math", "CMM-Math is Chinese. It is hard. It has 28,000 samples.", [0.9, 0.8, 0.5])
    >>> fallback(Question("How large is CMM-Math?"), [(big, [0, 1, 2])], holds=lambda t: any("28,000" in x for x in t), n=2)
    [(0, [0, 2])]
"""

from __future__ import annotations

from rag.answer.question import Question
from rag.answer.result import Citation, Quote


def named(q: Question, selection: list) -> list[int]:
    """Indexes of the selected papers the question calls by their short name (the title before its
    colon: "MIO" for "MIO: A Foundation Model ..."), in selection order. "LLMs" names no paper."""
    return [k for k, (p, _) in enumerate(selection) if q.calls_by_name(p.title)]


def _best(paper, idx: list[int], n: int) -> list[int]:
    return sorted([i for i in paper.ranked() if i in idx][:n])


def fallback(q: Question, selection: list, holds=None, *, n: int) -> list[tuple[int, list[int]]]:
    """(selection index, sentence indexes) to quote: the first paper's ``n`` best selected sentences
    (``answer.policy.fallback_quotes``),
    then the best one of each other paper the question names. ``holds(texts)``: whether quotes hold what
    is asked (``answerability.quotes_answer``); if the best ones do not, the best selected sentence
    that does replaces the second ("how large is it?" and the sentence with the size)."""
    paper, idx = selection[0]
    top = [i for i in paper.ranked() if i in idx]
    first = sorted(top[:n])
    if holds is not None and top and not holds([paper.sentences[i].text for i in first]):
        better = [i for i in top[1:] if holds([paper.sentences[i].text])]
        if better:
            first = sorted([top[0], better[0]])
    parts = [(0, first)]
    for k in named(q, selection):
        if k != 0:
            parts.append((k, _best(*selection[k], 1)))
    return [(k, idx) for k, idx in parts if idx]


def texts(selection: list, parts: list[tuple[int, list[int]]]) -> list[str]:
    return [selection[k][0].sentences[i].text for k, idx in parts for i in idx]


def quote_answer(selection: list, parts: list[tuple[int, list[int]]]) -> tuple[str, list[Citation]]:
    """The answer text (each quote followed by its [n]) and one Citation per quoted paper, numbered as
    in the selection; the quotes shown come first, then the rest of that paper's selected evidence."""
    text, citations = [], []
    for k, idx in parts:
        paper, evidence = selection[k]
        s = paper.sentences
        text += [f"\u201c{s[i].text}\u201d [{k + 1}]" for i in idx]
        quotes = [Quote(s[i].text, s[i].start, s[i].end, s[i].text if i in idx else "")
                  for i in idx + [i for i in evidence if i not in idx]]
        citations.append(Citation(k + 1, paper.title, paper.paper_id, paper.abstract, quotes))
    return " ".join(text), citations


def complete(q: Question, selection: list, text: str, citations: list[Citation]) -> tuple[str, list[Citation]]:
    """Append the best quote of the best-evidence paper and of each paper the question names, when the
    answer does not cite them.

    >>> from types import SimpleNamespace as P
    >>> from rag.text import split_sentences
    >>> a = P(title="A", paper_id="a", abstract="A fuses early.", sentences=split_sentences("A fuses early."), ranked=lambda: [0])
    >>> b = P(title="B", paper_id="b", abstract="B fuses late.", sentences=split_sentences("B fuses late."), ranked=lambda: [0])
    >>> complete(Question("Which model fuses early?"), [(a, [0]), (b, [0])], "B [2].", [Citation(2, "B", "b", "B fuses late.", [])])[0]
    'B [2]. “A fuses early.” [1]'
    """
    asked_about = named(q, selection)
    want = ([0] if len(selection) > 1 else []) + (asked_about if len(asked_about) >= 2 else [])
    cited = {c.number for c in citations}
    missing = [(k, _best(*selection[k], 1)) for k in dict.fromkeys(want) if k + 1 not in cited]
    missing = [(k, idx) for k, idx in missing if idx]
    if not missing:
        return text, citations
    more, extra = quote_answer(selection, missing)
    return f"{text} {more}", sorted(citations + extra, key=lambda c: c.number)
