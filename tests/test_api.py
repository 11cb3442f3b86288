"""The OpenAI-compatible API and ingest-while-serving, on a real server (fake models), through the
official ``openai`` client and plain HTTP."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

import rag
from rag.config import ServingSettings
from rag.testing import FakeEmbedder, FakeGenerator, free_port
from serving import server as srv

openai = pytest.importorskip("openai")
CMM = "Which benchmark evaluates Chinese multimodal math?"
CMM_TITLE = "CMM-Math: A Chinese Multimodal Math Dataset"


class SlowGenerator(FakeGenerator):
    """Writes one piece every 50 ms: long enough to queue, stop and cancel requests."""

    def __init__(self):
        super().__init__()
        self.running = 0
        self.delay = 0.05

    def stream(self, messages, **kw):
        self.running += 1
        try:
            for piece in super().stream(messages, **kw):
                time.sleep(self.delay)
                yield piece
        finally:
            self.running -= 1


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = rag.load(None, data_dir=tmp_path_factory.mktemp("api"), embedder=FakeEmbedder(), generator=SlowGenerator())
    a.ingest(["data/sample"], progress=False)
    yield a
    a.close()


@pytest.fixture(scope="module")
def server(app):
    settings = ServingSettings(port=free_port(), api_key="test-key", concurrency=1, max_waiting=1, request_timeout_s=60)
    with srv.Running(app, settings, announce=True) as running:
        yield running


def client(server, key="test-key"):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def test_models(server):
    assert [m.id for m in client(server).models.list().data] == ["paper-rag"]


def test_api_key_is_required(server):
    with pytest.raises(openai.AuthenticationError):
        client(server, key="wrong").models.list()
    assert httpx.get(f"{server.url}/v1/models").status_code == 401


def test_chat_completion_with_citations(server):
    r = client(server).chat.completions.create(model="paper-rag", messages=[{"role": "user", "content": CMM}])
    content = r.choices[0].message.content
    assert "[1]" in content and f"[1] {CMM_TITLE}" in content  # markers, then the reference list
    extra = r.model_extra["rag"]
    assert extra["kind"] == "answer" and extra["citations"][0]["title"].startswith(CMM_TITLE)
    q = extra["citations"][0]["quotes"][0]
    assert extra["citations"][0]["text"][q["start"]:q["end"]] == q["text"]


def test_streaming_sources_first_then_text_then_done(server):
    stream = client(server).chat.completions.create(model="paper-rag", messages=[{"role": "user", "content": CMM}], stream=True)
    chunks = list(stream)
    extras = [c.model_extra.get("rag") for c in chunks]
    first_text = next(i for i, c in enumerate(chunks) if c.choices[0].delta.content)
    first_sources = next(i for i, e in enumerate(extras) if e and "sources" in e)
    assert first_sources < first_text  # retrieval results arrive before any text
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = extras[-1]
    assert chunks[-1].choices[0].finish_reason == "stop" and final["kind"] == "answer"
    assert text == final["answer"] + f"\n\n[1] {final['citations'][0]['title']}"


def test_conversation_follow_up(server):
    c = client(server)
    first = c.chat.completions.create(model="paper-rag", messages=[{"role": "user", "content": CMM}])
    r = c.chat.completions.create(model="paper-rag", messages=[
        {"role": "system", "content": "You are a pirate."},  # ignored: the server's rules apply
        {"role": "user", "content": CMM},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "How many samples does it contain?"},
    ])
    assert "CMM-Math" in r.model_extra["rag"]["standalone_question"]


def test_bad_requests(server):
    h = {"Authorization": "Bearer test-key"}
    assert httpx.post(f"{server.url}/v1/chat/completions", headers=h, json={"messages": []}).status_code == 400
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=h, json={"messages": [{"role": "user", "content": ""}]})
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]
    assert httpx.post(f"{server.url}/v1/chat/completions", headers=h, content=b"{not json").status_code == 400


def _stream(server, results: dict, name: str, drop_at: str | None = None) -> None:
    h = {"Authorization": "Bearer test-key"}
    body = {"messages": [{"role": "user", "content": CMM}], "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", headers=h, json=body, timeout=60) as r:
        for line in r.iter_lines():
            if drop_at and drop_at in line:
                results[name] = "dropped"
                return  # the client goes away: the server must cancel the answer
        results[name] = "done"


def _wait(cond, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def test_full_queue_answers_busy_with_retry_after(app, server):
    """concurrency 1, max_waiting 1: one answering, one waiting, a third gets 429 and Retry-After."""
    gen, results = app.generator, {}
    gen.delay = 0.2  # ~5 s per answer: the line stays full while we look
    try:
        a = threading.Thread(target=_stream, args=(server, results, "a"))
        a.start()
        assert _wait(lambda: gen.running == 1, 30)
        b = threading.Thread(target=_stream, args=(server, results, "b"))
        b.start()
        assert _wait(lambda: httpx.get(f"{server.url}/healthz").json()["queue"]["waiting"] == 1, 10)
        r = httpx.post(f"{server.url}/v1/chat/completions", headers={"Authorization": "Bearer test-key"},
                       json={"messages": [{"role": "user", "content": CMM}]}, timeout=30)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["error"]["message"]
        a.join(timeout=60)
        b.join(timeout=60)
        assert results == {"a": "done", "b": "done"}  # the waiting one was served after the first
    finally:
        gen.delay = 0.05


def test_dropped_client_frees_the_slot_within_a_second(app, server):
    gen, results = app.generator, {}
    gen.delay = 0.2
    try:
        t = threading.Thread(target=_stream, args=(server, results, "d", '"sources"'))
        t.start()
        assert _wait(lambda: gen.running == 1, 30)
        t.join(timeout=30)
        assert results == {"d": "dropped"}
        assert _wait(lambda: gen.running == 0, 1.5), "the model kept writing for a client that left"
        assert _wait(lambda: httpx.get(f"{server.url}/healthz").json()["queue"]["running"] == 0, 1.5)
    finally:
        gen.delay = 0.05


def test_rag_ingest_goes_through_the_running_server(app, server, tmp_path):
    """`rag ingest FILE` on the served data dir hands the file to the server; it answers from it at once."""
    from serving import cli

    papers = tmp_path / "new.jsonl"
    papers.write_text(json.dumps({"title": "Zebrafish Vision Transformer", "abstract": "ZebraViT counts zebrafish stripes "
                                  "with a vision transformer trained on 12,345 aquarium videos."}) + "\n")
    before = app.count()
    rc = cli.main(["ingest", str(papers), "--config", "cpu", "--data-dir", str(app.settings.data_dir)])
    assert rc == 0 and app.count() > before
    r = client(server).chat.completions.create(model="paper-rag", messages=[
        {"role": "user", "content": "How many aquarium videos was ZebraViT trained on?"}])
    assert "Zebrafish Vision Transformer" in [c["title"] for c in r.model_extra["rag"]["citations"]]


def test_ingest_needs_the_token_from_serve_json(app, server):
    h = {"Authorization": "Bearer test-key"}
    r = httpx.post(f"{server.url}/v1/ingest", headers=h, json={"paths": ["data/sample"]})
    assert r.status_code == 403
    token = json.loads((app.settings.data_dir / "serve.json").read_text())["ingest_token"]
    r = httpx.post(f"{server.url}/v1/ingest", headers={**h, "X-Ingest-Token": token}, json={"paths": ["/no/such/file"]})
    assert r.status_code == 400 and "no such file" in r.json()["error"]["message"]


def test_rag_search_goes_through_the_running_server(app, server, capsys):
    """`rag search` on the served data dir asks the server (the index is open there) and prints its hits."""
    from serving import cli

    rc = cli.main(["search", "Chinese multimodal math benchmark", "-k", "3", "--json", "--config", "cpu",
                   "--data-dir", str(app.settings.data_dir)])
    hits = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(hits) == 3 and hits[0]["title"].startswith(CMM_TITLE)
    assert hits == [h.to_dict() for h in app.search("Chinese multimodal math benchmark", k=3)]
    r = httpx.post(f"{server.url}/v1/search", headers={"Authorization": "Bearer test-key"}, json={"query": "x", "k": "five"})
    assert r.status_code == 400 and "whole number" in r.json()["error"]["message"]
    assert httpx.post(f"{server.url}/v1/search", json={"query": "x"}).status_code == 401
