"""Quote-made answers on the sample corpus: the fallback quotes every paper a question names, and a
model answer that leaves a named paper out gets that paper's best quote."""

import pytest

from rag.answer import Sources
from tests.test_pipeline import Declining, Saying, app, variant  # noqa: F401  (the module-scoped index)

QUESTION = "What training stages do MIO and LLaVA-KD use?"


def _short(title: str) -> str:
    return title.split(":")[0]


def test_fallback_quotes_each_named_paper(app):  # noqa: F811
    a = variant(app, Declining()).ask(QUESTION)
    assert a.kind == "extractive", a.to_dict()
    assert {_short(c.title) for c in a.citations} == {"MIO", "LLaVA-KD"}
    for c in a.citations:
        assert f"[{c.number}]" in a.text
        shown = [q for q in c.quotes if q.supports]
        assert shown and all(f"\u201c{q.text}\u201d" in a.text and c.text[q.start:q.end] == q.text for q in shown)


def test_answer_citing_one_named_paper_gets_the_others_quote(app):  # noqa: F811
    gen = Saying("MIO undergoes a four-stage training process [1].")
    a = variant(app, gen).ask(QUESTION)
    assert a.kind == "answer", a.to_dict()
    assert a.text.startswith("MIO undergoes a four-stage training process [")
    assert {_short(c.title) for c in a.citations} == {"MIO", "LLaVA-KD"}
    kd = next(c for c in a.citations if c.title.startswith("LLaVA-KD"))
    assert f"[{kd.number}]" in a.text and any(q.supports and q.text in a.text for q in kd.quotes)


def test_the_appended_quote_is_streamed_too(app):  # noqa: F811
    items = list(variant(app, Saying("MIO undergoes a four-stage training process [1].")).ask_stream(QUESTION))
    answer = items[-1]
    assert isinstance(items[0], Sources) and "LLaVA-KD" in " ".join(c.title for c in answer.citations)
    assert "".join(x for x in items if isinstance(x, str)) == answer.text  # the pieces add up to the answer


@pytest.mark.parametrize("question", ["What training stages do MLLMs use?", "How is MIO trained?"])
def test_no_completion_without_two_named_papers(app, question):  # noqa: F811
    a = variant(app, Saying("MIO undergoes a four-stage training process [1].")).ask(question)
    assert "\u201c" not in a.text, a.text
