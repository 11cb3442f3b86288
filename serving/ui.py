"""The Gradio chat UI: sources first, then a checked, cited answer, with Stop, New chat and uploads.

    create_ui(app, answer_queue, ingest_jobs, serving_settings, facets) -> gr.Blocks (built, not served)

``serving.server`` mounts it next to the HTTP API. Every answer goes through the shared
``AnswerQueue``: a waiting user sees their place in line, a full line says when to try again,
Stop / New chat / closing the tab cancel the answer and free its slot. One answer is written at a time per
session: a question sent meanwhile (Enter, Ask) stays in the box with a note (``BUSY_NOTE``), never lost. Rendering (escaped, nothing
fetched from outside) is ``serving.render``; votes go to ``serving.feedback``.

Endpoints for programs (``gradio_client.Client(url).predict(question, api_name="/ask")``):

    /ask          question, k=0 -> the answer as a dict (``Answer.to_dict()``)
    /ask_stream   question, k=0 -> {"sources": [...]} then {"text": partial} ... then {"done": true, **answer}
    /chat         the chat box itself (message, history, k, dates, pages -> history, sources, box, note); the box
                  is emptied when the question is taken and then left as the user has it
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from rag.answer import Answer, Sources
from rag.errors import Cancelled, RagError
from serving.answer_queue import Busy
from serving.feedback import answer_record, write_feedback
from serving.render import clean_question, friendly_error, render_answer, render_hits, render_sources, safe
from serving.runner import AnswerRun, Tick, Waiting

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = [
    "Which benchmark evaluates Chinese multimodal math and how large is it?",
    "What is NVLM and how does it compare to GPT-4o?",
    "Which papers introduce a dataset for remote sensing imagery?",
    "What post-processing technique reduces the hubness problem in cross-modal retrieval?",
]
HISTORY_TURNS = 20  # conversation turns kept per session
# A question sent while this session's answer is still being written is not asked (a follow-up needs the answer
# before it) and not dropped: it stays in the box with this note, to send when the answer is done or stopped.
BUSY_NOTE = ("\u23f3 An answer is still being written, so your new question is kept in the box: press Enter or Ask "
             "again when it is done, or Stop it first.")
READY_NOTE = "\u2705 The answer is done: the question kept in the box is ready to send (Enter or Ask)."


class Sessions:
    """Which browser sessions have an answer being written (one at a time per session).

    >>> s = Sessions()
    >>> s.start("a"), s.start("a"), s.start("b")
    (True, False, True)
    >>> s.finish("a")  # True: a question was turned away meanwhile (it waits in the box)
    True
    >>> s.start("a"), s.finish("a")
    (True, False)
    """

    def __init__(self):
        import threading

        self._busy: set[str] = set()
        self._turned_away: set[str] = set()
        self._lock = threading.Lock()

    def start(self, session: str) -> bool:
        """Mark ``session`` as answering; False if it already is (the caller keeps the question and says so)."""
        with self._lock:
            if session in self._busy:
                self._turned_away.add(session)
                return False
            self._busy.add(session)
            return True

    def finish(self, session: str) -> bool:
        """The session's answer is done; returns whether a question was turned away while it ran."""
        with self._lock:
            self._busy.discard(session)
            turned_away = session in self._turned_away
            self._turned_away.discard(session)
            return turned_away


def _new_state() -> dict:
    # turns: the clean conversation sent to chat_stream; records: chatbot index -> answer record
    return {"turns": [], "records": {}}


def _filters(dates: list[str] | None, pages: list[str] | None) -> dict | None:
    f = {}
    if dates:
        f["date"] = list(dates)
    if pages:
        f["page"] = list(pages)
    return f or None


def _events(app, answer_queue, messages: list[dict], k, filters, timeout_s: float) -> Iterator[Any]:
    """The runner's events; a full line becomes one Busy event."""
    try:
        run = AnswerRun(app, answer_queue, messages, k=k, filters=filters, timeout_s=timeout_s)
    except Busy as e:
        yield e
        return
    with contextlib.closing(run.events()) as events:  # closing it (Stop, a closed tab) cancels the answer
        yield from events


