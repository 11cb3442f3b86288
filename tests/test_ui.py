"""The chat UI with fake models: rendering, then a real server on a free port, called like a program would.

One server (module fixture, ``serving.server.Running``) backs the tests: FakeEmbedder + FakeGenerator
over the sample corpus in an in-memory Qdrant.
"""

from __future__ import annotations

import html
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

import rag  # noqa: E402
from rag.answer import Answer, Citation, Quote  # noqa: E402
from rag.config import ServingSettings  # noqa: E402
from rag.search.retrieval import Hit  # noqa: E402
from rag.testing import FakeEmbedder, FakeGenerator, free_port  # noqa: E402
from serving import feedback, render, server as srv, ui  # noqa: E402

CMM = "Which benchmark evaluates Chinese multimodal math?"
CMM_TITLE = "CMM-Math: A Chinese Multimodal Math Dataset"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = rag.load(None, data_dir=tmp_path_factory.mktemp("ui"), embedder=FakeEmbedder(), generator=FakeGenerator(),
                 **{"store.backend": "server", "store.url": ":memory:"})
    a.ingest(["data/sample"], progress=False)
    yield a
    a.close()


@pytest.fixture(scope="module")
def server(app):
    with srv.Running(app, ServingSettings(port=free_port(), concurrency=2)) as running:
        assert running.url.startswith("http://127.0.0.1:")
        yield running


def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def chat_text(history: list, i: int = -1) -> str:
    """The message's HTML with entities decoded (rendering writes ':' '(' '[' as entities)."""
    content = history[i]["content"]
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return html.unescape(str(content))


# -- pure rendering -----------------------------------------------------------------------
def test_highlight_escapes_and_marks():
    out = render.highlight("A <script>x</script> math benchmark; mathematics", ["math", "benchmark"])
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert out.count("<mark>") == 2 and "<mark>math</mark>" in out and "mathematics" in out


def test_render_answer_and_sources_show_titles():
    srcs = [Hit("Paper <One>", 0.5, "about math", "p1", pages=["000.txt (Mar 13)"]), Hit("Paper Two", 0.4, "other", "p2")]
    a = Answer("math?", "It is about math [1].", [Citation(1, "Paper <One>", "p1", "about math", [Quote("about", 0, 5, "x")])],
               srcs, refused=False)
    text = render.render_answer(a)
    assert "<sup" in text and "[1]" in text and "Paper &lt;One&gt;" in text and "<One>" not in text
    assert '<blockquote class="rag-quote">&ldquo;about&rdquo;</blockquote>' in text  # the quote under the answer
    panel = render.render_sources(a)
    assert panel.count('class="rag-src') == 2 and panel.count("cited</span>") == 1
    assert '<mark class="rag-quote">about</mark>' in panel  # highlighted in the sources panel
    assert "<mark>math</mark>" in panel and "000.txt (Mar 13)" in html.unescape(panel) and "Paper &lt;One&gt;" in panel
    refused = Answer("q", "I could not find this in the indexed papers.", [], srcs, refused=True, related=srcs[:1])
    assert render.render_answer(refused) == ("I could not find this in the indexed papers.\n\nClosest papers (not sources): "
                                         "Paper &lt;One&gt;")


def test_write_feedback_is_thread_safe(tmp_path):
    rec = {"question": "q", "answer": "a", "citations": [], "sources": ["t"]}
    threads = [threading.Thread(target=feedback.write_feedback, args=(tmp_path, rec, "up")) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "feedback.jsonl").read_text().splitlines()
    assert len(lines) == 20 and all(json.loads(x)["vote"] == "up" for x in lines)


def test_auth_from_env(monkeypatch):
    monkeypatch.delenv("RAG_UI_USERNAME", raising=False)
    monkeypatch.delenv("RAG_UI_PASSWORD", raising=False)
    assert srv.auth_from(ServingSettings()) is None
    assert srv.auth_from(ServingSettings(username="u", password="p")) == ("u", "p")
    monkeypatch.setenv("RAG_UI_USERNAME", "eve")
    monkeypatch.setenv("RAG_UI_PASSWORD", "secret")
    assert srv.auth_from(ServingSettings()) == ("eve", "secret")
    monkeypatch.delenv("RAG_UI_PASSWORD")
    with pytest.raises(rag.RagError, match="both"):
        srv.auth_from(ServingSettings())


