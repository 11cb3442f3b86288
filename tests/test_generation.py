"""Generator interface, backend selection and error handling; slow tests load SmolLM2 for real."""

from __future__ import annotations

import json
import os
import sys
import threading

import pytest

from rag.config import GenerationSettings
from rag.errors import GenerationError, InputError, MissingExtraError
from rag.generation import Generator, build_generator
from rag.generation.base import validate_messages
from rag.testing import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SMOL = "smollm2-135m-instruct-q4_1"
QUESTION = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "found": {"type": "boolean"},
        "source": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["answer", "found", "source"],
    "additionalProperties": False,
}


class Words(Generator):
    model_id = "words"

    def stream(self, messages, *, max_new_tokens=None, temperature=None, json_schema=None, stats=None):
        self.check_schema_support(json_schema)
        yield from validate_messages(messages)[-1]["content"].split()


def test_base_complete_and_schema_support():
    g = Words()
    assert g.complete([{"role": "user", "content": "a b c"}]) == "abc"
    assert g.count_tokens("x" * 40) == 10
    with pytest.raises(NotImplementedError, match="llamacpp"):
        g.complete([{"role": "user", "content": "a"}], json_schema={"type": "object"})


@pytest.mark.parametrize("bad", [[], [{"role": "robot", "content": "x"}], [{"role": "user", "content": None}]])
def test_invalid_messages(bad):
    with pytest.raises(InputError):
        validate_messages(bad)


def _torch_cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("quant", ["4bit", "8bit"])
def test_quantization_without_cuda_is_a_clear_error(quant, tmp_path):
    if _torch_cuda():
        pytest.skip("CUDA available")
    s = GenerationSettings(backend="transformers", model=SMOL, quantization=quant)
    with pytest.raises(GenerationError, match=f"{quant[0]}-bit quantization needs a CUDA GPU"):
        build_generator(s, tmp_path)


def test_cuda_generation_avoids_cudnn_attention_and_restores_the_flags():
    """cuDNN attention made batch-1 decode host-bound on an H200 (README, GPU): generate runs without it."""
    import torch

    from rag.generation.kernels import attention_kernels

    before = torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.flash_sdp_enabled()
    with attention_kernels("cuda"):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    assert (torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.flash_sdp_enabled()) == before
    with attention_kernels("cpu"):
        assert torch.backends.cuda.cudnn_sdp_enabled() == before[0]


def test_missing_bitsandbytes_names_gpu_extra(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    s = GenerationSettings(backend="transformers", model=SMOL, quantization="4bit", device="cuda")
    with pytest.raises(MissingExtraError, match=r"paper-rag\[gpu\]"):
        build_generator(s, tmp_path)


def test_llamacpp_error_chunks_are_recognised():
    from rag.generation.llamacpp import _error_message

    assert _error_message({"error": {"code": 400, "message": "too long"}}) == "too long"
    assert _error_message({"code": 500, "type": "server_error", "message": "boom"}) == "boom"
    assert _error_message({"choices": [{"delta": {"content": "hi"}}]}) is None


# ---- slow: real models -------------------------------------------------------------------------


def first_text(pieces) -> str:
    """The first non-empty piece (llama.cpp yields "" while it reads the prompt)."""
    return next(p for p in pieces if p)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    g = build_generator(GenerationSettings(model=SMOL, n_ctx=2048, max_new_tokens=24), tmp_path_factory.mktemp("cache"))
    yield g
    g.close()


@pytest.mark.slow
def test_llamacpp_streams_an_answer(llama):
    pieces = list(llama.stream(QUESTION, max_new_tokens=24))
    assert len(pieces) > 2
    assert "paris" in "".join(pieces).lower()
    assert llama.model_id == SMOL
    assert llama.count_tokens("hello world, how are you") == 6


@pytest.mark.slow
def test_llamacpp_early_close_then_reuse(llama):
    it = llama.stream(QUESTION, max_new_tokens=100)
    next(it)
    it.close()  # cancels the request and releases the engine
    assert "paris" in llama.complete(QUESTION, max_new_tokens=24).lower()


@pytest.mark.slow
def test_llamacpp_reads_a_long_prompt_in_cancellable_steps(tmp_path_factory):
    """n_batch prompt tokens per step, each step a callback: Stop during a long prompt waits one step, not all."""
    g = build_generator(GenerationSettings(model=SMOL, n_ctx=2048, n_batch=32, max_new_tokens=4), tmp_path_factory.mktemp("cache3"))
    try:
        stats: dict = {}
        long = [{"role": "user", "content": "Repeat the word paper. " + "paper " * 300}]
        assert list(g.stream(long, max_new_tokens=4, stats=stats))
        assert stats["prompt_n"] > 300 and stats["prompt_steps"] >= stats["prompt_n"] // 32
        it = g.stream(long, max_new_tokens=100, stats={})
        next(it)
        it.close()  # a second request after a cancel still works
        assert "paris" in g.complete(QUESTION, max_new_tokens=24).lower()
    finally:
        g.close()


@pytest.mark.slow
def test_llamacpp_json_schema_output(llama):
    out = json.loads(llama.complete(QUESTION, max_new_tokens=80, json_schema=SCHEMA))
    assert set(out) == {"answer", "found", "source"}
    assert isinstance(out["answer"], str) and isinstance(out["found"], bool)
    assert isinstance(out["source"], int) and 1 <= out["source"] <= 5


@pytest.mark.slow
def test_llamacpp_threads_and_errors(llama):
    results: dict[int, str] = {}

    def ask(i):
        results[i] = llama.complete(QUESTION, max_new_tokens=12)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 3 and len(set(results.values())) == 1  # greedy: identical answers
    with pytest.raises(GenerationError, match="context size"):
        llama.complete([{"role": "user", "content": "word " * 3000}], max_new_tokens=4)
    assert llama.complete(QUESTION, max_new_tokens=12) == results[0]


@pytest.mark.slow
def test_transformers_via_converted_gguf(tmp_path, monkeypatch):
    import torch

    s = GenerationSettings(backend="transformers", model=SMOL, n_ctx=2048, max_new_tokens=24)
    g = build_generator(s, tmp_path)
    assert (tmp_path / "hf").is_dir()
    assert g.supports_json_schema is False
    it = g.stream(QUESTION)
    first = next(it)
    it.close()
    assert first
    assert "paris" in g.complete(QUESTION).lower()

    def oom(*a, **kw):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(g.model, "generate", oom)
    with pytest.raises(GenerationError, match="out of GPU memory.*smaller model"):
        g.complete(QUESTION)
    monkeypatch.undo()
    assert "paris" in g.complete(QUESTION).lower()  # usable again after the error
    g.close()


@pytest.mark.slow
def test_llamacpp_parallel_slots_and_cancel_frees_a_slot(tmp_path_factory):
    """Two slots: two requests stream at once; a cancelled one frees its slot at once."""
    import time

    g = build_generator(GenerationSettings(model=SMOL, n_ctx=1024, parallel=2, max_new_tokens=200),
                        tmp_path_factory.mktemp("cache2"))
    try:
        a, b = g.stream(QUESTION, max_new_tokens=200), g.stream(QUESTION, max_new_tokens=200)
        assert first_text(a) and first_text(b)  # both hold a slot and stream
        t = time.perf_counter()
        a.close()
        b.close()
        assert time.perf_counter() - t < 1.0  # cancelling is immediate
        results: dict[int, str] = {}
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, g.complete(QUESTION, max_new_tokens=12)))
                   for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
        assert len(results) == 4 and all("paris" in r.lower() for r in results.values())
    finally:
        g.close()


