"""The reranker stage (rag.search.rerank) and the second search round: one interface, three backends, in the pipeline."""

from __future__ import annotations

import pytest

import rag
from rag.config import Settings
from rag.errors import ConfigError, ModelNotFoundError
from rag.search.rerank import CrossEncoderReranker, LLMReranker, NoReranker, Reranker, build_reranker
from rag.search.retrieval import Hit, rocchio
from rag.testing import FakeEmbedder, FakeGenerator

HITS = [Hit("Cats", 0.9, "Cats purr.", "c"), Hit("Dogs", 0.8, "Dogs bark.", "d"), Hit("Owls", 0.7, "Owls hoot.", "o")]


class Prefers(Reranker):
    """A fake judge: a passage that contains ``word`` scores 1."""

    def __init__(self, word: str, top_n: int = 5):
        super().__init__(top_n)
        self.word, self.calls = word, []

    def scores(self, query, texts):
        self.calls.append(texts)
        return [float(self.word in t.lower()) for t in texts]


def test_rerank_reorders_the_first_top_n_and_keeps_the_rest_in_place():
    assert [h.title for h in Prefers("owls", top_n=3).rerank("q", HITS)] == ["Owls", "Cats", "Dogs"]
    assert [h.title for h in Prefers("owls", top_n=2).rerank("q", HITS)] == ["Cats", "Dogs", "Owls"]  # owls not looked at
    reranked = Prefers("dogs").rerank("q", HITS)
    assert reranked[0].metadata["rerank_score"] == 1.0 and HITS[1].metadata == {}  # the hits given are not changed
    assert NoReranker().rerank("q", HITS) == HITS


def test_build_reranker_from_settings():
    assert isinstance(build_reranker(Settings.load("cpu").rerank, lambda: None), NoReranker)  # the CPU default
    gpu = Settings.load("gpu").rerank
    r = build_reranker(gpu, lambda: None)
    assert isinstance(r, CrossEncoderReranker) and r.model_name == gpu.model == "BAAI/bge-reranker-v2-m3"
    assert isinstance(build_reranker(Settings.load(None, **{"rerank.backend": "llm"}).rerank, lambda: None), LLMReranker)
    with pytest.raises(ConfigError, match="rerank.backend"):
        Settings.load(None, **{"rerank.backend": "bm25"})


def test_a_reranker_changes_what_the_answer_is_made_from(tmp_path):
    from rag.answer.question import Question

    judge = Prefers("")
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator(), reranker=judge) as app:
        app.ingest(["data/sample"], progress=False)
        q = "Which benchmark tests multimodal math reasoning?"
        plain = [h.title for h in app.search(q, k=5)]
        judge.word = plain[4].lower()  # the judge prefers retrieval's 5th paper
        g = app.answerer.gather(Question(q))
        assert len(judge.calls[-1]) == 5  # retrieval's first 5 were read
        assert g.retrieval.hits[0].title == plain[4] and [h.title for h in g.retrieval.hits[1:]] == plain[:4]
        assert plain[4] in [p.title for p in g.papers]  # now a candidate whose sentences are scored (only the first 3 are)
        assert "rerank_ms" in app.ask(q).timings


def test_the_llm_reranker_asks_the_generator_yes_or_no():
    class Judge:
        def __init__(self):
            self.prompts = []

        def yes_probability(self, prompts):
            self.prompts += prompts
            return [0.9 if "Owls" in p[-1]["content"] else 0.1 for p in prompts]

    judge = Judge()
    out = LLMReranker(lambda: judge).rerank("which bird hoots?", HITS)
    assert out[0].title == "Owls" and len(judge.prompts) == 3
    assert "which bird hoots?" in judge.prompts[0][-1]["content"] and "yes or no" in judge.prompts[0][-1]["content"]


def test_rocchio_moves_the_query_toward_the_feedback_documents():
    moved = rocchio([1.0, 0.0, 0.0], [[0.0, 1.0, 0.0]], 0.5)
    assert moved[1] > 0 and abs(sum(x * x for x in moved) - 1) < 1e-9


def test_the_second_round_runs_when_the_evidence_is_weak(tmp_path):
    overrides = {"retrieval.feedback.enabled": True, "answer.policy.second_round_below": 10.0}  # every question
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator(), **overrides) as app:
        app.ingest(["data/sample"], progress=False)
        a = app.ask("Which benchmark evaluates Chinese multimodal math?")
        assert "feedback_ms" in a.timings and "second_round" in a.timings
        assert a.citations and a.citations[0].title.startswith("CMM-Math")
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator()) as app:
        assert "feedback_ms" not in app.ask("Which benchmark evaluates Chinese multimodal math?").timings  # off: one round


@pytest.mark.slow
def test_a_cross_encoder_reranks_for_real(tmp_path):
    """sentence-transformers loads a (random-weight, local) cross-encoder as it would a Hugging Face one."""
    from rag.testing import random_cross_encoder

    r = build_reranker(Settings.load(None, **{"rerank.backend": "cross-encoder", "rerank.model": str(random_cross_encoder(tmp_path / "ce")),
                                                "rerank.device": "cpu"}).rerank, lambda: None)
    scores = r.scores("why do dogs bark", ["Dogs bark.", "Cats purr.", "Owls hoot."])
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert sorted(h.title for h in r.rerank("why do dogs bark", HITS)) == ["Cats", "Dogs", "Owls"]


@pytest.mark.slow
def test_a_cross_encoder_that_cannot_be_loaded_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = CrossEncoderReranker(str(tmp_path / "no-such-reranker"), device="cpu")
    with pytest.raises(ModelNotFoundError, match="rerank.backend: none"):
        r.scores("q", ["a", "b"])


@pytest.mark.slow
def test_the_llm_reranker_on_llama_cpp_reads_yes_and_no_probabilities(tmp_path):
    from rag.config import GenerationSettings
    from rag.generation import build_generator

    gen = build_generator(GenerationSettings(model="smollm2-135m-instruct-q4_1", n_ctx=2048), Settings.load(None).cache_dir)
    try:
        scores = LLMReranker(lambda: gen).scores("Which paper is about dogs barking?", ["Dogs bark at night.", "Stock prices fell."])
    finally:
        gen.close()
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert any(0.0 < s < 1.0 for s in scores)  # probabilities, not a parsed word


@pytest.mark.slow
def test_transformers_yes_probability_is_batched_and_matches_one_by_one(tmp_path):
    """The GPU path's P(yes) on CPU with a random-weight Qwen2: left padding must not change a prompt's score."""
    from rag.config import GenerationSettings
    from rag.generation.hf import TransformersGenerator
    from rag.testing import random_qwen2

    cache = Settings.load(None).cache_dir
    gen = TransformersGenerator(GenerationSettings(backend="transformers", model=str(random_qwen2(tmp_path / "q", cache)),
                                                   device="cpu"), cache)
    prompts = [LLMReranker.prompt("which paper?", t) for t in ("Dogs bark.", "A much longer passage about cats that purr.")]
    together = gen.yes_probability(prompts)
    alone = [gen.yes_probability([p])[0] for p in prompts]
    assert all(0.0 <= x <= 1.0 for x in together) and together == pytest.approx(alone, abs=1e-3)
