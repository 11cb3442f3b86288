"""Quote-level citations: each answer sentence is matched to the quote that supports it.

Small local models do not cite reliably, so citations are checked, not trusted. For every sentence
of the model's answer, each candidate quote (one sentence, or two adjacent sentences, of a paper
shown to the model) is checked and scored:

* claims: every number and every name in the answer sentence must occur in the quote or in the
  paper's title. A sentence that states "50,000 samples" when the quote says "28,000" has no
  supporting quote, and is dropped.
* support: ``support_lexical * word overlap + support_cosine * embedding cosine`` between sentence and quote,
  at least ``attribution_threshold`` (the numbers: ``answer.policy``).
* content: a sentence must say something about the question. Three or more informative words do,
  unless every one of them is the question's own (the 0.5B restates a long paraphrase as its answer;
  a yes/no question's restatement is its answer, and stays);
  a question that asks only for a count or an amount ("How many pairs ...?") is answered only by a sentence
  with a number; a bare name ("MultiMAE.") only answers a question asking for one ("Which method ...?"); two
  words must include one that is not a number and one the question uses ("28,000 samples." for
  "how many samples"). "Benchmark.", "2,138.", "436M parameters." (asked: vocabulary size) and
  "The paper does not mention ..." are not citable claims.
* new: a sentence (4+ informative words) whose words the answer's earlier sentences already used, at
  least ``repeat_share`` of them, is a repetition (small models loop: "The VTC-CLS method uses the [CLS]
  token ..." three times) and is dropped.
* subject: when the question names things that the papers mention (``subjects``), the quote must
  come from a paper that mentions one of them: an answer about FILIP is not cited to another paper
  that happens to contain the same number.

The model's own ``[n]`` is kept when paper n has a passing quote; otherwise the best passing quote
decides; a single sentence is preferred to a pair. Ties go to the lower paper number, then the
earlier quote. Sentences without a passing
quote are dropped, so what remains is cited to a quote that contains its claims.

Example:
    >>> from rag.answer.evidence import SourcePaper
    >>> from rag.config import AnswerPolicy
    >>> from rag.search.retrieval import Hit
    >>> from rag.text import split_sentences
    >>> abstract = "We release CMM-Math. It has 28,000 samples in Chinese."
    >>> p = SourcePaper(Hit("CMM-Math: A Dataset", 1, "", "a"), 0, abstract, split_sentences(abstract))
    >>> r = attribute("CMM-Math has 28,000 samples [2]. It has 50,000 images [1].", [p], AnswerPolicy(attribution_threshold=0.3))
    >>> r.text, r.dropped
    ('CMM-Math has 28,000 samples [1].', ['It has 50,000 images.'])
    >>> [(q.text, q.start) for q in r.citations[0].quotes]
    [('It has 28,000 samples in Chinese.', 21)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.answer.question import Question
from rag.answer.result import Citation, Quote
from rag.answer.evidence import dot
from rag.answer.vocabulary import META
from rag.config import AnswerPolicy
from rag.text import content_words, flat, names, numbers, proper_nouns, split_sentences

_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")


def is_claim(sentence: str, q: Question | None = None) -> bool:
    """Does the sentence state something citable about the question ``q`` (see the module docstring)?

    >>> [is_claim(s) for s in ("CMM-Math has 28,000 samples.", "MultiMAE.", "Benchmark.", "2,138.", "The paper does not mention GPUs.")]
    [True, True, False, False, False]
    >>> is_claim("436M parameters.", Question("What vocabulary size does Qwen2-VL use?")), is_claim("DPO.", Question("What beta value works best?"))
    (False, False)
    >>> is_claim("28,000 samples.", Question("How many samples does it have?")), is_claim("MultiMAE.", Question("Which model uses masks?"))
    (True, True)
    """
    if META.search(sentence):
        return False
    words = set(content_words(sentence))
    whole = [w for w in words if not any(w != o and w in o.split("-") for o in words)]  # "cmm-math", not also "math"
    if q is not None and not numbers(sentence) and q.only_quantity:
        return False  # "How many pairs ...?" -> "The dataset includes image and video tasks." answers nothing
    if len(whole) >= 3:
        return q is None or not q.echoed_by(sentence)
    if names(sentence) and all(w in {x.lower() for n in names(sentence) for x in [n, *n.split("-")]} for w in whole):
        return q is None or q.asks_name  # a bare name
    if len(whole) < 2 or all(w[0].isdigit() for w in whole):
        return False
    return q is None or bool(set(whole) & q.content_word_set)


def strip_markers(sentence: str) -> tuple[str, list[int]]:
    """Remove ``[n]`` / ``[n, m]`` markers; return the sentence and the numbers cited.

    >>> strip_markers("A does X [1, 2] and Y [3].")
    ('A does X and Y.', [1, 2, 3])
    """
    nums = [int(n) for m in _MARKER.finditer(sentence) for n in m.group(1).split(",")]
    clean = _MARKER.sub("", sentence).strip()
    clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
    return clean, nums


def claims_hold(sentence: str, quote: str, title: str = "") -> bool:
    """Every number and name of ``sentence`` occurs in ``quote`` or ``title``.

    >>> claims_hold("CMM-Math has 28K samples.", "It contains over 28,000 samples.", "CMM-Math")
    True
    >>> claims_hold("It has 50,000 samples.", "It contains over 28,000 samples.")
    False
    """
    source = f"{quote} {title}"
    have_numbers = set(numbers(source))
    if any(n not in have_numbers for n in numbers(sentence)):
        return False
    have = flat(source)
    return all(flat(n) in have for n in [*names(sentence), *proper_nouns(sentence)])


def lexical_support(sentence: str, quote: str, title: str = "") -> float:
    """Share of the sentence's content words found in the quote or the title."""
    words = content_words(sentence)
    if not words:
        return 0.0
    have = set(content_words(f"{quote} {title}")) | set(numbers(quote))
    return sum(w in have for w in words) / len(words)


