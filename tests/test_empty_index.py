"""Asking before anything is ingested: every surface says the index is empty and how to fill it (not a refusal)."""

from __future__ import annotations

import httpx
import pytest

import rag
from rag.config import ServingSettings
from rag.errors import EmptyIndexError
from rag.testing import FakeEmbedder, FakeGenerator, free_port

QUESTION = "What is SPIQA?"


@pytest.fixture
def empty(tmp_path):
    with rag.load(None, data_dir=tmp_path, embedder=FakeEmbedder(), generator=FakeGenerator()) as app:
        yield app


def test_python_api_says_the_index_is_empty_and_how_to_fill_it(empty):
    for ask in (lambda: empty.ask(QUESTION), lambda: empty.chat([{"role": "user", "content": QUESTION}]),
                lambda: empty.extractive(QUESTION)):
        with pytest.raises(EmptyIndexError, match=r"holds no papers yet.*rag ingest.*Add papers"):
            ask()


def test_an_emergency_is_answered_even_on_an_empty_index(empty):
    assert empty.ask("My child swallowed some of my pills, what do I do?").kind == "emergency"


def test_after_an_ingest_the_same_app_answers(empty):
    with pytest.raises(EmptyIndexError):
        empty.ask(QUESTION)
    empty.ingest(["data/sample"], progress=False)
    assert not empty.ask(QUESTION).refused


def test_http_api_and_chat_page_say_so(empty):
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    from serving import server as srv

    with srv.Running(empty, ServingSettings(port=free_port())) as running:
        r = httpx.post(f"{running.url}/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]},
                       timeout=60)
        assert r.status_code == 503 and "rag ingest" in r.json()["error"]["message"], r.text
        history, *_ = Client(running.url, verbose=False).predict(QUESTION, [], 5, [], [], api_name="/chat")
        bot = history[-1]["content"]
        text = "".join(p.get("text", "") for p in bot) if isinstance(bot, list) else str(bot)
        assert "holds no papers yet" in text and "Add papers" in text


@pytest.mark.slow
def test_cli_ask_on_an_empty_data_dir_is_one_line_with_what_to_do(tmp_path, capsys):
    from serving import cli

    assert cli.main(["ask", QUESTION, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no papers yet" in err and "rag ingest" in err and "Traceback" not in err
