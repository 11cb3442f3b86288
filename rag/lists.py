"""List questions ("Which papers ...?"): retrieve wide, decide inclusion paper by paper.

The question without its list prefix is the criterion ("Which papers in the collection use a
Mixture-of-Experts architecture?" -> "use a Mixture-of-Experts architecture"). Tens of papers are
retrieved and scored with ``rag.evidence``; a paper is included when its best sentence scores at
least ``MIN_SCORE`` and at least ``RELATIVE`` x the best paper's, up to ``MAX_PAPERS``. Each
included paper becomes one cited line, with its best sentence as the quote. The thresholds are
calibrated on the dev set's list questions (``bench/answer_quality.py --calibrate``). On a CPU the
LLM is not asked paper by paper (tens of calls); the scorer decides alone.

Example:
    >>> criterion("Which papers in the collection use a Mixture-of-Experts (MoE) architecture?")
    'use a Mixture-of-Experts (MoE) architecture'
    >>> criterion("List all papers that work on lip reading.")
    'work on lip reading'
"""

from __future__ import annotations

import re

RETRIEVE = 30  # papers retrieved for a list question
MIN_SCORE = 0.48
RELATIVE = 0.70
MAX_PAPERS = 12

_PREFIX = re.compile(
    r"^\s*(which|what|list|name|find|show( me)?|give( me)?|are there( any)?|enumerate)\b((\s+(all|the|any|of|some|other))*)"
    r"(\s+[\w-]+){0,2}?\s+(papers|studies|articles|publications)\b(\s+(in|from|of) (the|this|your) (collection|index|corpus|set))?"
    r"(\s+(that|which|who|whose|where|about|on))?\s*", re.I)


def criterion(question: str) -> str:
    """The condition a paper must meet, from a list question."""
    rest = _PREFIX.sub("", question, count=1).strip().rstrip("?.!").strip()
    return rest or question.strip()


def include(papers: list) -> list:
    """The scored papers (``rag.evidence.SourcePaper``) that meet the criterion, best first."""
    order = sorted(papers, key=lambda p: (-p.best, p.rank))
    if not order:
        return []
    floor = max(MIN_SCORE, RELATIVE * order[0].best)
    return [p for p in order if p.best >= floor][:MAX_PAPERS]
