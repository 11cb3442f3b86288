"""Evidence: whole papers for the top hits, every sentence scored against the question.

Retrieval ranks chunks; the answer stage works on papers. For each retrieved paper the chunks are
read back from the store and joined into the full abstract (chunk overlaps removed), split into
sentences with offsets, and each sentence is scored against the standalone question (weights: ``answer.policy``):

    score = evidence_cosine * cos(question, sentence) + evidence_lexical * overlap(question, sentence)
            + evidence_rank_prior / (1 + rank)  (+ number_bonus for a sentence with numbers when the question asks a quantity)

``overlap`` is the weighted share of the question's terms found in the sentence or the paper's title (names
``term_weight_name``, numbers ``term_weight_number``, other words 1). A question that asks several things
("How was X adapted, and what does Y add?") is also scored part by part, so the selected quotes cover every
part, not only the best-matching one. Within a paper (which sentences are quoted, not the paper's evidence score),
link sentences ("Code is available at https://...") rank last unless the question asks where, and for "How can
...?" / "What method ...?" questions a "we propose ..." sentence gets ``contribution_bonus``: the problem
statement shares the question's words, the answer is what the paper did. Sentence vectors are computed at query
time and cached in memory (all-MiniLM-L6-v2: 0.19 s p50 per question on 2 cores, ``bench/semantic.py``).
Ties are broken by paper rank, then sentence position, so selection is deterministic.

Example:
    >>> parts = ["CMM-Math has 28,000 samples. It is in Chinese.", "It is in Chinese. We test GPT-4o."]
    >>> merge_chunks(parts)
    'CMM-Math has 28,000 samples. It is in Chinese. We test GPT-4o.'
    >>> from rag.config import AnswerPolicy
    >>> sorted(weighted_terms(Question("How many samples does CMM-Math have?"), AnswerPolicy()).items())
    [('cmm', 3.0), ('cmm-math', 3.0), ('many', 1.0), ('math', 3.0), ('samples', 1.0)]
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.answer.question import NAME, NUMBER, Question
from rag.answer.vocabulary import ANAPHOR, BOILERPLATE, CONTRIBUTION
from rag.config import AnswerPolicy
from rag.search.retrieval import Hit
from rag.text import Sentence, content_words, flat, numbers, split_sentences


@dataclass
class SourcePaper:
    """A retrieved paper as the answer stage sees it: the whole abstract, split and scored."""

    hit: Hit  # the best chunk, as retrieved
    rank: int  # 0-based retrieval rank
    abstract: str
    sentences: list[Sentence]
    scores: list[float] = field(default_factory=list)  # evidence score per sentence (comparable across papers)
    local_scores: list[float] = field(default_factory=list)  # the same with within-paper IDF (ranks sentences)
    part_scores: list[list[float]] = field(default_factory=list)  # per question part, per sentence, with IDF
    coverage: float = 0.0  # weighted share of the question's terms found anywhere in title + abstract

    @property
    def title(self) -> str:
        return self.hit.title

    @property
    def paper_id(self) -> str:
        return self.hit.paper_id

    @property
    def best(self) -> float:
        return max(self.scores, default=0.0)

    def ranked(self) -> list[int]:
        """Sentence indexes, best first by ``local_scores`` (ties: earlier sentence first)."""
        scores = self.local_scores or self.scores
        return sorted(range(len(self.sentences)), key=lambda i: (-scores[i], i))

    def context(self, i: int) -> list[int]:
        """Sentence i, preceded by the sentence before it when i starts by referring back ("It ...")."""
        text = self.sentences[i].text.lower()
        if i > 0 and text.startswith(ANAPHOR):
            return [i - 1, i]
        return [i]


def merge_chunks(parts: list[str]) -> str:
    """Join consecutive chunks of one text, dropping the overlap the splitter repeated."""
    if not parts:
        return ""
    out = parts[0]
    for nxt in parts[1:]:
        k = next((k for k in range(min(len(out), len(nxt)), 0, -1) if out.endswith(nxt[:k])), 0)
        out = out + nxt[k:] if k else f"{out} {nxt}"
    return out


def load_sources(store, hits: list[Hit]) -> list[SourcePaper]:
    """The whole abstract of every hit's paper, read back from its chunks (one store call; ``store`` is the
    App's locked store, so an ingest in another thread never interleaves with the read)."""
    if not hits:
        return []
    ids = list(dict.fromkeys(h.paper_id for h in hits))
    rows = store.scroll({"paper_id": ids}, ["paper_id", "chunk", "text"], limit=max(1000, 64 * len(ids)))
    chunks: dict[str, list[tuple[int, str]]] = {}
    for _, p in rows:
        chunks.setdefault(p["paper_id"], []).append((p.get("chunk", 0), p.get("text", "")))
    out = []
    for rank, h in enumerate(hits):
        parts = [t for _, t in sorted(chunks.get(h.paper_id, [(0, h.text)]))]
        abstract = merge_chunks(parts)
        out.append(SourcePaper(h, rank, abstract, split_sentences(abstract)))
    return out