@pytest.mark.slow
def test_llamacpp_request_timeout_is_an_error(tmp_path_factory):
    g = build_generator(GenerationSettings(model=SMOL, n_ctx=1024, request_timeout_s=0.001), tmp_path_factory.mktemp("c3"))
    try:
        with pytest.raises(GenerationError, match="request_timeout_s"):
            g.complete([{"role": "user", "content": "word " * 400}], max_new_tokens=50)
    finally:
        g.close()


@pytest.mark.slow
def test_openai_backend_against_a_real_llamacpp_http_server(tmp_path_factory):
    """generation.backend: openai talks to llama.cpp's own HTTP server (xllamacpp listening on a port)."""

    import xllamacpp as xlc

    from rag.models import resolve_gguf

    port = free_port()
    p = xlc.CommonParams()
    p.model.path = str(resolve_gguf(SMOL, tmp_path_factory.mktemp("c4")))
    p.n_ctx, p.port, p.hostnames, p.verbosity = 2048, port, ["127.0.0.1"], -1
    p.api_keys = ["secret-key"]
    server = xlc.Server(p)
    try:
        s = GenerationSettings(backend="openai", model="smol", base_url=f"http://127.0.0.1:{port}/v1", api_key="secret-key")
        g = build_generator(s, tmp_path_factory.mktemp("c5"))
        stats: dict = {}
        pieces = list(g.stream(QUESTION, max_new_tokens=24, stats=stats))
        assert len(pieces) > 2 and "paris" in "".join(pieces).lower()
        out = json.loads(g.complete(QUESTION, max_new_tokens=80, json_schema=SCHEMA))
        assert set(out) == {"answer", "found", "source"}
        g.close()
        bad = build_generator(s.model_copy(update={"api_key": "wrong"}), tmp_path_factory.mktemp("c6"))
        with pytest.raises(GenerationError, match="answered 401"):
            bad.complete(QUESTION, max_new_tokens=4)
        bad.close()
    finally:
        del server
    down = build_generator(GenerationSettings(backend="openai", model="x", base_url=f"http://127.0.0.1:{port}/v1"),
                           tmp_path_factory.mktemp("c7"))
    with pytest.raises(GenerationError, match="cannot reach the generation server"):
        down.complete(QUESTION, max_new_tokens=4)


@pytest.mark.slow
def test_transformers_batches_concurrent_requests(tmp_path):
    """parallel=3: concurrent requests share generate() calls, each streams its own greedy answer."""
    g = build_generator(GenerationSettings(backend="transformers", model=SMOL, n_ctx=2048, max_new_tokens=16, parallel=3),
                        tmp_path)
    try:
        alone = g.complete(QUESTION, max_new_tokens=16)
        other = [{"role": "user", "content": "What is the capital of Italy? Answer in one word."}]
        results: dict[int, str] = {}
        prompts = [QUESTION, other, QUESTION]
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, g.complete(prompts[i], max_new_tokens=16)))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert "paris" in results[0].lower() and "rome" in results[1].lower() and results[0] == results[2]
        assert results[0] == alone  # batching (left padding) does not change a greedy answer here
        assert max(g._batcher.batches) >= 2
        it = g.stream(QUESTION, max_new_tokens=16)
        assert next(it)
        it.close()  # cancels its row
        assert "paris" in g.complete(QUESTION, max_new_tokens=16).lower()
    finally:
        g.close()
