"""Reranking: a second, slower look at retrieval's first hits, question and paper read together.

Retrieval embeds question and chunk apart (a bi-encoder) and adds BM25; a reranker reads each (question, paper)
pair whole and scores how well the paper answers it. Three backends behind one interface (``Reranker.scores``),
picked by ``rerank.backend``:

* ``none``: retrieval's order (the CPU default: no reranker ships on PyPI, and the LLM one costs ~1 s a paper on
  2 cores; ``bench/semantic.py`` measures both);
* ``cross-encoder``: a sentence-transformers ``CrossEncoder`` by Hugging Face name or local path (the gpu preset
  names BAAI/bge-reranker-v2-m3);
* ``llm``: the configured generator asked, per paper, "is this paper what the question asks about?", scored by
  the probability of "yes" (llama.cpp's and transformers' first-token probabilities; batched on GPU).

``rerank`` re-orders the first ``top_n`` hits by score (ties: retrieval's order) and leaves the rest after them.

Example:
    >>> from rag.search.retrieval import Hit
    >>> hits = [Hit("Cats", 0.9, "Cats purr.", "c"), Hit("Dogs", 0.8, "Dogs bark.", "d"), Hit("Owls", 0.1, "Owls hoot.", "o")]
    >>> class Barks(Reranker):
    ...     def scores(self, query, texts):
    ...         return [float("bark" in t) for t in texts]
    >>> [h.title for h in Barks(top_n=2).rerank("why do dogs bark", hits)]
    ['Dogs', 'Cats', 'Owls']
    >>> passage_text(hits[1])
    'Dogs. Dogs bark.'
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from rag.config import RerankSettings
from rag.errors import ConfigError, ModelNotFoundError, require
from rag.search.retrieval import Hit

log = logging.getLogger(__name__)

LLM_SYSTEM = ("You judge search results for a researcher. Read the question and one paper's abstract, and answer "
              "with one word: yes if the paper is what the question asks about or answers it, no otherwise.")
LLM_USER = "Question: {question}\n\nPaper: {passage}\n\nIs this paper what the question asks about? Answer yes or no."
PASSAGE_CHARS = 1500  # a whole abstract is ~1,000-1,500 characters; longer text is cut (the prompt stays ~400 tokens)


def passage_text(hit: Hit) -> str:
    """What a reranker reads of a hit: its title and text (cut at ``PASSAGE_CHARS``)."""
    return f"{hit.title}. {hit.text}"[:PASSAGE_CHARS]


class Reranker:
    """Scores (query, passage) pairs; ``rerank`` re-orders the first ``top_n`` hits by those scores."""

    name = "none"

    def __init__(self, top_n: int = 5):
        self.top_n = top_n

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """One relevance score per text (higher = more relevant); comparable within one call only."""
        raise NotImplementedError

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        head, rest = hits[: self.top_n], hits[self.top_n :]
        if len(head) < 2:
            return list(hits)
        scores = self.scores(query, [passage_text(h) for h in head])
        order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
        return [replace(head[i], metadata={**head[i].metadata, "rerank_score": round(float(scores[i]), 4)}) for i in order] + rest


class NoReranker(Reranker):
    """Retrieval's order, unchanged."""

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        return list(hits)


class CrossEncoderReranker(Reranker):
    """A sentence-transformers cross-encoder (loaded on first use; one batch per call)."""

    name = "cross-encoder"

    def __init__(self, model: str, top_n: int = 5, batch_size: int = 16, max_length: int = 512, device: str = "auto"):
        super().__init__(top_n)
        self.model_name, self.batch_size, self.max_length, self.device = model, batch_size, max_length, device
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                require("sentence_transformers", "dev", "the cross-encoder reranker")
                from sentence_transformers import CrossEncoder

                device = None if self.device == "auto" else self.device
                try:
                    self._model = CrossEncoder(self.model_name, max_length=self.max_length, device=device)
                except OSError as e:
                    raise ModelNotFoundError(
                        f"cannot load the reranker {self.model_name!r} ({e}): name a Hugging Face cross-encoder you can "
                        "download, or a local folder with one, in rerank.model; or set rerank.backend: none") from None
            return self._model

    def scores(self, query: str, texts: list[str]) -> list[float]:
        model = self._load()
        return [float(s) for s in model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                                show_progress_bar=False)]


class LLMReranker(Reranker):
    """The answer model as a pointwise judge: P(yes) of "is this paper what the question asks about?"."""

    name = "llm"

    def __init__(self, generator: Callable, top_n: int = 5):
        """``generator``: a zero-argument callable giving the Generator (built on first use)."""
        super().__init__(top_n)
        self.generator = generator

    @staticmethod
    def prompt(query: str, passage: str) -> list[dict]:
        return [{"role": "system", "content": LLM_SYSTEM},
                {"role": "user", "content": LLM_USER.format(question=query, passage=passage)}]

    def scores(self, query: str, texts: list[str]) -> list[float]:
        return self.generator().yes_probability([self.prompt(query, t) for t in texts])


def build_reranker(settings: RerankSettings, generator: Callable) -> Reranker:
    """The reranker ``settings.backend`` names; ``generator`` (a zero-argument callable) serves the llm backend."""
    if settings.backend == "none":
        return NoReranker(settings.top_n)
    if settings.backend == "cross-encoder":
        return CrossEncoderReranker(settings.model, settings.top_n, settings.batch_size, settings.max_length, settings.device)
    if settings.backend == "llm":
        return LLMReranker(generator, settings.top_n)
    raise ConfigError(f"unknown rerank backend {settings.backend!r}: use none, cross-encoder or llm")
