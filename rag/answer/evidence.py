"""Evidence: whole papers for the top hits, every sentence scored against the question.

Retrieval ranks chunks; the answer stage works on papers. For each retrieved paper the chunks are
read back from the store and joined into the full abstract (chunk overlaps removed), split into
sentences with offsets, and each sentence is scored against the standalone question:

    score = COSINE * cos(question, sentence) + LEXICAL * overlap(question, sentence) + PRIOR / (1 + rank)
            (+ NUMBER_BONUS for a sentence with numbers when the question asks "how many", "how large", ...)

``overlap`` is the weighted share of the question's content words found in the sentence or the
paper's title (names x3, numbers x2, other words x1). A question that asks several things ("How
was X adapted, and what does Y add?") is also split into parts, each scored the same way, so the
selected quotes cover every part, not only the best-matching one. Within a paper (which sentences are quoted,
not the paper's evidence score), link sentences ("Code is available at https://...") rank last unless the
question asks where, and for "How can ...?" / "What method ...?" questions a "we propose ..." sentence gets
``CONTRIBUTION_BONUS``: the problem statement shares the question's words, the answer is what the paper did.
Sentence vectors are computed at query time
and cached in memory (``bench/answer_quality.py --evidence`` measures this against storing them at
ingest). Ties are broken by paper rank, then sentence position, so selection is deterministic.

Example:
    >>> parts = ["CMM-Math has 28,000 samples. It is in Chinese.", "It is in Chinese. We test GPT-4o."]
    >>> merge_chunks(parts)
    'CMM-Math has 28,000 samples. It is in Chinese. We test GPT-4o.'
    >>> question_parts("How was RLHF adapted, and what extra information is given to the reward model?")
    ['How was RLHF adapted', 'what extra information is given to the reward model']
    >>> w = question_terms("How many samples does CMM-Math have?")
    >>> sorted(w.items())
    [('cmm', 3.0), ('cmm-math', 3.0), ('many', 1.0), ('math', 3.0), ('samples', 1.0)]
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.answer.vocabulary import AUX, METHOD_NOUNS, alternation
from rag.search.retrieval import Hit
from rag.text import Sentence, content_words, flat, names, numbers, split_sentences

COSINE, LEXICAL, PRIOR = 0.55, 0.45, 0.04
# papers are ordered by best sentence + RANK_WEIGHT / (1 + retrieval rank): retrieval ranks whole chunks with
# titles, which tells paraphrased questions' papers apart better than one sentence (dev: the gold paper first
# for 72 -> 78 of 86 answerable questions, semantic 25 -> 30 of 36; flat from 0.15 to 1.0)
RANK_WEIGHT = 0.2
NUMBER_BONUS = 0.10  # for a question asking "how many / how large / what accuracy", sentences that state numbers
_ASKS_QUANTITY = re.compile(r"\b(?:how (?:many|much|large|big|long|fast|often|well|accurate)|what (?:size|number|"
                            r"percentage|fraction|share|proportion|accuracy|score|rate)|number of|size of)\b", re.I)
# "Code is available at https://...": it names the paper's project, so it matches look-ups by name, yet it
# answers nothing but "where is the code?". Such sentences rank last within their paper (quotes, the
# prompt) unless the question asks where to get something or on what terms; the paper's evidence score is
# unchanged.
_BOILERPLATE = re.compile(r"https?://|www\.|github\.com|\b(?:publicly |freely |openly )?available (?:at|on|online|here|from)\b|"
                          r"\bwill be (?:made )?(?:publicly |freely )?(?:available|released|open[- ]sourced)\b", re.I)
# "we propose / introduce ..." sentences say what a paper does: for "how can ...?" and "what method ...?" questions
# they rank higher within their paper (local scores) than the problem statement that echoes the question's words
_CONTRIBUTION = re.compile(r"\b(?:we|this (?:paper|work|study)|our (?:method|approach|framework|model))\s+(?:\w+\s+){0,2}?"
                           r"(?:propose|introduce|present|develop|design|devise|build|construct|leverage|use|employ)", re.I)
_ASKS_HOW = re.compile(rf"^\s*(?:how\s+(?:{AUX})\b|what\s+(?:[\w-]+\s+){{0,2}}?(?:{alternation(METHOD_NOUNS)})\b)", re.I)
CONTRIBUTION_BONUS = 0.2  # dev, no LLM: fact coverage of the extractive answer 0.482 -> 0.502 (0.1) / 0.514 (0.2) / 0.513 (0.4)
_ASKS_WHERE = re.compile(r"\b(?:code|github|repo|repository|url|link|website|homepage|project page|download|"
                         r"open[- ]source[ds]?|available|availability|release[ds]?|weights|checkpoints?|licen[cs]e[ds]?|"
                         r"distribut\w*|commercial\w*|access\w*)\b", re.I)
_ANAPHOR = ("it ", "its ", "this ", "these ", "they ", "their ", "such ", "the model", "the dataset", "the benchmark",
            "the method", "the framework", "our ", "both ", "however", "moreover", "furthermore", "additionally")


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
        if i > 0 and text.startswith(_ANAPHOR):
            return [i - 1, i]
        return [i]


_PART_SPLIT = re.compile(rf"(?:,?\s+and\s+|;\s*|\?\s*|,\s+)(?=(?:what|how|which|why|where|when|who|whose|{AUX}|in|on|by|to)\b)",
                         re.I)


def question_parts(question: str) -> list[str]:
    """The sub-questions of a question that asks several things (the whole question if one)."""
    parts = [p.strip(" ?,.") for p in _PART_SPLIT.split(question) if p and len(p.split()) >= 3]
    return parts if len(parts) > 1 else [question.strip()]


def merge_chunks(parts: list[str]) -> str:
    """Join consecutive chunks of one text, dropping the overlap the splitter repeated."""
    if not parts:
        return ""
    out = parts[0]
    for nxt in parts[1:]:
        k = next((k for k in range(min(len(out), len(nxt)), 0, -1) if out.endswith(nxt[:k])), 0)
        out = out + nxt[k:] if k else f"{out} {nxt}"
    return out


def load_sources(store, hits: list[Hit], lock: threading.RLock | None = None) -> list[SourcePaper]:
    """The whole abstract of every hit's paper, read back from its chunks (one store call)."""
    if not hits:
        return []
    ids = list(dict.fromkeys(h.paper_id for h in hits))
    with lock or threading.RLock():
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


