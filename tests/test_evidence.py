"""Evidence: whole abstracts rebuilt from chunks, sentences with offsets, parts of questions, selection."""

from rag.ingest.chunking import chunk_paper
from rag.config import SAMPLE_CORPUS, ChunkSettings
from rag.ingest.corpus import load_papers
from rag.answer import evidence
from rag.answer.evidence import EvidenceScorer, SourcePaper, merge_chunks
from rag.answer.question import Question, question_parts
from rag.config import AnswerPolicy


def select(papers, max_papers=3, per_paper=3, keep=0.75, question=""):
    """``evidence.select`` with a policy of these numbers (the tests' small papers were written for them)."""
    policy = AnswerPolicy(quotes_per_paper=per_paper, keep_papers=keep)
    return evidence.select(papers, Question(question), policy, max_papers)
from rag.search.retrieval import Hit
from rag.text import split_sentences
from rag.testing import FakeEmbedder


def test_chunks_merge_back_into_every_sample_abstract():
    for p in load_papers([SAMPLE_CORPUS]):
        assert merge_chunks([c.text for c in chunk_paper(p, ChunkSettings())]) == p.abstract


def test_sentence_offsets_on_the_sample_corpus():
    for p in load_papers([SAMPLE_CORPUS])[:50]:
        for s in split_sentences(p.abstract):
            assert p.abstract[s.start:s.end] == s.text


def test_question_parts():
    assert question_parts("What is X?") == ["What is X?"]
    assert len(question_parts("How was RLHF adapted, and what extra information is given to the reward model?")) == 2


def _paper(title, text, rank):
    return SourcePaper(Hit(title, 1.0, "", title), rank, text, split_sentences(text))


def test_selection_covers_each_part_of_the_question():
    p = _paper("CMM-Math", "Math matters for models. We release CMM-Math, a Chinese math dataset. "
               "Models struggle with diagrams. CMM-Math has 28,000 samples across 12 grades.", 0)
    other = _paper("Cats", "Cats purr. Cats sleep a lot.", 1)
    scorer = EvidenceScorer(FakeEmbedder())
    scorer.score(Question("What is CMM-Math, and how many samples does CMM-Math have?"), [p, other])
    (first, idx), *rest = select([p, other], per_paper=2)
    assert first is p and 1 in idx and 3 in idx  # the definition and the number
    assert rest == []  # the unrelated paper is far below the best one


def test_scores_are_deterministic():
    p = _paper("A", "Alpha beta. Beta gamma. Gamma delta.", 0)
    scorer = EvidenceScorer(FakeEmbedder())
    first = list(scorer.score(Question("beta gamma"), [p])[0].scores)
    assert scorer.score(Question("beta gamma"), [p])[0].scores == first


def _scored(best, rank, title="P"):
    p = _paper(f"{title}{rank}" if title == "P" else title, "One sentence here. Another one.", rank)
    p.scores = p.local_scores = [best, best / 2]
    p.part_scores = []
    return p


def test_retrieval_rank_breaks_near_ties_between_papers():
    first, second = _scored(0.50, 0), _scored(0.55, 1)  # the retrieval's top paper, a slightly better sentence elsewhere
    assert [p for p, _ in select([second, first])][0] is first
    far = _scored(0.80, 1)  # a much better sentence still wins
    assert [p for p, _ in select([far, first])][0] is far


def test_papers_called_by_name_are_kept_whatever_their_scores():
    mio, kd, other = _scored(0.6, 0, "MIO: tokens"), _scored(0.2, 3, "LLaVA-KD: distilling"), _scored(0.58, 1, "Other: x")
    chosen = [p for p, _ in select([mio, other, kd], max_papers=2, question="How do MIO and LLaVA-KD train?")]
    assert chosen[:2] == [mio, kd]
    assert kd not in [p for p, _ in select([mio, other, kd], max_papers=2, question="How does MIO train?")]


def test_link_sentences_rank_last_unless_the_question_asks_where():
    text = ("VTC-CLS compresses visual tokens without training. It keeps the tokens the [CLS] token attends to. "
            "Code and models of VTC-CLS are available at https://github.com/THU-MIG/VTC-CLS.")
    scorer = EvidenceScorer(FakeEmbedder())
    p = _paper("VTC-CLS: training-free token compression", text, 0)
    scorer.score(Question("What does VTC-CLS do with visual tokens?"), [p])
    assert p.ranked()[-1] == 2 and p.sentences[p.ranked()[0]].text.startswith("VTC-CLS compresses")
    best = p.best
    q = _paper("VTC-CLS: training-free token compression", text, 0)
    scorer.score(Question("Where is the code of VTC-CLS available?"), [q])
    assert q.ranked()[0] == 2  # asked where: the link is the answer
    assert p.best == max(p.scores) == best  # the evidence score (answerability) is not changed by the ranking


def test_how_questions_rank_what_the_paper_proposes_above_the_problem_it_restates():
    # dev-011: the problem statement echoes the question's words; the answer is the "we propose" sentence
    text = ("Composed image retrieval needs positive and negative examples. However, triplet annotation is expensive. "
            "We propose to generate more positive and negative training examples for composed image retrieval with a "
            "multimodal LLM.")
    scorer = EvidenceScorer(FakeEmbedder())
    how = _paper("SPN: composed image retrieval", text, 0)
    scorer.score(Question("How can composed image retrieval models get more positive and negative training examples "
                 "when triplet annotation is expensive?"), [how])
    assert how.ranked()[0] == 2, [how.sentences[i].text for i in how.ranked()]
    which = _paper("SPN: composed image retrieval", text, 0)
    scorer.score(Question("Why does composed image retrieval need positive and negative examples?"), [which])
    assert which.ranked()[0] == 0  # not a how-question: no change
    assert how.best == max(how.scores)  # the evidence score (answerability) is not changed by the ranking
