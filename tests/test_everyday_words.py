"""Questions in everyday words (issue 24): not off-topic when the corpus is close, and shown more of retrieval's
papers when the evidence singles none out."""

from __future__ import annotations

import pytest

import rag
from rag.answer.answerability import Signals
from rag.answer.policy import Outcome, decide
from rag.answer.question import Question
from rag.config import AnswerPolicy
from rag.testing import FakeEmbedder, FakeGenerator

POLICY = AnswerPolicy()


@pytest.mark.parametrize("signals,route", [
    (Signals(topical=False, closest=0.2, best_evidence=0.2, unknown_share=0.9), "off_topic"),  # nothing near: off-topic
    (Signals(topical=False, closest=0.45, best_evidence=0.2, unknown_share=0.6), "refusal"),  # near a paper: not found
    (Signals(topical=False, closest=0.45, best_evidence=0.35, unknown_share=0.6), "generate"),  # unknown words don't matter
    (Signals(topical=True, closest=0.1, best_evidence=0.2), "refusal"),  # research words, nothing close: not found
])
def test_off_topic_means_nothing_in_the_corpus_is_close(signals, route):
    assert decide(Outcome(signals), POLICY).route == route


def test_undecided_evidence_shows_more_of_what_retrieval_found(tmp_path):
    q = Question("Which benchmark evaluates Chinese multimodal math?")
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator()) as app:
        app.ingest(["data/sample"], progress=False)
        decided = app.answerer.gather(q)
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator(),
                  **{"answer.policy.decisive_evidence": 10.0, "answer.policy.undecided_sources": 5}) as app:  # none decisive
        wide = app.answerer.gather(q)
    assert len(decided.papers) == app.settings.answer.llm_sources == 3
    assert [p.title for p in wide.papers] == [h.title for h in wide.retrieval.hits[:5]]  # retrieval's top 5, in order
    assert len(wide.selection) >= len(decided.selection)


@pytest.mark.slow
@pytest.mark.parametrize("question", [
    "My tall phone screenshots and wide panoramas get squashed into a small square when I ask a picture chatbot about them; is there a fix?",
    "Could a chatbot that understands pictures do my googling for me when what I want is in a photo?",
])
def test_a_problem_in_everyday_words_is_not_off_topic(real_data_dir, question):
    with rag.load("cpu", data_dir=real_data_dir) as app:
        g = app.answerer.gather(Question(question))
    assert g.decision.route != "off_topic"


@pytest.mark.slow
@pytest.mark.parametrize("question", ["How do I get an old photo out of a picture frame without tearing it?",
                                      "Is it smarter to pay off my car loan early or invest the money?"])
def test_everyday_requests_far_from_the_papers_are_still_off_topic(real_data_dir, question):
    with rag.load("cpu", data_dir=real_data_dir) as app:
        assert app.answerer.gather(Question(question)).decision.route == "off_topic"
