"""List questions ("Which papers ...?"): retrieve wide, decide inclusion paper by paper.

The question without its list prefix is the criterion ("Which papers in the collection use a
Mixture-of-Experts architecture?" -> "use a Mixture-of-Experts architecture"). Tens of papers are
retrieved and each gets a match score for the criterion:

    match = best sentence (``rag.answer.evidence``) + list_rank_weight / (1 + retrieval rank) + list_doc_weight * cos(criterion, title + abstract)
            + list_entity_weight if the paper mentions a specific name of the criterion ("report results on MMMU")

A paper is included when its match is at least ``list_relative`` x the best paper's and its best sentence
scores at least ``list_min_best``, up to ``list_max_papers``; no paper above ``list_min_best``: nothing matches (a
refusal). The best sentence alone misses papers that meet a criterion in other words ("self-driving
cars" vs "autonomous driving"); the whole abstract's similarity and the retrieval rank catch them. A
criterion that names a dataset, a model or a method singles out the papers that mention it; names most
candidates mention ("LLMs") single out nothing and are ignored.
Each included paper becomes one cited line, with its best sentence as the quote. A question that also
asks something about each paper ("Which papers report gains on BEIR, and how large are they?") keeps that
part out of the criterion, and each line shows the paper's sentence that best answers it. The weights (``answer.policy.list_*``) are
calibrated on the dev set's list questions (``bench/answer_quality.py --calibrate --types list`` ->
``bench/results/answer_calibration_list.json``). On the first 24: set precision / recall 0.62 / 0.45
with the earlier rule (best sentence alone over a 0.48 floor), 0.73 / 0.67 with the rank and abstract
terms. The name term was added with 8 lists that name a dataset or model (dev-299..306): those went
0.57 / 0.43 -> 0.77 / 0.74, the other 30 (with six "List the X papers" forms) 0.78 / 0.69 -> 0.80 / 0.71.
Held-out test set: eval/RESULTS.md. On a CPU the LLM is not asked paper by paper (tens of calls); the
scorer decides alone.

Example:
    >>> from types import SimpleNamespace as P
    >>> from rag.config import AnswerPolicy
    >>> papers = [P(title="A", best=0.6, rank=0), P(title="B", best=0.5, rank=1), P(title="C", best=0.2, rank=2)]
    >>> [p.title for p in include(papers, [0.5, 0.45, 0.6], AnswerPolicy())]  # C: best sentence under list_min_best
    ['A', 'B']
    >>> include(papers[2:], [0.6], AnswerPolicy())  # nothing matches
    []
    >>> papers = [P(title="A", abstract="Tested on MMMU.", best=0.4, rank=2), P(title="B", abstract="", best=0.7, rank=0),
    ...           P(title="D", abstract="", best=0.45, rank=3)]
    >>> [p.title for p in include(papers, [0.4, 0.5, 0.3], AnswerPolicy(), Question("report results on MMMU"))]  # A names it
    ['A', 'B']
"""

from __future__ import annotations

import dataclasses
import re

from rag.answer.question import Question
from rag.answer.result import Citation, Quote
from rag.answer.vocabulary import RESEARCH_WORDS
from rag.config import AnswerPolicy


def mentions(text: str, name: str) -> bool:
    """Does lower-cased ``text`` mention ``name`` as a word ("mmmu-pro" and "qwen2" count, "videollama" does not)?"""
    return re.search(r"(?<!\w)" + re.escape(name.lower()) + r"(?![a-z])", text) is not None


def specific_names(criterion: Question, texts: list[str], share: float) -> list[str]:
    """The criterion's names (``Question.distinctive_terms``: datasets, models, methods) that single out
    papers: not research vocabulary, and mentioned by at most ``share`` of the candidates' lower-cased ``texts``.

    >>> specific_names(Question("report results on MMMU with LLMs such as GPT"), ["a: results on mmmu with llms.", "b: llms.", "c: llms."], 0.5)
    ['MMMU']
    """
    terms = [t for t in criterion.distinctive_terms() if t.lower() not in RESEARCH_WORDS]
    return [t for t in terms if sum(mentions(x, t) for x in texts) <= share * len(texts)]


