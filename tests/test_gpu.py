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