def create_ui(app, answer_queue, ingest_jobs, settings, facets: tuple[list[str], list[str]] = ([], [])):
    """Build the chat UI (shared by all sessions). ``facets``: (dates, pages) for the filters."""
    import gradio as gr

    s = app.settings
    dates, pages = facets
    sessions = Sessions()

    def chat(message: str, history: list, state: dict, k: float, date_f: list, page_f: list,
             request: gr.Request = None) -> Iterator[tuple]:
        session = getattr(request, "session_hash", None) or str(id(state))
        if not sessions.start(session):  # an answer of this session is being written: keep the question, say so
            yield gr.update(), gr.update(), gr.update(), gr.update(), BUSY_NOTE
            return
        done = False
        try:
            yield from _chat(message, history, state, k, date_f, page_f)
            done = True
        finally:
            turned_away = sessions.finish(session)
        if done and turned_away:  # the question the user sent meanwhile is still in the box: say it can go now
            yield gr.update(), gr.update(), gr.update(), gr.update(), READY_NOTE

    def _chat(message: str, history: list, state: dict, k: float, date_f: list, page_f: list) -> Iterator[tuple]:
        """The answer of one accepted question: the box is emptied once, when it is taken; later updates leave the
        box alone, so what the user types meanwhile stays there."""
        state = state or _new_state()
        history = list(history or [])
        question = clean_question(message)
        history.append({"role": "user", "content": safe(question) if question else "(empty question)"})
        history.append({"role": "assistant", "content": ""})
        idx = len(history) - 1
        if not question or len(question) > s.answer.max_question_chars:
            history[idx]["content"] = ("\u26a0\ufe0f Please type a question about the indexed papers." if not question else
                                       f"\u26a0\ufe0f Your question is {len(question):,} characters long; please keep it "
                                       f"under {s.answer.max_question_chars:,}.")
            yield history, gr.update(), "", state, ""
            return
        history[idx]["content"] = "<em>Searching the papers\u2026</em>"
        yield history, gr.update(), "", state, ""  # the question is taken: the box empties, once
        messages = state["turns"] + [{"role": "user", "content": question}]
        text, answer = "", None
        try:
            for ev in _events(app, answer_queue, messages, int(k) if k else None, _filters(date_f, page_f),
                              settings.request_timeout_s):
                if isinstance(ev, Busy):
                    raise ev
                if isinstance(ev, Waiting):
                    history[idx]["content"] = (f"<em>Waiting for a free slot: #{ev.position} in line "
                                               f"(~{ev.eta_s:.0f} s). Stop leaves the line.</em>")
                elif isinstance(ev, Sources):
                    history[idx]["content"] = "<em>Writing an answer from these papers\u2026</em>"
                    yield history, render_hits(ev.hits, ev.question, turn=len(state["records"]),
                                                         filtered=f"Filtered: {ev.filtered}." if ev.filtered else ""), gr.update(), state, gr.update()
                    continue
                elif isinstance(ev, Tick) and not text:
                    history[idx]["content"] = f"<em>Writing an answer from these papers\u2026 {ev.elapsed_s:.0f} s</em>"
                elif isinstance(ev, str):
                    text += ev
                    history[idx]["content"] = safe(text) + " \u258c"
                elif isinstance(ev, Answer):
                    answer = ev
                yield history, gr.update(), gr.update(), state, gr.update()
            if answer is None:
                raise RuntimeError("the answer stream ended without an answer")
        except Cancelled:
            history[idx]["content"] = "<em>Stopped.</em>"
            yield history, gr.update(), gr.update(), state, gr.update()
            return
        except Exception as e:  # noqa: BLE001 - every failure becomes a chat message
            if not isinstance(e, RagError):
                log.exception("answering %r failed", question[:200])
            history[idx]["content"] = friendly_error(e)
            yield history, gr.update(), gr.update(), state, gr.update()
            return
        history[idx]["content"] = render_answer(answer)
        turn = {"role": "assistant", "content": answer.text, "papers": [c.paper_id for c in answer.citations]}
        state = {"turns": (state["turns"] + [{"role": "user", "content": question}, turn])[-2 * HISTORY_TURNS:],
                 "records": {**state["records"], str(idx): answer_record(answer)}}
        yield history, render_sources(answer, turn=len(state["records"])), gr.update(), state, ""

    chat.__annotations__["request"] = gr.Request  # a real class, so Gradio passes the request (its session)

    def _api_events(question: str, k) -> Iterator[Any]:
        q = clean_question(question)
        for ev in _events(app, answer_queue, [{"role": "user", "content": q}], int(k) if k else None, None,
                          settings.request_timeout_s):
            if isinstance(ev, Busy):
                raise ev
            yield ev

    def ask(question: str, k: int = 0) -> dict:
        """Answer one question (no history); returns Answer.to_dict()."""
        try:
            answer = next(ev for ev in _api_events(question, k) if isinstance(ev, Answer))
            return answer.to_dict()
        except Exception as e:  # noqa: BLE001
            if not isinstance(e, RagError):
                log.exception("/ask failed")
            raise gr.Error(friendly_error(e), print_exception=False) from None

    def ask_stream(question: str, k: int = 0) -> Iterator[dict]:
        """Stream one answer: {"sources": [...]}, then {"text": partial, "done": False}, then {"done": True, **answer}."""
        text = ""
        try:
            for ev in _api_events(question, k):
                if isinstance(ev, Answer):
                    yield {"done": True, **ev.to_dict()}
                    return
                if isinstance(ev, Sources):
                    yield {"text": "", "done": False, "sources": [h.to_dict() for h in ev.hits]}
                elif isinstance(ev, str):
                    text += ev
                    yield {"text": text, "done": False}
        except Exception as e:  # noqa: BLE001
            if not isinstance(e, RagError):
                log.exception("/ask_stream failed")
            raise gr.Error(friendly_error(e), print_exception=False) from None

    def upload(files: list | None) -> Iterator[tuple]:
        """Index uploaded JSONL / trending-page files through the server's ingest jobs, with progress."""
        paths = [getattr(f, "name", f) for f in files or []]
        if not paths:
            yield "Choose .jsonl, .json or .txt files first.", gr.update(), gr.update()
            return
        try:
            job = ingest_jobs.submit(paths)
        except RagError as e:
            yield friendly_error(e), gr.update(), gr.update()
            return
        while (job := ingest_jobs.wait(job.id, timeout=0.5)).state in ("queued", "running"):
            done = f": {job.stage} {job.done:,}/{job.total:,}" if job.total else ""
            yield f"Indexing {len(paths)} file(s){done}\u2026", gr.update(), gr.update()
        if job.state == "failed":
            yield f"\u26a0\ufe0f Indexing failed: {safe(job.error)}", gr.update(), gr.update()
            return
        r = job.report
        skipped = sum(r.get("skipped", {}).values())
        new_dates = sorted({v for v, _ in app.store.facet("dates")})
        new_pages = sorted({v for v, _ in app.store.facet("sources")})
        yield (f"Indexed: {r['added']} new, {r['updated']} updated, {r['unchanged']} unchanged papers"
               f"{f', {skipped} bad records skipped' if skipped else ''}. Ask away.",
               gr.update(choices=new_dates), gr.update(choices=new_pages))

    def on_like(state: dict, data: gr.LikeData) -> str:
        liked = data.liked
        vote = "up" if liked is True or liked == "Like" else "down" if liked is False or liked == "Dislike" else str(liked or "")
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        record = (state or {}).get("records", {}).get(str(idx))
        if record is None or not vote:
            return ""
        write_feedback(s.data_dir, record, vote)
        return "Thanks for the feedback!"

    on_like.__annotations__["data"] = gr.LikeData  # a real class, so Gradio passes the event data

    with gr.Blocks(title="Paper QA", analytics_enabled=False) as demo:
        state = gr.State(_new_state())
        gr.Markdown("## Ask the papers\nAnswers quote the indexed papers and cite them; every sentence is checked "
                    "against its quote. When the papers do not say it, you are told so.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", elem_id="rag-chat", height=560, sanitize_html=True,
                                     render_markdown=True, feedback_options=("Like", "Dislike"),
                                     placeholder="Ask about the indexed papers, then ask follow-ups.",
                                     buttons=["copy"])
                with gr.Row():
                    msg = gr.Textbox(placeholder="Ask a question about the papers and press Enter", show_label=False,
                                     scale=5, elem_id="rag-question", max_lines=6, autofocus=True)
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="rag-send")
                    stop = gr.Button("Stop", variant="stop", scale=1, elem_id="rag-stop")
                with gr.Row():
                    new = gr.Button("New chat", elem_id="rag-new-chat", size="sm")
                    notice = gr.Markdown("", elem_id="rag-notice")
                gr.Examples(EXAMPLE_QUESTIONS, inputs=[msg], label="Example questions")
            with gr.Column(scale=2):
                with gr.Accordion("Search options", open=False):
                    k = gr.Slider(1, 10, value=s.retrieval.k, step=1, label="Number of sources", elem_id="rag-k")
                    date_f = gr.Dropdown(dates, value=[], multiselect=True, label="Only papers from these dates",
                                         elem_id="rag-dates")
                    page_f = gr.Dropdown(pages, value=[], multiselect=True, label="Only papers from these files",
                                         elem_id="rag-pages")
                with gr.Accordion("Add papers", open=False):
                    files = gr.File(file_count="multiple", file_types=[".jsonl", ".json", ".txt"],
                                    label="JSONL ({title, abstract}) or saved trending-papers pages", elem_id="rag-upload")
                    add = gr.Button("Add to the index", size="sm", elem_id="rag-add")
                    added = gr.Markdown("", elem_id="rag-ingest-status")
                gr.Markdown("### Sources")
                sources = gr.HTML(render_sources(None), elem_id="rag-sources", max_height=620)

        limit = settings.concurrency + settings.max_waiting  # all reach our queue, which shows places in line
        chat_kw = dict(concurrency_limit=limit, concurrency_id="answer", show_progress="minimal")
        inputs, outputs = [msg, chatbot, state, k, date_f, page_f], [chatbot, sources, msg, state, notice]
        # "multiple": a question sent while an answer runs reaches ``chat``, which keeps it in the box with a note
        # (Gradio's default, "once", ignores the send while the box is emptied by the running answer: it was lost)
        chat_kw["trigger_mode"] = "multiple"
        asked = [msg.submit(chat, inputs, outputs, api_name="chat", **chat_kw),
                 send.click(chat, inputs, outputs, api_visibility="private", **chat_kw)]
        stop.click(None, None, None, cancels=asked, api_visibility="private", queue=False)
        new.click(lambda: ([], _new_state(), render_sources(None), ""), None, [chatbot, state, sources, msg],
                  cancels=asked, api_visibility="private", queue=False)
        chatbot.clear(lambda: (_new_state(), render_sources(None)), None, [state, sources], api_visibility="private", queue=False)
        chatbot.like(on_like, [state], [notice], api_visibility="private", queue=False)
        add.click(upload, [files], [added, date_f, page_f], api_visibility="private", concurrency_limit=1)
        gr.api(ask, api_name="ask", concurrency_limit=limit, concurrency_id="answer")
        gr.api(ask_stream, api_name="ask_stream", concurrency_limit=limit, concurrency_id="answer")
    return demo