def scored(scorer, criterion: Question, sources: list) -> tuple[list, list[float]]:
    """The candidate papers scored against the criterion: (``scorer.score`` of their sentences, cosine of
    the criterion and each title + abstract), the two inputs of ``include``; one criterion embedding."""
    vector = scorer.embed_query(criterion.text)
    papers = scorer.score(criterion, sources, vector)
    return papers, scorer.similarities([f"{p.title}. {p.abstract}" for p in papers], vector)


def match(paper, similarity: float, policy: AnswerPolicy, named: bool = False) -> float:
    """How well a scored paper (``rag.answer.evidence.SourcePaper``) meets the criterion; ``similarity`` is the
    cosine of the criterion and the paper's title + abstract, ``named``: it mentions a specific name of it."""
    return (paper.best + policy.list_rank_weight / (1 + paper.rank) + policy.list_doc_weight * similarity
            + policy.list_entity_weight * named)


def include(papers: list, similarities: list[float] | None, policy: AnswerPolicy, criterion: Question | None = None) -> list:
    """The scored papers that meet the criterion, best match first (the rule: module docstring)."""
    if not papers or max(p.best for p in papers) < policy.list_min_best:
        return []
    return cut(ranked(papers, similarities, policy, criterion), policy)


def ranked(papers: list, similarities: list[float] | None, policy: AnswerPolicy, criterion: Question | None = None) -> list:
    """(match, paper) of every candidate, best match first (ties: retrieval rank)."""
    sims = similarities if similarities is not None else [0.0] * len(papers)
    texts = [f"{p.title} {getattr(p, 'abstract', '')}".lower() for p in papers]
    names = specific_names(criterion, texts, policy.list_specific_share) if criterion and criterion.text else []
    named = [any(mentions(text, n) for n in names) for text in texts]
    return sorted(((match(p, sim, policy, n), p) for p, sim, n in zip(papers, sims, named)), key=lambda mp: (-mp[0], mp[1].rank))


def cut(matches: list, policy: AnswerPolicy) -> list:
    """The papers of ``ranked``'s (match, paper) pairs whose match is at least ``list_relative`` x the best and whose
    best sentence is at least ``list_min_best``, up to ``list_max_papers``."""
    if not matches:
        return []
    floor = policy.list_relative * matches[0][0]
    return [p for m, p in matches if m >= floor and p.best >= policy.list_min_best][:policy.list_max_papers]


def detail_sentences(scorer, query: Question, papers: list) -> list[int]:
    """For each included paper, the index of its sentence that best answers ``query`` (what the question
    asks about each paper, with the criterion: "build on CLAP: what tasks do they apply it to")."""
    return [p.ranked()[0] for p in scorer.score(query, [dataclasses.replace(p) for p in papers])]


def cited_lines(included: list, details: list[int] | None = None) -> tuple[str, list[Citation]]:
    """The list answer: one line per included paper, each cited with its best sentence as the quote.
    With ``details`` (``detail_sentences``), each line also shows that sentence, quoted first."""
    lines, citations = [], []
    for n, p in enumerate(included, 1):
        best = p.ranked()[0]
        shown = [details[n - 1]] if details else []
        quotes = [Quote(p.sentences[i].text, p.sentences[i].start, p.sentences[i].end, p.title)
                  for i in dict.fromkeys([*shown, best])]
        lines.append(f"- {p.title} [{n}]" + "".join(f": “{p.sentences[i].text}”" for i in shown))
        citations.append(Citation(n, p.title, p.paper_id, p.abstract, quotes))
    head = f"{len(included)} indexed paper{'s' if len(included) > 1 else ''} match{'es' if len(included) == 1 else ''}:\n"
    return head + "\n".join(lines), citations