def test_untrusted_text_cannot_become_an_image_or_a_link():
    evil = "![x](http://127.0.0.1:9/p.png) <img src=http://127.0.0.1:9/q.png> [a](javascript:alert(1))"
    srcs = [Hit("T", 1, evil, "p1")]
    a = Answer("q", evil + " [1].", [Citation(1, "T", "p1", evil, [Quote(evil[:10], 0, 10, "x")])], srcs, refused=False)
    for html_out in (render.render_answer(a), render.render_sources(a)):
        assert "<img" not in html_out and "](" not in html_out and "http://" not in html_out
        assert evil in html.unescape(re.sub(r"<[^>]+>", "", html_out))  # shown as text


# -- built app ----------------------------------------------------------------------------
def test_create_server_builds(app):
    import gradio as gr

    from serving.answer_queue import AnswerQueue
    from serving.ingest_jobs import IngestJobs

    demo = ui.create_ui(app, AnswerQueue(), IngestJobs(app), ServingSettings(), (["Mar 13"], ["000.txt"]))
    assert isinstance(demo, gr.Blocks)
    assert {"chat", "ask", "ask_stream"} <= {fn.api_name for fn in demo.fns.values()}
    dates, files = srv.facets(app)
    assert "Mar 13" in dates and "000_f8d5cab1cc16e04b.txt" in files


# -- served -------------------------------------------------------------------------------
def test_ask_endpoint_returns_cited_answer(server):
    r = client(server).predict(CMM, api_name="/ask")
    assert r["question"] == CMM and not r["refused"]
    assert r["citations"] and r["citations"][0]["title"].startswith(CMM_TITLE)
    assert r["sources"] and r["timings"]["total_s"] >= 0


def test_ask_stream_endpoint_streams_then_answers(server):
    job = client(server).submit(CMM, api_name="/ask_stream")
    outs = list(job)
    final = job.result()
    assert final["done"] and final["question"] == CMM and final["citations"]
    partial = [o for o in outs if not o.get("done")]
    assert partial and partial[0]["sources"] and partial[0]["text"] == ""  # the sources come first
    assert any(o["text"] for o in partial[1:]) and partial[-1]["text"] == final["answer"]


def test_concurrent_sessions_get_their_own_answers(app, server):
    papers = [h.title for h in app.search("multimodal large language model benchmark", k=8)]
    questions = [f"What does the paper {t} propose?" for t in papers]

    def one(q):
        return client(server).predict(q, api_name="/ask")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, questions))
    assert len(results) == 8
    for q, title, r in zip(questions, papers, results):
        assert r["question"] == q
        assert not r["refused"], r
        assert title in [c["title"] for c in r["citations"]] + [s["title"] for s in r["sources"]]
    assert len({r["answer"] for r in results}) > 1


def test_chat_streams_and_renders_citations(server):
    c = client(server)
    job = c.submit(CMM, [], 5, [], [], api_name="/chat")
    updates = list(job)
    history, sources, box, note = job.result()
    assert len(updates) >= 2  # the question first, then streamed text, then the final answer
    assert chat_text(history, 0) == CMM
    text = chat_text(history)
    assert "<sup" in text and "<strong>Sources</strong>" in text and CMM_TITLE in text and "rag-quote" in text
    assert CMM_TITLE in html.unescape(sources) and "cited</span>" in sources and "<mark>" in sources
    assert box == {"__type__": "update"} and note == ""  # the box is emptied when the question is taken, then left alone


def test_chat_follow_up_uses_history(server):
    c = client(server)  # one client = one session: the server keeps the conversation
    c.predict("What is NVLM and how does it compare to GPT-4o?", [], 5, [], [], api_name="/chat")
    history, sources, _, _ = c.predict("What training data does it use?", [], 5, [], [], api_name="/chat")
    assert "Retrieved for: <em>What training data does NVLM use?" in html.unescape(sources)


def test_chat_filters_restrict_sources(server):
    history, sources, _, _ = client(server).predict(CMM, [], 3, ["Mar 13"], [], api_name="/chat")
    assert "(Mar 13)" in html.unescape(sources) and sources.count('class="rag-src') <= 3


@pytest.mark.parametrize("bad,expected", [
    ("", "Please type a question"),
    ("   \x00\x07  ", "Please type a question"),
    ("x" * 2100, "keep it under 2,000"),
])
def test_bad_input_gives_friendly_chat_message(server, bad, expected):
    history, _, _, _ = client(server).predict(bad, [], 5, [], [], api_name="/chat")
    text = chat_text(history)
    assert expected in text and "Traceback" not in text


