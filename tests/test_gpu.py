"""The GPU preset end to end on a CUDA machine: configs/gpu.yaml with a small random-weight Qwen2 in
bitsandbytes NF4 (no download), one answer through the whole pipeline. Skipped without CUDA."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A random-weight Qwen2 model folder with the Qwen2.5 tokenizer (rag.testing.random_qwen2)."""
    from rag.testing import random_qwen2

    return random_qwen2(tmp_path_factory.mktemp("tiny-qwen"), tmp_path_factory.mktemp("cache"))


def test_gpu_preset_answers_with_a_random_weight_model(tiny_qwen, tmp_path):
    import torch

    import rag
    from rag.testing import FakeEmbedder

    overrides = {"generation.model": str(tiny_qwen), "generation.max_new_tokens": 16, "embedding.device": "cuda"}
    with rag.load("gpu", data_dir=tmp_path, embedder=FakeEmbedder(), **overrides) as app:
        assert app.settings.generation.quantization == "4bit"
        app.ingest(["data/sample"], progress=False)
        answer = app.ask("Which benchmark evaluates Chinese multimodal math?")
        assert answer.kind in ("answer", "extractive", "refusal") and answer.timings["total_s"] > 0
        assert torch.cuda.memory_allocated() > 0  # the NF4 model is on the GPU


def test_gpu_rerankers_with_random_weights(tiny_qwen, tmp_path):
    """The gpu preset's cross-encoder stage and the LLM reranker (batched P(yes) on transformers), on CUDA."""
    import torch

    from rag.config import Settings
    from rag.generation import build_generator
    from rag.search.rerank import LLMReranker, build_reranker
    from rag.testing import random_cross_encoder

    s = Settings.load("gpu", **{"rerank.model": str(random_cross_encoder(tmp_path / "ce")), "generation.model": str(tiny_qwen)})
    ce = build_reranker(s.rerank, lambda: None)
    assert len(ce.scores("q", ["a passage"] * 40)) == 40 and str(ce._model.device).startswith("cuda")
    gen = build_generator(s.generation, s.cache_dir)
    try:
        scores = LLMReranker(lambda: gen).scores("which paper?", ["Dogs bark.", "Cats purr.", "Owls hoot."])
    finally:
        gen.close()
    assert len(scores) == 3 and all(0.0 <= x <= 1.0 for x in scores) and torch.cuda.max_memory_allocated() > 0
