"""Citations by construction: attribute each answer sentence to the source that supports it.

Small local models rarely cite on their own, so we do not trust them to: every generated
sentence is scored against every numbered source (word overlap + embedding similarity, as
OpenScholar's post-hoc attribution does). A sentence keeps the model's own ``[n]`` when that
source supports it, otherwise gets the best-supporting source; a sentence no source supports
is dropped. Numbers outside ``1..len(sources)`` never survive.

Example:
    >>> from rag.retrieval import Hit
    >>> src = [Hit("CMM-Math", 1, "CMM-Math has 28,000 samples in Chinese.", "a"), Hit("Other", 1, "Speech models.", "b")]
    >>> text, cites, dropped = attribute("CMM-Math contains 28,000 samples [7]. Cats fly.", src, threshold=0.3)
    >>> text, [c.title for c in cites], dropped
    ('CMM-Math contains 28,000 samples [1].', ['CMM-Math'], ['Cats fly.'])
"""

from __future__ import annotations

import re

from rag.answer import Citation
from rag.retrieval import Hit

_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*%?")
_NUMBER = re.compile(r"\d")
STOPWORDS = frozenset(
    "a an the and or of to in on for with by from as at is are was were be been being it its this that these those "
    "which who what when where how why does do did has have had can could will would should may might not no "
    "than then there their they them we our you your he she his her also such into over about using used use "
    "based via between both each more most other some any all paper papers source sources proposed propose".split()
)


def split_sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    return [s.strip() for s in _SENT_END.split(text) if s.strip()]


def strip_markers(sentence: str) -> tuple[str, list[int]]:
    """Remove ``[n]`` / ``[n, m]`` markers; return the sentence and the numbers cited."""
    nums = [int(n) for m in _MARKER.finditer(sentence) for n in m.group(1).split(",")]
    clean = _MARKER.sub("", sentence).strip()
    clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
    return clean, nums


def content_words(text: str) -> list[str]:
    return [w.replace(",", "") for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 2 or _NUMBER.search(w))]


def lexical_support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words found in the source; numbers must match."""
    words = content_words(sentence)
    if not words:
        return 0.0
    src = set(content_words(source_text))
    score = sum(w in src for w in words) / len(words)
    numbers = [w for w in words if _NUMBER.search(w)]
    if numbers and not any(n in src for n in numbers):
        score *= 0.5  # a number no source states is a likely hallucination
    return score


def support_matrix(sentences: list[str], sources: list[Hit], embedder=None) -> list[list[float]]:
    """support[i][j]: how well source j supports sentence i, in [0, 1]."""
    lex = [[lexical_support(s, f"{h.title} {h.text}") for h in sources] for s in sentences]
    if embedder is None or not sentences or not sources:
        return lex
    vs = embedder.embed_documents(sentences, progress=False)
    vh = embedder.embed_documents([f"{h.title}\n{h.text}" for h in sources], progress=False)
    cos = [[max(0.0, sum(a * b for a, b in zip(x, y))) for y in vh] for x in vs]
    return [[0.6 * lex[i][j] + 0.4 * cos[i][j] for j in range(len(sources))] for i in range(len(sentences))]


def attribute(text: str, sources: list[Hit], threshold: float, embedder=None) -> tuple[str, list[Citation], list[str]]:
    """Return (cited text, citations in order of first use, dropped sentences)."""
    parsed = [strip_markers(s) for s in split_sentences(text)]
    parsed = [(s, n) for s, n in parsed if s and not re.fullmatch(r"[\W_]*", s)]
    support = support_matrix([s for s, _ in parsed], sources, embedder)
    kept, dropped, order = [], [], []
    for (sentence, claimed), row in zip(parsed, support):
        valid = [n for n in dict.fromkeys(claimed) if 1 <= n <= len(sources) and row[n - 1] >= threshold]
        if not valid and row:
            best = max(range(len(row)), key=row.__getitem__)
            valid = [best + 1] if row[best] >= threshold else []
        if not valid:
            dropped.append(sentence)
            continue
        order.extend(n for n in valid if n not in order)
        body = sentence[:-1] if sentence[-1] in ".!?" else sentence
        end = sentence[-1] if sentence[-1] in ".!?" else "."
        kept.append(f"{body} {''.join(f'[{n}]' for n in valid)}{end}")
    cites = [Citation(n, sources[n - 1].title, sources[n - 1].paper_id, sources[n - 1].text) for n in order]
    return " ".join(kept), cites, dropped