def question_terms(question: str) -> dict[str, float]:
    """Content words of the question with weights: names 3, numbers 2, other words 1."""
    name_words = {w.lower() for n in names(question) for w in [n, *n.split("-")]}
    weights: dict[str, float] = {}
    for w in content_words(question):
        weight = 3.0 if w in name_words else 2.0 if w[0].isdigit() else 1.0
        weights[w] = max(weights.get(w, 0.0), weight)
    for n in numbers(question):
        weights.setdefault(n, 2.0)
    return weights


def overlap(terms: dict[str, float], text: str) -> float:
    """Weighted share of ``terms`` found in ``text``."""
    total = sum(terms.values())
    if not total:
        return 0.0
    have = set(content_words(text)) | set(numbers(text))
    return sum(w for t, w in terms.items() if t in have) / total


class EvidenceScorer:
    """Scores sentences against a question; caches sentence vectors (thread-safe)."""

    def __init__(self, embedder=None, cache_size: int = 50_000):
        self.embedder = embedder
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

    def score(self, question: str, papers: list[SourcePaper], query_vector: list[float] | None = None) -> list[SourcePaper]:
        """Fill ``scores``, ``part_scores`` and ``coverage`` of every paper; returns ``papers``."""
        parts = question_parts(question)
        queries = [(question, question_terms(question), query_vector)]
        queries += [(p, question_terms(p), None) for p in parts] if len(parts) > 1 else []
        texts = [s.text for p in papers for s in p.sentences]
        vecs = self.vectors(texts) if self.embedder is not None and texts else None
        per_query = []
        for text, terms, qv in queries:
            if vecs is not None:
                qv = qv if qv is not None else self.embedder.embed_query(text)
                if vecs and len(qv) != len(vecs[0]):
                    raise ValueError(f"query vector of {len(qv)} dims for sentence vectors of {len(vecs[0])}: pass the "
                                     "query vector of the embedder that scores evidence, or none")
                cos = [max(0.0, dot(qv, v)) for v in vecs]
            else:
                cos = [0.0] * len(texts)
            per_query.append((terms, cos, bool(_ASKS_QUANTITY.search(text))))
        asks_where = bool(_ASKS_WHERE.search(question))
        asks_how = bool(_ASKS_HOW.search(question))
        i = 0
        for p in papers:
            title_terms = set(content_words(p.title)) | set(numbers(p.title))
            p.coverage = overlap(queries[0][1], f"{p.title} {p.abstract}")
            have = [set(content_words(s.text)) | set(numbers(s.text)) for s in p.sentences]
            has_number = [bool(numbers(s.text)) for s in p.sentences]
            # within-paper order only (``local`` scores; ``scores`` and ``best`` stay): boilerplate last, and for a
            # how-question what the paper proposes first
            shift = [(-1.0 if not asks_where and _BOILERPLATE.search(s.text) else 0.0)
                     + (CONTRIBUTION_BONUS if asks_how and _CONTRIBUTION.search(s.text) else 0.0) for s in p.sentences]
            rows: list[list[float]] = [[] for _ in per_query]
            local: list[list[float]] = [[] for _ in per_query]
            for j in range(len(p.sentences)):
                for q, (terms, cos, quantity) in enumerate(per_query):
                    base = COSINE * cos[i] + PRIOR / (1 + p.rank) + (NUMBER_BONUS if quantity and has_number[j] else 0.0)
                    rows[q].append(base + LEXICAL * _overlap(terms, have[j], title_terms))
                    local[q].append(base + LEXICAL * _overlap(terms, have[j], title_terms, _idf(terms, have)) + shift[j])
                i += 1
            p.scores, p.part_scores = rows[0], local[1:]
            p.local_scores = local[0]
        return papers


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


