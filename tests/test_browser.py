"""The chat UI in headless Chromium with the real offline models (cpu preset).

One server (module fixture) serves both tests: real embedder + LLM over the sample corpus in a
temporary data dir. Every request the page makes is logged; none may leave 127.0.0.1.
Run: pytest -m browser tests/test_browser.py   (a few minutes on 2 CPU cores)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
pytest.importorskip("playwright.sync_api")
pytest.importorskip("gradio")

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ANSWER_TIMEOUT_MS = 600_000  # one answer takes ~10-40 s on 2 idle cores, minutes on a busy machine
QUESTION = "Which benchmark evaluates Chinese multimodal math and how large is it?"
FOLLOW_UP = "Which models were evaluated on it?"
UNANSWERABLE = "What speedup does FlashAttention-3 achieve over FlashAttention-2 on H100 GPUs?"


class Tracker:
    """A local HTTP server that counts every request: a page that loads a URL from a paper hits it."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def tracker():
    t = Tracker()
    yield t
    t.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, tracker):
    import rag
    from rag.config import ServingSettings
    from rag.testing import free_port
    from serving import server as srv
    from serving.cmd_serve import prepare

    # RAG_TEST_DATA_DIR: reuse an index built by an earlier run (ingest takes minutes on CPU)
    app = rag.load("cpu", data_dir=os.environ.get("RAG_TEST_DATA_DIR") or tmp_path_factory.mktemp("browser"))
    prepare(app)  # ingest the sample corpus, load both models
    poison = tmp_path_factory.mktemp("poison") / "poison.jsonl"
    url = f"http://127.0.0.1:{tracker.port}"
    poison.write_text(json.dumps({"title": "PixelBeacon: A Benchmark for Tracking Pixels", "abstract": (
        f"PixelBeacon is a benchmark of 4,321 web pages for tracking pixels. ![beacon]({url}/markdown.png) "
        f"<img src=\"{url}/html.png\"> Details are at {url}/link and [here]({url}/anchor).")}) + "\n")
    app.ingest([poison], progress=False)
    titles = {h.title for h in app.search("multimodal", k=1000, mode="dense")}
    with srv.Running(app, ServingSettings(port=free_port(), concurrency=1)) as running:
        yield app, running, titles


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update"])
        yield b
        b.close()


@pytest.fixture
def page(browser, served):
    _, running, _ = served
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.requests = []  # every URL the page asked for
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(running.url, wait_until="domcontentloaded")
    pg.locator("#rag-question textarea").wait_for(state="visible")
    yield pg
    context.close()


def ask(page, question: str, turn: int) -> str:
    """Type a question, press Enter, wait until the final answer (and its sources) is shown; return the answer text."""
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator(f'#rag-sources-list[data-turn="{turn}"]').wait_for(state="attached", timeout=ANSWER_TIMEOUT_MS)
    bot = page.locator('#rag-chat [data-testid="bot"]').last
    bot.wait_for(state="visible")
    return bot.inner_text()


def assert_all_local(page):
    remote = [u for u in page.requests
              if urlparse(u).scheme not in ("data", "blob", "about") and urlparse(u).hostname not in ("127.0.0.1",)]
    assert page.requests and not remote, f"requests left the machine: {remote[:10]}"


def test_chat_cites_sources_follow_up_and_feedback(page, served):
    app, _, titles = served
    text = ask(page, QUESTION, turn=1)
    panel = page.locator("#rag-sources")
    cited = [t for t in titles if t in text]
    assert cited, f"the answer cites no corpus title: {text!r}"
    assert any(t.startswith("CMM-Math") for t in cited), text
    assert cited[0] in panel.inner_text()
    assert panel.locator(".rag-src.cited").count() >= 1
    assert panel.locator("mark").count() >= 1  # query terms highlighted

    text2 = ask(page, FOLLOW_UP, turn=2)
    assert text2.strip()
    assert page.locator('#rag-chat [data-testid="bot"]').count() >= 2
    assert "Retrieved for:" in panel.inner_text()
    # the follow-up was searched as a standalone question built from the conversation
    assert panel.locator(".rag-meta em").first.inner_text().strip() != FOLLOW_UP

    feedback = app.settings.data_dir / "feedback.jsonl"
    seen = len(feedback.read_text().splitlines()) if feedback.exists() else 0
    page.locator('#rag-chat [data-testid="bot"]').first.hover()
    page.locator("#rag-chat").get_by_role("button", name="Like", exact=True).first.click()
    record = None
    deadline = time.time() + 20
    while time.time() < deadline and record is None:
        if feedback.exists():
            for line in feedback.read_text().splitlines()[seen:]:
                r = json.loads(line)
                if r["question"] == QUESTION and r["vote"] == "up":
                    record = r
        time.sleep(0.2)
    assert record, "no thumbs-up record in feedback.jsonl"
    assert record["citations"] and record["citations"][0]["title"] in titles

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    assert_all_local(page)


