"""Answerability: the decision rule (rag.answer.policy.decide) on its signals, and the corpus look-ups behind them."""

import pytest

import rag
from rag.answer.answerability import CorpusVocabulary, Signals, quotes_answer, signals
from rag.answer.policy import GENERATE, Outcome, confident, decide
from rag.answer.question import Question
from rag.config import AnswerPolicy
from rag.testing import FakeEmbedder

POLICY = AnswerPolicy()


def distinctive_terms(text):
    return Question(text).distinctive_terms()


def asked_words(text):
    return Question(text).asked_words


def test_distinctive_terms_normalise_modifiers_and_skip_common_words():
    assert distinctive_terms("How can a ColBERT-style retriever score a CLIP-like model in Japanese?") == ["ColBERT", "CLIP"]
    assert distinctive_terms("What does MathVista-Pro add?") == ["MathVista-Pro"]  # a variant name stays whole


def test_asked_words():
    assert asked_words("Under what licence are the TableGPT2 weights released?") == ["licence"]
    assert asked_words("What is the method?") == []


QUOTE = "CMM-Math contains over 28,000 high-quality samples across 12 grade levels."


@pytest.mark.parametrize("question,answers", [
    ("How many samples does CMM-Math contain?", True),  # a number next to the thing counted
    ("How many grade levels does CMM-Math cover?", True),
    ("What fraction of CMM-Math is multiple-choice?", True),  # "fraction" is answered by any number
    ("How many GPUs were used to build CMM-Math?", False),  # numbers, but none of GPUs
    ("How many samples and how many annotators does CMM-Math have?", True),  # one part is there
    ("What licence is CMM-Math released under?", False),
    ("What learning rate and batch size were used?", False),
    ("Which grade levels does CMM-Math cover?", True),
    ("Why is CMM-Math hard?", True),  # nothing to check: the evidence score decides
])
def test_quotes_answer(question, answers):
    assert quotes_answer(Question(question), [QUOTE], POLICY.quantity_window) is answers


@pytest.mark.parametrize("question,quotes,answers", [
    ("How much does LlamaFusion improve image understanding?", "LlamaFusion improves image understanding by 20%.", True),
    ("How big is the dataset, and what RL algorithm is used after it?", "The dataset has 200K samples.", True),  # one part
    ("What word error rate does Llama-AVSR reach?", "Llama-AVSR reaches a WER of 0.81% on LRS3.", True),  # the acronym
    ("On which benchmarks did MedTrinity-25M reach the state of the art?", "It is best on VQA-RAD.", True),  # a name: unchecked
    ("What categories of errors are injected?", "Errors are swapped objects and wrong counts.", True),  # a container word
    ("What multi-stage training recipes does MIO follow?", "MIO undergoes a four-stage training process.", True),  # "recipes" too
    ("What fix does VAR apply to the attention sink?", "VAR redistributes attention to image tokens.", True),  # "fix": a method
    ("How much memory does LlamaFusion need?", "LlamaFusion uses 50% of the FLOPs.", False),  # a number, not of memory
    ("What learning rate was used to pretrain 4M?", "We propose 4M, a training scheme.", False),
])
def test_quotes_answer_question_forms(question, quotes, answers):
    assert quotes_answer(Question(question), [quotes], POLICY.quantity_window) is answers


def test_quotes_answer_needs_a_number_for_how_many():
    assert not quotes_answer(Question("How many problems are there?"), ["The problems come with detailed solutions."], POLICY.quantity_window)


def test_the_quantity_window_is_the_policys():
    q, quote = Question("How many samples does it have?"), ["28,000 of the high quality curated math samples"]
    assert not quotes_answer(q, quote, window=4) and quotes_answer(q, quote, window=7)  # 7 words apart