def _overlap(terms: dict[str, float], have: set[str], title_terms: set[str], idf: dict[str, float] | None = None) -> float:
    """Weighted share of the question's terms in the sentence; title words count at half weight (the
    sentence is about that paper); ``idf`` scales each found term by its within-paper IDF."""
    total = sum(terms.values())
    if not total:
        return 0.0
    got = 0.0
    for t, w in terms.items():
        if t in have:
            got += w * (idf[t] if idf else 1.0)
        elif t in title_terms:
            got += 0.5 * w
    return got / total


def calls_by_name(question: str, title: str) -> bool:
    """Does the question call the paper by its short name (the title before its colon)?

    >>> calls_by_name("How do MIO and LLaVA-KD train?", "LLaVA-KD: A Framework of Distilling MLLMs")
    True
    >>> calls_by_name("How do MLLMs train?", "Distilling MLLMs")
    False
    """
    return ":" in title and flat(title.split(":")[0]) in {flat(n) for n in names(question)}


def candidates(question: str, hits: list[Hit], n: int) -> list[Hit]:
    """The first ``n`` hits, plus any later hit that the question calls by name."""
    return hits[:n] + [h for h in hits[n:] if calls_by_name(question, h.title)]


def with_named(question: str, hits: list[Hit], search: Callable[[str], list[Hit]]) -> list[Hit]:
    """``hits`` plus the papers the question calls by short name that retrieval missed ("How do AIM and
    GlobalCom^2 ...?": "aim" is a common word to BM25 and to a dense vector). ``search`` runs one BM25
    search per name; ``candidates`` then keeps these papers whatever their rank.

    >>> from types import SimpleNamespace as H
    >>> index = [H(title="AIM: Adaptive Inference", paper_id="a"), H(title="Aim high", paper_id="b")]
    >>> [h.title for h in with_named("How does AIM merge tokens?", [], lambda name: index)]
    ['AIM: Adaptive Inference']
    >>> with_named("How does AIM merge tokens?", index[:1], lambda name: 1 / 0)  # found already: no search
    [namespace(title='AIM: Adaptive Inference', paper_id='a')]
    """
    have, out = {h.paper_id for h in hits}, list(hits)
    found = {flat(h.title.split(":")[0]) for h in hits if calls_by_name(question, h.title)}
    for name in names(question):
        if flat(name) in found:  # retrieval already has the paper of that name
            continue
        for h in search(name):
            if h.paper_id not in have and calls_by_name(question, h.title):
                have.add(h.paper_id)
                out.append(h)
    return out


def select(papers: list[SourcePaper], max_papers: int = 3, per_paper: int = 3, keep: float = 0.75,
           question: str = "") -> list[tuple[SourcePaper, list[int]]]:
    """The papers worth showing the model and the sentence indexes to quote from each (in abstract order).

    Papers are taken in order of best sentence score plus ``RANK_WEIGHT / (1 + rank)``; one is kept
    when its best sentence scores at least ``keep`` x the best paper's. From each kept
    paper: the best sentence for each part of the question, then the best overall, up to ``per_paper``
    (``per_paper - 1`` for papers after the first), each with the sentence before it when it starts
    by referring back ("It ...", "This ..."). Papers the question calls by their short name ("What is
    NVLM?", "How do MIO and LLaVA-KD ...") come first, whatever their scores.
    """
    if not papers:
        return []
    order = sorted(papers, key=lambda p: (-(p.best + RANK_WEIGHT / (1 + p.rank)), p.rank))
    top = max(p.best for p in papers)
    named = [p for p in order if calls_by_name(question, p.title)]
    order = named + [p for p in order if p not in named]  # papers asked about by name first, whatever their scores
    out = []
    for p in order[:max(max_papers, len(named))]:
        if out and p.best < keep * top and p not in named:
            break
        n = per_paper if not out else max(1, per_paper - 1)
        chosen: list[int] = []
        for row in p.part_scores:
            best = min(range(len(row)), key=lambda i: (-row[i], i), default=None)
            if best is not None and best not in chosen and len(chosen) < n:
                chosen.append(best)
        for i in p.ranked():
            if len(chosen) >= n:
                break
            if i not in chosen and p.scores[i] >= 0.5 * p.best:
                chosen.append(i)
        picked = sorted({j for i in chosen for j in p.context(i)})
        out.append((p, picked))
    return out