def weighted_terms(q: Question, policy: AnswerPolicy) -> dict[str, float]:
    """The question's terms with their weights: names ``term_weight_name``, numbers ``term_weight_number``, others 1."""
    weight = {NAME: policy.term_weight_name, NUMBER: policy.term_weight_number}
    return {t: weight.get(kind, 1.0) for t, kind in q.term_kinds.items()}


class EvidenceScorer:
    """Scores sentences against a question with ``policy``'s weights; caches sentence vectors (thread-safe)."""

    def __init__(self, embedder=None, policy: AnswerPolicy | None = None, cache_size: int = 50_000):
        self.embedder = embedder
        self.policy = policy or AnswerPolicy()
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def vectors(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            new = self.embedder.embed_documents(missing, progress=False)
            with self._lock:
                for t, v in zip(missing, new):
                    self._cache[t] = v
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for t in texts:
                self._cache.move_to_end(t)
                out.append(self._cache[t])
            return out

    def embed_query(self, text: str) -> list[float] | None:
        """The query vector ``score`` and ``similarities`` take (None without an embedder)."""
        return None if self.embedder is None else self.embedder.embed_query(text)

    def similarities(self, texts: list[str], query_vector: list[float] | None) -> list[float]:
        """Cosine of the query (its ``embed_query`` vector) and each text (0.0 each without one); text vectors are cached."""
        if query_vector is None or not texts:
            return [0.0] * len(texts)
        return [dot(query_vector, v) for v in self.vectors(texts)]

    def closeness(self, q: Question, hits: list[Hit]) -> float:
        """The highest cosine of the question and a hit's title + chunk, in the evidence model's units (what the
        retrieval cosine measures, in the units ``answer.policy`` is calibrated in whatever model retrieves)."""
        if self.embedder is None or not hits:
            return 0.0
        return max(self.similarities([f"{h.title}\n{h.text}" for h in hits], self.embedder.embed_query(q.text)))

    def _cosines(self, queries: list[tuple[Question, list[float] | None]], texts: list[str]) -> list[list[float]]:
        """Per query, the cosine of it and each text (zeros without an embedder)."""
        if self.embedder is None or not texts:
            return [[0.0] * len(texts) for _ in queries]
        vecs = self.vectors(texts)
        out = []
        for q, qv in queries:
            qv = qv if qv is not None else self.embedder.embed_query(q.text)
            if vecs and len(qv) != len(vecs[0]):
                raise ValueError(f"query vector of {len(qv)} dims for sentence vectors of {len(vecs[0])}: pass the "
                                 "query vector of the embedder that scores evidence, or none")
            out.append([max(0.0, dot(qv, v)) for v in vecs])
        return out

    def score(self, q: Question, papers: list[SourcePaper], query_vector: list[float] | None = None) -> list[SourcePaper]:
        """Fill ``scores``, ``local_scores``, ``part_scores`` and ``coverage`` of every paper; returns ``papers``."""
        pol = self.policy
        queries = [q, *q.parts]
        texts = [s.text for p in papers for s in p.sentences]
        cosines = self._cosines([(q, query_vector), *((part, None) for part in q.parts)], texts)
        per_query = [(weighted_terms(x, pol), cos, x.asks_quantity) for x, cos in zip(queries, cosines)]
        i = 0
        for p in papers:
            title_terms = set(content_words(p.title)) | set(numbers(p.title))
            p.coverage = overlap(per_query[0][0], f"{p.title} {p.abstract}")
            have = [set(content_words(s.text)) | set(numbers(s.text)) for s in p.sentences]
            has_number = [bool(numbers(s.text)) for s in p.sentences]
            # within-paper order only (``local`` scores; ``scores`` and ``best`` stay): boilerplate last, and for a
            # how-question what the paper proposes first
            shift = [(-pol.link_penalty if not q.asks_where and BOILERPLATE.search(s.text) else 0.0)
                     + (pol.contribution_bonus if q.asks_how and CONTRIBUTION.search(s.text) else 0.0) for s in p.sentences]
            rows: list[list[float]] = [[] for _ in per_query]
            local: list[list[float]] = [[] for _ in per_query]
            for j in range(len(p.sentences)):
                for k, (terms, cos, quantity) in enumerate(per_query):
                    base = (pol.evidence_cosine * cos[i] + pol.evidence_rank_prior / (1 + p.rank)
                            + (pol.number_bonus if quantity and has_number[j] else 0.0))
                    rows[k].append(base + pol.evidence_lexical * _overlap(terms, have[j], title_terms, pol.evidence_title_share))
                    local[k].append(base + pol.evidence_lexical * _overlap(terms, have[j], title_terms, pol.evidence_title_share,
                                                                           _idf(terms, have)) + shift[j])
                i += 1
            p.scores, p.part_scores = rows[0], local[1:]
            p.local_scores = local[0]
        return papers


def overlap(terms: dict[str, float], text: str) -> float:
    """Weighted share of ``terms`` found in ``text``."""
    total = sum(terms.values())
    if not total:
        return 0.0
    have = set(content_words(text)) | set(numbers(text))
    return sum(w for t, w in terms.items() if t in have) / total


def dot(a: list[float], b: list[float]) -> float:
    """Dot product: the cosine of two normalised embedding vectors."""
    return sum(x * y for x, y in zip(a, b))


def _idf(terms: dict[str, float], sentences: list[set[str]]) -> dict[str, float]:
    """Within-paper IDF of each term: a word in every sentence of the abstract tells sentences apart least."""
    n = len(sentences)
    out = {}
    for t in terms:
        df = sum(t in s for s in sentences)
        out[t] = math.log(1 + n / (1 + df)) / math.log(1 + n) if n > 1 else 1.0
    return out


def _overlap(terms: dict[str, float], have: set[str], title_terms: set[str], title_share: float,
             idf: dict[str, float] | None = None) -> float:
    """Weighted share of the question's terms in the sentence; title words count at ``title_share`` of their
    weight (the sentence is about that paper); ``idf`` scales each found term by its within-paper IDF."""
    total = sum(terms.values())
    if not total:
        return 0.0
    got = 0.0
    for t, w in terms.items():
        if t in have:
            got += w * (idf[t] if idf else 1.0)
        elif t in title_terms:
            got += title_share * w
    return got / total


def undecided(papers: list[SourcePaper], policy: AnswerPolicy) -> bool:
    """Does the evidence fail to single a paper out (best sentence under ``decisive_evidence``)? Then the model is
    shown more of what retrieval found (``undecided_sources`` papers, kept down to ``undecided_keep`` of the best):
    a question in other words than its paper's shares none of its words, so its sentences score low and the
    paper retrieval ranked well is lost to the evidence order."""
    return max((p.best for p in papers), default=0.0) < policy.decisive_evidence


def candidates(q: Question, hits: list[Hit], n: int) -> list[Hit]:
    """The first ``n`` hits, plus any later hit that the question calls by name."""
    return hits[:n] + [h for h in hits[n:] if q.calls_by_name(h.title)]


def with_named(q: Question, hits: list[Hit], search: Callable[[str], list[Hit]]) -> list[Hit]:
    """``hits`` plus the papers the question calls by short name that retrieval missed ("How do AIM and
    GlobalCom^2 ...?": "aim" is a common word to BM25 and to a dense vector). ``search`` runs one BM25
    search per name; ``candidates`` then keeps these papers whatever their rank.

    >>> from types import SimpleNamespace as H
    >>> index = [H(title="AIM: Adaptive Inference", paper_id="a"), H(title="Aim high", paper_id="b")]
    >>> [h.title for h in with_named(Question("How does AIM merge tokens?"), [], lambda name: index)]
    ['AIM: Adaptive Inference']
    >>> with_named(Question("How does AIM merge tokens?"), index[:1], lambda name: 1 / 0)  # found already: no search
    [namespace(title='AIM: Adaptive Inference', paper_id='a')]
    """
    have, out = {h.paper_id for h in hits}, list(hits)
    found = {flat(h.title.split(":")[0]) for h in hits if q.calls_by_name(h.title)}
    for name in q.names:
        if flat(name) in found:  # retrieval already has the paper of that name
            continue
        for h in search(name):
            if h.paper_id not in have and q.calls_by_name(h.title):
                have.add(h.paper_id)
                out.append(h)
    return out


def select(papers: list[SourcePaper], q: Question, policy: AnswerPolicy, max_papers: int,
           keep: float | None = None) -> list[tuple[SourcePaper, list[int]]]:
    """The papers worth showing the model and the sentence indexes to quote from each (in abstract order).

    Papers are taken in order of best sentence score plus ``paper_rank_weight / (1 + rank)``; one is kept
    when its best sentence scores at least ``keep_papers`` x the best paper's. From each kept paper: the best
    sentence for each part of the question, then the best overall (at least ``runner_up_share`` of the paper's
    best), up to ``quotes_per_paper`` (one fewer for papers after the first), each with the sentence before it
    when it starts by referring back ("It ...", "This ..."). Papers the question calls by their short name
    ("What is NVLM?", "How do MIO and LLaVA-KD ...") come first, whatever their scores. ``keep``: another share
    than ``policy.keep_papers`` (``undecided``).
    """
    if not papers:
        return []
    keep = policy.keep_papers if keep is None else keep
    order = sorted(papers, key=lambda p: (-(p.best + policy.paper_rank_weight / (1 + p.rank)), p.rank))
    top = max(p.best for p in papers)
    named = [p for p in order if q.calls_by_name(p.title)]
    order = named + [p for p in order if p not in named]  # papers asked about by name first, whatever their scores
    out: list[tuple[SourcePaper, list[int]]] = []
    for p in order[:max(max_papers, len(named))]:
        if out and p.best < keep * top and p not in named:
            break
        n = policy.quotes_per_paper if not out else max(1, policy.quotes_per_paper - 1)
        out.append((p, _quoted(p, n, policy.runner_up_share)))
    return out


def _quoted(p: SourcePaper, n: int, runner_up_share: float) -> list[int]:
    """Up to ``n`` sentence indexes of ``p``: the best one per question part, then the best overall; with context."""
    chosen: list[int] = []
    for row in p.part_scores:
        best = min(range(len(row)), key=lambda i: (-row[i], i), default=None)
        if best is not None and best not in chosen and len(chosen) < n:
            chosen.append(best)
    for i in p.ranked():
        if len(chosen) >= n:
            break
        if i not in chosen and p.scores[i] >= runner_up_share * p.best:
            chosen.append(i)
    return sorted({j for i in chosen for j in p.context(i)})
