"""Is the question answerable from the indexed papers? Decided from the evidence, not by the LLM alone.

Signals (``Signals``), all cheap and computed before generation:

* ``missing``: the question's distinctive terms (names such as ``FlashAttention-3``, acronyms,
  capitalised words) that occur nowhere in the corpus. Each is looked up with one BM25 search in
  Qdrant and a check of the returned text, so it works at any corpus size. Acronyms of general
  vocabulary ("DNA", "HTML", "PDFs") do not count: a paper never defines them.
* ``unknown_share``: the share of the question's content words that occur nowhere in the corpus
  (a recipe or a weather question is mostly unknown words).
* ``best_evidence``: the best sentence score of the retrieved papers (``rag.answer.evidence``).
* ``best_dense``: the retrieval cosine of the closest chunk.
* ``name_match``: a name from the question appears in a retrieved paper's title (a look-up such as
  "What is SPIQA?" is answerable whatever the cosine says).
* ``asked_missing``: for a question that names a paper found in the index ("What licence does
  TableGPT2 use?"), the thing it asks for ("licence") appears nowhere in that paper's abstract.
  Paraphrases make this a weak signal: it only stops the extractive fallback, it never refuses.
* ``topical``: the question uses the vocabulary of ML research at all.

``assess`` turns them into a ``Verdict`` with thresholds calibrated on ``eval/questions/dev.jsonl``
only (``bench/answer_quality.py --calibrate`` prints the sweep). The model's own ``found`` flag is
used afterwards, and only to choose between its answer and the extractive fallback
(``rag.answer.pipeline``).

Example:
    >>> distinctive_terms("How fast is FlashAttention-3 on H100 GPUs compared with the Atari agent?")
    ['FlashAttention-3', 'H100', 'GPUs', 'Atari']
    >>> asked_words("What learning rate and how many GPUs did the original BERT paper use?")
    ['learning', 'rate', 'gpus']
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, field

from rag.answer.evidence import question_parts
from rag.answer.vocabulary import AUX, METHOD_NOUNS, with_plurals
from rag.text import STOPWORDS, content_words, flat, names, numbers

# Calibrated on the dev set (see the module docstring); changing them changes refusals.
MIN_EVIDENCE = 0.30  # best evidence score under this (and no paper named): not answerable
OFF_TOPIC_UNKNOWN = 0.34  # no research vocabulary and this share of words unknown to the corpus: off-topic
OFF_TOPIC_DENSE = 0.30  # no research vocabulary and no chunk this close (cosine): off-topic
CONFIDENT_EVIDENCE = 0.30  # at or above: answer from the quotes even if the model declines (extractive fallback)

# capitalised words that are not names of things a paper could define
_COMMON_CAPITALISED = frozenset(
    "english chinese japanese korean french german spanish italian portuguese russian arabic hindi indian american "
    "european african asian january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split())
# acronyms of general vocabulary, not names a paper defines: absent from the corpus, they say nothing about
# whether it answers ("... studying dementia with DNA data", "... figures in academic CS manuscripts")
_COMMON_ACRONYMS = frozenset(
    "dna rna html xml json css pdf url http https api cpu gpu tpu ram cs ai ml nlp ui ux sql usb os pc faq phd "
    "usa uk eu un fp16 fp32 bf16 int8 int4".split())
# a hyphenated modifier ("ColBERT-style") names its head ("ColBERT")
_MODIFIER = re.compile(r"-(style|like|based|driven|written|generated|inspired|aware|free|guided|level|scale|sized|"
                       r"specific|centric|only|powered|enabled|friendly|type|esque)$", re.I)
# "What X ...", "Which X ...", "How many X ...": the thing asked for, up to the verb
_NOT_AUX = rf"(?!(?:{AUX})\b)"  # not followed by an auxiliary ("what does ..." asks for no noun)
_ASKED = re.compile(r"\b(what|which|how many|how much|under what|under which)\s+" + _NOT_AUX + r"((?:[\w-]+\s+){0,2}?[\w-]+?)"
                    rf"(?=\s+(?:{AUX}|and|or|of|for|in|on|to|"
                    r"with|from|at|by|that|which|works?|gives?|yields?|performs?|helps?|\w+ed)\b|[?,])", re.I)
# "What is X's Y ...": the thing asked for is Y
_ASKED_OF = re.compile(r"\b(what) (?:is|are|was|were) (?:the )?[\w-]+'s\s+((?:[\w-]+\s+){0,2}?[\w-]+?)"
                       r"(?=\s+(?:per|of|for|in|on|at|with|compared|when|during|and|or|to|from|by)\b|[?,])", re.I)
_GENERIC = frozenset(with_plurals(METHOD_NOUNS + ("model", "paper", "work", "study", "system", "way", "kind", "type", "one",
                                                  "thing", "part", "result", "value", "category", "aspect", "factor",
                                                  "component", "element", "process", "recipe", "scheme")))
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
RESEARCH_WORDS = frozenset(
    "model models modeling modelling dataset datasets benchmark benchmarks train training trained learning learn "
    "neural network networks transformer transformers attention token tokens embedding embeddings encoder decoder "
    "language vision visual image images video videos audio speech multimodal llm llms mllm mllms vlm vlms lmm lmms "
    "retrieval generation generative diffusion reinforcement supervised unsupervised fine-tuning fine-tune finetune "
    "pretraining pre-training pretrained pre-trained accuracy evaluation evaluate evaluates metric metrics loss "
    "architecture parameters inference prompt prompting reasoning agent agents classification segmentation "
    "detection recognition captioning caption captions question answering qa paper papers method methods "
    "algorithm algorithms approach framework state-of-the-art sota baseline baselines gpt clip bert vit cnn rnn "
    "lstm gan vae nlp representation representations contrastive alignment hallucination instruction "
    "instruction-tuning corpus annotation annotations label labels labeled scaling compute gpu gpus".split()
)


@dataclass
class Signals:
    missing: list[str] = field(default_factory=list)
    unknown_share: float = 0.0
    best_evidence: float = 0.0
    best_dense: float | None = None
    name_match: bool = False
    asked_missing: list[str] = field(default_factory=list)  # what a question naming a paper asks for, absent from it
    topical: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    answerable: bool
    reason: str  # "" | "missing_terms" | "weak_evidence" | "off_topic"
    confident: bool  # strong enough evidence to answer extractively if the model declines
    signals: Signals

    def explain(self) -> str:
        """One sentence saying what is missing, for the refusal."""
        if self.reason == "missing_terms":
            terms = ", ".join(self.signals.missing[:3])
            return f"The indexed papers do not mention {terms}."
        if self.reason == "off_topic":
            return ""
        return "The closest papers do not state this."


def _general_acronym(term: str) -> bool:
    """A general-vocabulary acronym ("DNA", "PDFs")?"""
    t = term.lower()
    return t in _COMMON_ACRONYMS or (t.endswith("s") and t[:-1] in _COMMON_ACRONYMS)


def distinctive_terms(question: str, capitalised: bool = True) -> list[str]:
    """Names, acronyms and (``capitalised``) capitalised words not starting a sentence, in order."""
    out = dict.fromkeys(_MODIFIER.sub("", n) for n in names(question))
    for m in _CAPITALISED.finditer(question if capitalised else ""):
        w = m.group(0)
        if w.lower() not in STOPWORDS and w.lower() not in _COMMON_CAPITALISED and not any(w in n for n in out):
            out.setdefault(w, None)
    return list(out)


def asked_phrases(question: str) -> list[list[str]]:
    """The things a question asks for, each as its content words; the last one is the head noun.

    >>> asked_phrases("How many GPU hours and what learning rate were used to train LlamaFusion?")
    [['gpu', 'hours'], ['learning', 'rate']]
    """
    return [words for _, words in _asked(question)]


def _asked(question: str) -> list[tuple[str, list[str]]]:
    """(kind, content words) of each thing asked for, in question order; kind is "count" ("how many X",
    "how much X"), "what" or "which" ("under what X" is a "what")."""
    out = []
    for m in sorted([*_ASKED.finditer(question), *_ASKED_OF.finditer(question)], key=lambda m: m.start()):
        words = [w for w in content_words(m.group(2)) if "-" not in w and w not in _GENERIC and not w[0].isdigit()]
        if words:
            wh = m.group(1).lower()
            out.append(("count" if wh.startswith("how") else wh.split()[-1], words))
    return out


def asked_words(question: str) -> list[str]:
    """The content words of what the question asks for ("What learning rate ..." -> learning, rate)."""
    return list(dict.fromkeys(w for p in asked_phrases(question) for w in p))


class CorpusVocabulary:
    """Answers "does this term occur anywhere in the corpus?" with BM25 searches (cached)."""

    def __init__(self, store, lock=None, cache_size: int = 100_000):
        self.store = store
        self.lock = lock
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
        with self.lock if self.lock is not None else _nolock():
            hits = self.store.query(QuerySpec(sparse=sparse, mode="sparse", limit=10, fields=["title", "text"]))
        return any(key in flat(f"{h.payload.get('title', '')} {h.payload.get('text', '')}") for h in hits)


class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def signals(question: str, sources, best_dense: float | None, vocabulary: CorpusVocabulary, translated: bool = False) -> Signals:
    """Compute the answerability signals for a question and its scored sources (``rag.answer.evidence``).

    ``translated``: the question is a machine translation, where words of the original language can
    remain ("Bild"): only names and acronyms count as distinctive then.
    """
    words = list(dict.fromkeys(content_words(question)))
    unknown = [w for w in words if not vocabulary.has(w)]
    missing = [t for t in distinctive_terms(question, capitalised=not translated) if not vocabulary.has(t) and not _general_acronym(t)]
    qnames = [flat(n) for n in names(question) if len(flat(n)) >= 3]
    named = [p for p in sources if any(n in flat(p.title) for n in qnames)]
    asked_missing: list[str] = []
    if named:
        have = set(content_words(f"{named[0].title} {named[0].abstract}"))
        asked = asked_words(question)
        if asked and not any(w in have or w.rstrip("s") in have or w + "s" in have for w in asked):
            asked_missing = asked
    return Signals(
        missing=missing,
        unknown_share=len(unknown) / len(words) if words else 1.0,
        best_evidence=max((p.best for p in sources), default=0.0),
        best_dense=best_dense,
        name_match=bool(named),
        asked_missing=asked_missing,
        topical=any(w in RESEARCH_WORDS for w in words) or bool(names(question)),
    )


def assess(s: Signals) -> Verdict:
    """The decision rule (thresholds above)."""
    off_corpus = s.unknown_share >= OFF_TOPIC_UNKNOWN or (s.best_dense or 0.0) < OFF_TOPIC_DENSE or s.missing
    if not s.topical and off_corpus:
        return Verdict(False, "off_topic", False, s)
    if s.missing:
        return Verdict(False, "missing_terms", False, s)
    if s.best_evidence < MIN_EVIDENCE and not s.name_match:
        return Verdict(False, "weak_evidence" if s.topical else "off_topic", False, s)
    return Verdict(True, "", s.best_evidence >= CONFIDENT_EVIDENCE and not s.asked_missing, s)


# a count or amount asked without naming what is counted: any number in the quotes can answer it
_BARE_QUANTITY = re.compile(r"\bhow (?:much|big|large|long|fast|often)\s+(?:(?:more|less|faster|better|larger|smaller)\s+)?"
                            rf"(?:{AUX})\b|"
                            r"\bby (?:how much|what (?:fraction|factor|percentage|margin))\b|\bwhat (?:fraction|percentage|share|proportion)\b",
                            re.I)
_QUANTITY_NOUNS = frozenset("number numbers percentage fraction share proportion amount ratio size count".split())


@functools.lru_cache(maxsize=1024)
def asks_only_quantity(question: str) -> bool:
    """Does the question ask for a count or an amount and nothing else? Its answer needs a number.
    (Cached: ``citations.is_claim`` asks it for every sentence of an answer.)

    >>> asks_only_quantity("How many preference pairs are in UnifiedReward's dataset?")
    True
    >>> asks_only_quantity("How many tasks does MIBench have, and what models are tested?")
    False
    >>> asks_only_quantity("What licence does TableGPT2 use?")
    False
    """
    kinds = [kind for kind, _ in _asked(question)]
    asks = all(kind == "count" for kind in kinds) if kinds else bool(_BARE_QUANTITY.search(question))
    return asks and len(question_parts(question)) == 1


def _stem(word: str) -> str:
    """A crude stem that makes "stages"/"stage", "trained"/"training", "radiographs"/"radiograph" meet."""
    w = word.lower()
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith("ss")):
            return w[: len(w) - len(suffix)] + repl
    return w


def quotes_answer(question: str, quotes: list[str]) -> bool:
    """Do the quotes hold the thing the question asks for? Gates the extractive fallback: when the model
    declined, quoting the best sentences only helps if they state what was asked.

    Each thing asked for is one check; the quotes answer if any check passes (a two-part question
    is answered in part), or if there is nothing to check:

    * "How many X ..." / "How much X ...": a number next to X's head noun (within 4 words).
    * "How much does ...", "How big is ...", "By what fraction ...": any number.
    * "What X ...": X's head noun ("rate" of "learning rate") and half of X's words, or X's acronym
      ("WER" for "word error rate"). Container words ("categories", "aspects") are not X.
    * "Which X ...", "How does ...", "Why ...": a name or a description is asked for; not checked
      (the evidence score decides).

    >>> quotes_answer("How many parameters does CoLVA have?", ["CoLVA reaches 51.06% accuracy on MMVM."])
    False
    >>> quotes_answer("How many long videos are in SceneWalk?", ["SceneWalk has 87.8K long videos."])
    True
    >>> quotes_answer("What dropout rate does Symile use?", ["Symile's objective is a lower bound on total correlation."])
    False
    """
    text = " ".join(quotes)
    tokens = re.findall(r"[\w%.,-]+", text)
    is_number = [bool(numbers(t)) for t in tokens]
    have = {_stem(w) for w in content_words(text)}
    checks = [any(is_number)] if _BARE_QUANTITY.search(question) else []
    for kind, words in _asked(question):
        words = [w for w in words if w not in _QUANTITY_NOUNS]
        if not words or kind == "which":  # "which X": a name is asked for; the evidence score decides
            continue
        head = _stem(words[-1])
        if kind == "count":  # a number next to the thing counted
            near = [i for i, t in enumerate(tokens) if any(_stem(w) == head for w in content_words(t))]
            checks.append(any(any(is_number[j] for j in range(max(0, i - 4), min(len(tokens), i + 5))) for i in near))
        else:  # the head noun (or the phrase's acronym: "word error rate" -> WER) and half the words
            acronym = "".join(w[0] for w in words).upper() if len(words) > 1 else ""
            if acronym and re.search(rf"\b{acronym}s?\b", text):
                checks.append(True)
            else:
                checks.append(head in have and sum(_stem(w) in have for w in words) * 2 >= len(words))
    return not checks or any(checks)


def subjects(question: str, papers: list) -> list[str]:
    """Names in the question that name one of the papers (in its title): an answer must then be cited
    to a paper that mentions one of them. "GPUs" or "LLMs" name no paper, so they restrict nothing.

    >>> from types import SimpleNamespace as P
    >>> subjects("How many GPUs trained FILIP on FILIP300M?", [P(title="FILIP: Fine-grained", abstract="FILIP300M, 64 GPUs.")])
    ['FILIP', 'FILIP300M']
    """
    titles = flat(" ".join(p.title for p in papers))
    named = [n for n in names(question) if flat(n) and flat(n) in titles]
    text = flat(" ".join(f"{p.title} {p.abstract}" for p in papers))
    # a paper's own short name also covers its variants mentioned in the question ("FILIP300M")
    return [n for n in names(question) if flat(n) and flat(n) in text and any(flat(m) in flat(n) for m in named)]


def mentions_the_question(question: str, paper) -> bool:
    """A paper can answer by quotes alone only if it mentions at least one name the question uses (if any).

    >>> from types import SimpleNamespace as P
    >>> mentions_the_question("What patch size does Qwen2-VL use?", P(title="ViT survey", abstract="ViTs use patches."))
    False
    """
    qnames = [flat(n) for n in names(question) if flat(n)]
    return not qnames or any(n in flat(f"{paper.title} {paper.abstract}") for n in qnames)