@pytest.mark.parametrize("signals,answerable,reason", [
    (Signals(missing=["FlashAttention-3"], best_evidence=0.6, best_dense=0.5), False, "missing_terms"),
    (Signals(unknown_share=0.5, topical=False, best_evidence=0.2, best_dense=0.18), False, "off_topic"),
    (Signals(missing=["Lakers"], topical=False, best_evidence=0.2, best_dense=0.2), False, "off_topic"),
    (Signals(best_evidence=0.25, best_dense=0.4), False, "weak_evidence"),
    (Signals(best_evidence=0.25, best_dense=0.4, name_match=True), True, ""),
    (Signals(best_evidence=0.45, best_dense=0.5), True, ""),
])
def test_decide_before_generation(signals, answerable, reason):
    d = decide(Outcome(signals), POLICY)
    assert (d.route == GENERATE, d.reason) == (answerable, reason)


def test_confident_only_with_strong_evidence_and_nothing_asked_missing():
    assert confident(Signals(best_evidence=0.7, best_dense=0.5), POLICY)
    assert not confident(Signals(best_evidence=0.7, best_dense=0.5, asked_missing=["licence"]), POLICY)
    assert not confident(Signals(best_evidence=0.25, best_dense=0.5, name_match=True), POLICY)  # answerable, not confident


@pytest.mark.parametrize("found,cited,quotes_hold,evidence,route,reason", [
    (True, True, False, 0.5, "answer", ""),
    (False, False, True, 0.5, "extractive", "model"),  # the model declined, the quotes answer
    (True, False, True, 0.5, "extractive", "unsupported"),  # it wrote nothing the quotes support
    (False, False, False, 0.5, "refusal", "model"),  # the quotes do not hold what is asked
    (False, False, True, 0.29, "refusal", "model"),  # the quotes would, but the evidence is not confident
])
def test_decide_after_generation(found, cited, quotes_hold, evidence, route, reason):
    s = Signals(best_evidence=evidence, best_dense=0.5, name_match=True)
    d = decide(Outcome(s, found=found, cited=cited, quotes_hold=quotes_hold), POLICY)
    assert (d.route, d.reason, d.note) == (route, reason, "")


def test_decide_follows_the_policy_given():
    s = Signals(best_evidence=0.35, best_dense=0.5)
    assert decide(Outcome(s), POLICY).route == GENERATE
    assert decide(Outcome(s), POLICY.model_copy(update={"min_evidence": 0.4})).reason == "weak_evidence"


def test_a_list_is_refused_only_when_nothing_matches():
    assert decide(Outcome(listed=3), POLICY).route == "list"
    assert (decide(Outcome(listed=0), POLICY).route, decide(Outcome(listed=0), POLICY).reason) == ("refusal", "weak_evidence")


def test_explain_names_what_is_missing():
    assert decide(Outcome(Signals(missing=["FlashAttention-3", "H100"])), POLICY).note == \
        "The indexed papers do not mention FlashAttention-3, H100."


def test_corpus_vocabulary(tmp_path):
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder()) as app:
        app.ingest(["data/sample"], progress=False)
        vocab = CorpusVocabulary(app.locked_store)
        assert vocab.has("CMM-Math") and vocab.has("cmm math") and vocab.has("NVLM")
        assert not vocab.has("FlashAttention-3") and not vocab.has("lasagna")


def test_general_acronyms_absent_from_the_corpus_are_not_missing_terms():
    """dev-056 paraphrases a paper about formulas and code "... studying dementia with DNA data": the corpus
    never says "DNA", which refused it as missing_terms. Names still count."""
    class Vocab:
        def has(self, term):
            return term.lower() not in {"dna", "pdfs", "sdxl"}

    q = "Is there a GPT-driven workflow that turns formulas into code, pitched for studying dementia with DNA data?"
    assert signals(Question(q), [], 0.5, Vocab()).missing == []
    assert signals(Question("Which papers parse PDFs with SDXL?"), [], 0.5, Vocab()).missing == ["SDXL"]