def test_control_characters_are_stripped(server):
    history, _, _, _ = client(server).predict("Which benchmark evaluates Chinese\x00 multimodal math?", [], 5, [], [], api_name="/chat")
    assert "\x00" not in chat_text(history, 0) and CMM_TITLE in chat_text(history)


def test_bad_input_on_api_is_a_friendly_error(server):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="empty"):
        client(server).predict("", api_name="/ask")


def test_model_error_shows_message_and_next_question_works(app, server):
    gen = app.generator
    c = client(server)
    gen.fail = True
    try:
        history, _, _, _ = c.predict(CMM, [], 5, [], [], api_name="/chat")
    finally:
        gen.fail = False
    assert "fake model failed" in chat_text(history) and "Traceback" not in chat_text(history)
    history, _, _, _ = c.predict(CMM, [], 5, [], [], api_name="/chat")
    assert CMM_TITLE in chat_text(history)


def test_feedback_writes_a_record(app, server):
    import gradio as gr

    from serving.answer_queue import AnswerQueue
    from serving.ingest_jobs import IngestJobs

    demo = ui.create_ui(app, AnswerQueue(), IngestJobs(app), ServingSettings(), ([], []))
    state = ui._new_state()
    fn = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "chat")
    *_, (history, _, _, state, _) = fn(CMM, [], state, 5, [], [])
    on_like = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_like")
    path = app.settings.data_dir / "feedback.jsonl"
    before = path.read_text().count("\n") if path.exists() else 0
    assert on_like(state, gr.LikeData(None, {"index": len(history) - 1, "value": "x", "liked": True}))
    on_like(state, gr.LikeData(None, {"index": len(history) - 1, "value": "x", "liked": False}))
    lines = path.read_text().splitlines()[before:]
    up, down = (json.loads(x) for x in lines)
    assert up["vote"] == "up" and down["vote"] == "down"
    assert up["question"] == CMM and up["citations"][0]["title"].startswith(CMM_TITLE)
    assert CMM_TITLE in " ".join(up["sources"]) and up["answer"] and up["time"]


def test_serve_command_is_registered():
    import argparse

    from serving.cmd_serve import cmd_serve, register

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["serve", "--port", "7999", "--data-dir", "/tmp/x"])
    assert args.handler is cmd_serve and args.port == 7999 and args.host is None and args.config == "cpu"


def test_serve_prepare_ingests_an_empty_index(tmp_path):
    from serving.cmd_serve import prepare, serving_settings

    a = rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator(),
                 **{"store.backend": "server", "store.url": ":memory:", "corpus": ["data/sample/000_f8d5cab1cc16e04b.txt"]})
    with a:
        prepare(a)
        assert a.count() > 0
        s = serving_settings(a, port=8123)
        assert (s.host, s.port) == ("127.0.0.1", 8123)
        with pytest.raises(rag.RagError):
            serving_settings(a, port=0)


def test_a_question_sent_while_an_answer_is_written_is_kept_with_a_note(app, server, monkeypatch):
    """Issue: a question sent while the session's answer streamed was cleared from the box and never asked."""
    import time

    gen = app.generator
    real, started = gen.stream, threading.Event()

    def slow(messages, **kw):  # the fake model, at a CPU model's pace
        started.set()
        for piece in real(messages, **kw):
            time.sleep(0.2)
            yield piece

    monkeypatch.setattr(gen, "stream", slow)
    c = client(server)  # one session
    job = c.submit(CMM, [], 5, [], [], api_name="/chat")
    assert started.wait(60), "the first answer never reached the model"
    *_, note = c.predict("What is NVLM?", [], 5, [], [], api_name="/chat")
    assert note == ui.BUSY_NOTE  # not asked, not dropped: kept, and the user is told why
    first = job.result()
    history = next(out[0] for out in reversed(job.outputs()) if isinstance(out[0], list))
    assert CMM_TITLE in chat_text(history)  # the running answer is untouched ...
    assert first[3] == ui.READY_NOTE  # ... and when it is done, the note says the kept question can go now
    monkeypatch.setattr(gen, "stream", real)
    history, _, box, note = c.predict("What is NVLM?", [], 5, [], [], api_name="/chat")
    assert "NVLM" in chat_text(history) and note == ""  # sent again once it is done: answered
    other = client(server)  # another session is never held up by this one
    assert other.predict(CMM, [], 5, [], [], api_name="/chat")[3] == ""
