"""Is the question answerable from the indexed papers? The signals, computed from the evidence before generation.

Signals (``Signals``), all cheap; ``rag.answer.policy.decide`` turns them into the decision:

* ``missing``: the question's distinctive terms (names such as ``FlashAttention-3``, acronyms,
  capitalised words) that occur nowhere in the corpus. Each is looked up with one BM25 search in
  Qdrant and a check of the returned text, so it works at any corpus size. Acronyms of general
  vocabulary ("DNA", "HTML", "PDFs") do not count: a paper never defines them.
* ``unknown_share``: the share of the question's content words that occur nowhere in the corpus
  (a recipe or a weather question is mostly unknown words).
* ``best_evidence``: the best sentence score of the retrieved papers (``rag.answer.evidence``).
* ``best_dense``: the retrieval cosine of the closest chunk.
* ``closest``: the same closeness in the evidence model's units (``best_dense`` when that model retrieves, else
  its cosine of the question and the top hits' title + chunk, ``EvidenceScorer.closeness``): nothing in the
  corpus is near an off-topic request.
* ``name_match``: a name from the question appears in a retrieved paper's title (a look-up such as
  "What is SPIQA?" is answerable whatever the cosine says).
* ``asked_missing``: for a question that names a paper found in the index ("What licence does
  TableGPT2 use?"), the thing it asks for ("licence") appears nowhere in that paper's abstract.
  Paraphrases make this a weak signal: it only stops the extractive fallback, it never refuses.
* ``topical``: the question uses the vocabulary of ML research at all.

``quotes_answer`` is the check of the extractive fallback: do the quotes hold the thing asked for?

Example:
    >>> s = Signals(best_evidence=0.5, missing=["FlashAttention-3"])
    >>> s.to_dict()["missing"], explain("missing_terms", s)
    (['FlashAttention-3'], 'The indexed papers do not mention FlashAttention-3.')
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from rag.answer.question import Question, general_acronym
from rag.answer.vocabulary import QUANTITY_NOUNS, RESEARCH_WORDS
from rag.text import content_words, flat, numbers


@dataclass
class Signals:
    missing: list[str] = field(default_factory=list)
    unknown_share: float = 0.0
    best_evidence: float = 0.0
    best_dense: float | None = None
    closest: float = 0.0  # best_dense in answer.evidence_model's units (see the module docstring)
    name_match: bool = False
    asked_missing: list[str] = field(default_factory=list)  # what a question naming a paper asks for, absent from it
    topical: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def explain(reason: str, s: Signals) -> str:
    """One sentence saying what is missing, for a refusal of this ``reason``."""
    if reason == "missing_terms":
        return f"The indexed papers do not mention {', '.join(s.missing[:3])}."
    if reason == "off_topic":
        return ""
    return "The closest papers do not state this."


class CorpusVocabulary:
    """Answers "does this term occur anywhere in the corpus?" with BM25 searches (cached). ``store``: the App's
    locked store."""

    def __init__(self, store, cache_size: int = 100_000):
        self.store = store
        self._cache: dict[str, bool] = {}
        self._size = cache_size

    def has(self, term: str) -> bool:
        key = flat(term)
        if not key:
            return True
        if key not in self._cache:
            if len(self._cache) >= self._size:
                self._cache.clear()
            self._cache[key] = self._lookup(term, key)
        return self._cache[key]

    def _lookup(self, term: str, key: str) -> bool:
        from rag.search.store import QuerySpec, sparse_query

        sparse = sparse_query(term)
        if not sparse.indices:  # only stopwords / symbols: nothing to look up
            return True
        hits = self.store.query(QuerySpec(sparse=sparse, mode="sparse", limit=10, fields=["title", "text"]))
        return any(key in flat(f"{h.payload.get('title', '')} {h.payload.get('text', '')}") for h in hits)


def signals(q: Question, sources, best_dense: float | None, vocabulary: CorpusVocabulary, closest: float = 0.0) -> Signals:
    """The answerability signals of a question and its scored sources (``rag.answer.evidence``). For a
    translated question only names and acronyms count as distinctive (``Question.distinctive_terms``)."""
    words = list(dict.fromkeys(q.content_words))
    unknown = [w for w in words if not vocabulary.has(w)]
    missing = [t for t in q.distinctive_terms() if not vocabulary.has(t) and not general_acronym(t)]
    qnames = [flat(n) for n in q.names if len(flat(n)) >= 3]
    named = [p for p in sources if any(n in flat(p.title) for n in qnames)]
    asked_missing: list[str] = []
    if named:
        have = set(content_words(f"{named[0].title} {named[0].abstract}"))
        asked = q.asked_words
        if asked and not any(w in have or w.rstrip("s") in have or w + "s" in have for w in asked):
            asked_missing = asked
    return Signals(
        missing=missing,
        unknown_share=len(unknown) / len(words) if words else 1.0,
        best_evidence=max((p.best for p in sources), default=0.0),
        best_dense=best_dense,
        closest=closest,
        name_match=bool(named),
        asked_missing=asked_missing,
        topical=any(w in RESEARCH_WORDS for w in words) or bool(q.names),
    )


def _stem(word: str) -> str:
    """A crude stem that makes "stages"/"stage", "trained"/"training", "radiographs"/"radiograph" meet."""
    w = word.lower()
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith("ss")):
            return w[: len(w) - len(suffix)] + repl
    return w


def quotes_answer(q: Question, quotes: list[str], window: int) -> bool:
    """Do the quotes hold the thing the question asks for? Gates the extractive fallback: when the model
    declined, quoting the best sentences only helps if they state what was asked.

    Each thing asked for is one check; the quotes answer if any check passes (a two-part question
    is answered in part), or if there is nothing to check:

    * "How many X ..." / "How much X ...": a number next to X's head noun (within ``window`` words,
      ``answer.policy.quantity_window``).
    * "How much does ...", "How big is ...", "By what fraction ...": any number.
    * "What X ...": X's head noun ("rate" of "learning rate") and half of X's words, or X's acronym
      ("WER" for "word error rate"). Container words ("categories", "aspects") are not X.
    * "Which X ...", "How does ...", "Why ...": a name or a description is asked for; not checked
      (the evidence score decides).

    >>> quotes_answer(Question("How many parameters does CoLVA have?"), ["CoLVA reaches 51.06% accuracy on MMVM."], 4)
    False
    >>> quotes_answer(Question("How many long videos are in SceneWalk?"), ["SceneWalk has 87.8K long videos."], 4)
    True
    >>> quotes_answer(Question("What dropout rate does Symile use?"), ["Symile's objective is a lower bound on total correlation."], 4)
    False
    """
    text = " ".join(quotes)
    tokens = re.findall(r"[\w%.,-]+", text)
    is_number = [bool(numbers(t)) for t in tokens]
    have = {_stem(w) for w in content_words(text)}
    checks = [any(is_number)] if q.bare_quantity else []
    for kind, words in q.asked:
        words = [w for w in words if w not in QUANTITY_NOUNS]
        if not words or kind == "which":  # "which X": a name is asked for; the evidence score decides
            continue
        head = _stem(words[-1])
        if kind == "count":  # a number next to the thing counted
            near = [i for i, t in enumerate(tokens) if any(_stem(w) == head for w in content_words(t))]
            checks.append(any(any(is_number[j] for j in range(max(0, i - window), min(len(tokens), i + window + 1)))
                              for i in near))
        else:  # the head noun (or the phrase's acronym: "word error rate" -> WER) and half the words
            acronym = "".join(w[0] for w in words).upper() if len(words) > 1 else ""
            if acronym and re.search(rf"\b{acronym}s?\b", text):
                checks.append(True)
            else:
                checks.append(head in have and sum(_stem(w) in have for w in words) * 2 >= len(words))
    return not checks or any(checks)
