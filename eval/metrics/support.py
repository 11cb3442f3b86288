r"""Citation support, judged independently of the system's own attribution scorer.

The system cites a sentence only after its own checks (``rag.answer.citations``), so "every citation
points to a retrieved paper" holds by construction and proves nothing. This judge re-checks each
cited sentence against the *whole abstract* of the paper it cites, with the eval's own
normalisation (``eval.metrics.answers``) and the gold answer facts:

* a sentence that contains gold facts is supported when every one of those facts occurs in a cited
  abstract (or title);
* any other sentence is supported when every number in it occurs in a cited abstract and at least
  ``MIN_SHARE`` of its other content tokens do.

``citation_support`` is the share of cited sentences that are supported (None when nothing is cited).

>>> abstracts = {1: "CMM-Math: A Dataset. CMM-Math contains over 28,000 samples."}
>>> citation_support("CMM-Math has 28k samples [1]. It has 50,000 images [1].", abstracts, facts=["28,000"])
0.5
>>> citation_support("No citations here.", abstracts, facts=[]) is None
True
>>> citation_support("2 indexed papers match:\n- CMM-Math: A Dataset [1]", abstracts, facts=[])  # the count is no claim
1.0
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from eval.metrics.answers import canonical_tokens, fact_present

MIN_SHARE = 0.5
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?\]])\s+(?=[\"\u201c'(A-Z0-9\[])")
_STOP = frozenset("a an the and or of to in on for with by from as at is are was were be it its this that these those "
                  "which who what how does do has have can also than into over their they we our".split())


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """(sentence without markers, cited numbers) for each sentence of ``text`` that cites something.

    A marker after the full stop ("It has 28k samples. [1]") cites the sentence before it.

    >>> cited_sentences("It has 28k samples. [1] It is Chinese [2]. No marker.")
    [('It has 28k samples.', [1]), ('It is Chinese .', [2])]
    """
    sentences: list[tuple[str, list[int]]] = []
    # lines are separate statements (a list answer: a header line, then one "- Title [n]" line per paper)
    for line in text.splitlines():
        first = len(sentences)
        for s in _SENTENCE_END.split(" ".join(line.split())):
            nums = [int(n) for m in _MARKER.finditer(s) for n in m.group(1).split(",")]
            bare = _MARKER.sub("", s).strip()
            if nums and not bare and len(sentences) > first:  # only markers: they cite the sentence before
                sentences[-1][1].extend(nums)
            else:
                sentences.append((bare, nums))
    return [(s, nums) for s, nums in sentences if nums]


def sentence_supported(sentence: str, sources: Sequence[str], facts: Sequence[str]) -> bool:
    """Is ``sentence`` supported by one of the cited ``sources`` (title + abstract texts)?"""
    if not sources:
        return False
    in_sentence = [f for f in facts if fact_present(f, sentence)]
    if in_sentence:
        return all(any(fact_present(f, src) for src in sources) for f in in_sentence)
    tokens = [t for t in canonical_tokens(sentence) if t not in _STOP]
    if not tokens:
        return False
    have = set()
    for src in sources:
        have.update(canonical_tokens(src))
    numbers = [t for t in tokens if any(c.isdigit() for c in t)]
    if any(n not in have for n in numbers):
        return False
    words = [t for t in tokens if t not in numbers]
    return not words or sum(w in have for w in words) / len(words) >= MIN_SHARE


def citation_support(text: str, sources_by_number: Mapping[int, str], facts: Sequence[str] = ()) -> float | None:
    """Share of the cited sentences of ``text`` that the cited sources support (see the module docstring)."""
    judged = [sentence_supported(s, [sources_by_number[n] for n in nums if n in sources_by_number], facts)
              for s, nums in cited_sentences(text)]
    return sum(judged) / len(judged) if judged else None