@dataclass
class Candidate:
    paper: int  # 0-based position of the paper in the prompt
    first: int  # sentence index of the quote's first sentence
    last: int  # ... and last sentence (first == last for one sentence)


@dataclass
class Attribution:
    text: str  # kept sentences, each ending with its [n] markers
    citations: list[Citation]  # in order of first citation; quotes: supporting first, then the evidence shown
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # kept sentences without markers


def _candidates(papers) -> list[Candidate]:
    out = []
    for pi, p in enumerate(papers):
        n = len(p.sentences)
        out += [Candidate(pi, i, i) for i in range(n)]
        out += [Candidate(pi, i, i + 1) for i in range(n - 1)]
    return out


def _quote_text(paper, c: Candidate) -> str:
    return paper.abstract[paper.sentences[c.first].start : paper.sentences[c.last].end]


class Attributor:
    """Cites sentences one at a time, as the model finishes them (so only checked text is ever shown).

    ``papers``: ``rag.answer.evidence.SourcePaper``, numbered 1.. in this order. ``evidence``: sentence indexes
    per 0-based paper that were shown to the model; they are added to each cited paper's quotes.
    ``scorer`` (an ``EvidenceScorer``) supplies cached sentence vectors for the cosine part; without it
    (or an ``embedder``) support is word overlap alone. ``subjects``: names from the question; when
    given, only papers that mention one of them are cited. ``question``: what a short sentence must
    answer (see ``is_claim``).
    """

    def __init__(self, papers: list, policy: AnswerPolicy | None = None, embedder=None, scorer=None,
                 evidence: dict[int, list[int]] | None = None, subjects: list[str] | None = None,
                 question: Question | None = None):
        self.papers, self.evidence, self.question = papers, evidence or {}, question
        self.policy = policy or AnswerPolicy()
        self.embedder, self.scorer = embedder, scorer
        wanted = [flat(n) for n in subjects or [] if flat(n)]
        eligible = [not wanted or any(w in flat(f"{p.title} {p.abstract}") for w in wanted) for p in papers]
        self.cands = [c for c in _candidates(papers) if eligible[c.paper]]
        self.quote_texts = [_quote_text(papers[c.paper], c) for c in self.cands]
        self._quote_vectors = None
        self.kept: list[str] = []
        self.plain: list[str] = []
        self.dropped: list[str] = []
        self.used: dict[int, list[Quote]] = {}
        self.order: list[int] = []
        self.said: set[str] = set()  # the informative words of the sentences kept so far

    def add(self, text: str) -> str | None:
        """Check one sentence (with the model's ``[n]`` markers): the cited sentence, or None if dropped."""
        sentence, claimed = strip_markers(" ".join(text.split()))
        if not sentence or not re.search(r"\w", sentence):
            return None
        if not is_claim(sentence, self.question):
            self.dropped.append(sentence)
            return None
        words = set(content_words(sentence)) | set(numbers(sentence))
        if len(words) >= 4 and len(words & self.said) >= self.policy.repeat_share * len(words):
            self.dropped.append(sentence)
            return None
        cos = self._cosines(sentence)
        best: tuple | None = None
        for ci, c in enumerate(self.cands):
            p = self.papers[c.paper]
            if not claims_hold(sentence, self.quote_texts[ci], p.title):
                continue
            support = (self.policy.support_lexical * lexical_support(sentence, self.quote_texts[ci], p.title)
                       + self.policy.support_cosine * cos[ci])
            if support < self.policy.attribution_threshold:
                continue
            key = (c.paper + 1 not in claimed, c.last - c.first, -support, c.paper, c.first)  # one sentence before two
            if best is None or key < best[0]:
                best = (key, ci)
        if best is None:
            self.dropped.append(sentence)
            return None
        c = self.cands[best[1]]
        p = self.papers[c.paper]
        n = c.paper + 1
        if n not in self.order:
            self.order.append(n)
        quote = Quote(self.quote_texts[best[1]], p.sentences[c.first].start, p.sentences[c.last].end, supports=sentence)
        self.used.setdefault(n, []).append(quote)
        body, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!?" else (sentence, ".")
        cited = f"{body} [{n}]{end}"
        self.kept.append(cited)
        self.plain.append(sentence)
        self.said |= words
        return cited

    def result(self) -> Attribution:
        """Everything cited so far: text, citations (supporting quotes first, then the evidence shown)."""
        citations = []
        for n in self.order:
            p = self.papers[n - 1]
            quotes = list(self.used[n])
            covered = {(q.start, q.end) for q in quotes}
            for i in self.evidence.get(n - 1, []):
                s = p.sentences[i]
                if not any(a <= s.start and s.end <= b for a, b in covered):
                    quotes.append(Quote(s.text, s.start, s.end))
                    covered.add((s.start, s.end))
            citations.append(Citation(n, p.title, p.paper_id, p.abstract, quotes))
        return Attribution(" ".join(self.kept), citations, list(self.dropped), list(self.plain))

    def _cosines(self, sentence: str) -> list[float]:
        if not self.cands or (self.embedder is None and self.scorer is None):
            return [0.0] * len(self.cands)
        if self._quote_vectors is None:
            self._quote_vectors = self._vectors(self.quote_texts)
        (v,) = self._vectors([sentence])
        return [max(0.0, dot(v, q)) for q in self._quote_vectors]

    def _vectors(self, texts: list[str]) -> list[list[float]]:
        if self.scorer is not None:
            return self.scorer.vectors(texts)
        return self.embedder.embed_documents(texts, progress=False)


def attribute(text: str, papers: list, policy: AnswerPolicy | None = None, embedder=None, scorer=None,
              evidence: dict[int, list[int]] | None = None, subjects: list[str] | None = None,
              question: Question | None = None) -> Attribution:
    """Cite every sentence of ``text`` (see ``Attributor``)."""
    att = Attributor(papers, policy, embedder, scorer, evidence, subjects, question)
    for s in split_sentences(" ".join(text.split())):
        att.add(s.text)
    return att.result()