def test_unanswerable_question_is_refused(page, served):
    app, _, _ = served
    text = ask(page, UNANSWERABLE, turn=1)
    assert app.settings.answer.refusal_text in text and "FlashAttention-3" in text
    assert page.locator("#rag-sources .rag-src.cited").count() == 0
    page.locator("#rag-new-chat").click()
    page.locator('#rag-sources-list[data-turn="0"]').wait_for(state="attached")
    assert page.locator('#rag-chat [data-testid="bot"]').count() == 0
    assert_all_local(page)


def test_a_poisoned_abstract_fetches_nothing(page, served, tracker):
    """An abstract with a Markdown image, an <img> tag and links to a local tracker: shown as text, never loaded."""
    text = ask(page, "What is PixelBeacon and how many web pages does it contain?", turn=1)
    panel = page.locator("#rag-sources")
    assert "PixelBeacon" in panel.inner_text()
    assert f"127.0.0.1:{tracker.port}/markdown.png" in panel.inner_text()  # visible as text
    page.wait_for_timeout(1500)  # give any stray load a moment
    assert tracker.hits == [], f"the page fetched {tracker.hits}"
    assert page.locator(f'img[src*="{tracker.port}"]').count() == 0
    assert page.locator(f'a[href*="{tracker.port}"]').count() == 0
    assert not [u for u in page.requests if f":{tracker.port}" in u]
    assert text.strip()


def test_stop_frees_the_slot(page, served):
    import httpx

    _, running, _ = served
    box = page.locator("#rag-question textarea")
    box.fill(QUESTION)
    box.press("Enter")
    page.locator("#rag-sources .rag-src").first.wait_for(state="visible", timeout=ANSWER_TIMEOUT_MS)  # sources came first
    page.locator("#rag-stop").click()
    deadline = time.time() + 3
    while time.time() < deadline and httpx.get(f"{running.url}/healthz").json()["queue"]["running"]:
        time.sleep(0.1)
    assert httpx.get(f"{running.url}/healthz").json()["queue"]["running"] == 0, "Stop did not free the answer slot"
    assert_all_local(page)


@pytest.mark.parametrize("moment", ["sources", "first_text"])
def test_a_question_sent_at_the_worst_moment_is_kept_or_answered(page, served, moment):
    """Issue: a question sent while an answer was written was cleared from the box and never asked. Sent right when
    the sources appear, or right when the first answer text does, it must stay in the box with a note (or, if the
    first answer finished before it was sent, be answered); once the first answer is done, sending it answers it."""
    from serving.ui import BUSY_NOTE, READY_NOTE

    box = page.locator("#rag-question textarea")
    box.fill(QUESTION)
    box.press("Enter")
    if moment == "sources":
        page.locator("#rag-sources .rag-src").first.wait_for(state="visible", timeout=ANSWER_TIMEOUT_MS)
    else:  # the first answer text: the bot message no longer says what it is doing
        page.wait_for_function("""() => { const b = [...document.querySelectorAll('#rag-chat [data-testid="bot"]')].pop();
            const t = b ? b.innerText.trim() : ''; return t && !/^(Searching|Writing|Waiting)/.test(t); }""",
                               timeout=ANSWER_TIMEOUT_MS)
    box.fill(UNANSWERABLE)
    box.press("Enter")
    page.locator('#rag-sources-list[data-turn="1"]').wait_for(state="attached", timeout=ANSWER_TIMEOUT_MS)
    users = page.locator('#rag-chat [data-testid="user"]')
    page.wait_for_timeout(1000)  # the turn-2 question, if it was taken, shows up by now
    if users.count() == 1:  # not asked: it must still be there, and the user told why and when to send it
        assert box.input_value() == UNANSWERABLE, "the question typed during the answer was lost"
        page.locator("#rag-notice").filter(has_text=READY_NOTE[2:40]).wait_for(timeout=20_000)
        assert BUSY_NOTE[2:20] not in page.locator("#rag-notice").inner_text()
        box.press("Enter")  # the first answer is done: now it is asked
    bot = page.locator('#rag-chat [data-testid="bot"]').nth(1)
    bot.filter(has_text=served[0].settings.answer.refusal_text).wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert users.count() == 2 and UNANSWERABLE in users.nth(1).inner_text()
    assert_all_local(page)
