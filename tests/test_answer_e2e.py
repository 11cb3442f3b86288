"""End to end with the real offline models of the cpu preset: a cited answer, a refusal, a follow-up."""

import pytest

import rag

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(real_data_dir):
    with rag.load("cpu", data_dir=real_data_dir) as a:
        yield a


def test_cited_answer(app):
    a = app.ask("Which benchmark evaluates Chinese multimodal math and how large is it?")
    assert not a.refused, a.to_dict()
    titles = [c.title for c in a.citations]
    assert any(t.startswith("CMM-Math") for t in titles), titles
    retrieved = {h.title for h in a.sources}
    assert set(titles) <= retrieved  # validity by construction
    assert "[" in a.text and a.timings["ttft_s"] > 0 and a.timings["total_s"] > 0


def test_refusal_on_unanswerable(app):
    a = app.ask("What learning rate did the original BERT paper use for pre-training?")
    assert a.refused and a.text == app.settings.answer.refusal_text and a.citations == []


def test_stream_and_follow_up(app):
    first = None
    pieces = []
    for item in app.ask_stream("What is NVLM 1.0?"):
        if isinstance(item, str):
            pieces.append(item)
        else:
            first = item
    assert pieces and first is not None and not first.refused
    a = app.chat([
        {"role": "user", "content": "What is NVLM 1.0?"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "How does it handle high-resolution images?"},
    ])
    assert a.standalone_question != a.question
    assert any(h.title.startswith("NVLM") for h in a.sources), [h.title for h in a.sources]
