"""The Gradio chat UI: streamed, cited answers beside the retrieved sources.

    create_app(app)            -> gr.Blocks (built, not launched)
    launch(app, settings)      -> serve it on settings.host:settings.port (127.0.0.1 by default)

Endpoints for programs (``gradio_client.Client(url).predict(question, api_name="/ask")``):

    /ask          question, k=0 -> the answer as a dict (``Answer.to_dict()``)
    /ask_stream   question, k=0 -> {"text": partial, "done": false} ... then {"done": true, **answer}
    /chat         the chat box itself (message, filters, ... -> chat history)

Nothing is loaded from outside the machine: the theme uses system fonts, no share link is
ever created, and Gradio analytics are off.

Example:
    >>> import rag                                                       # doctest: +SKIP
    >>> from serving.ui import launch                                    # doctest: +SKIP
    >>> app = rag.load("cpu")                                            # doctest: +SKIP
    >>> launch(app, app.settings.serving)                                # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answer import Answer, Sources
from rag.config import SAMPLE_CORPUS, ServingSettings
from rag.errors import RagError

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from rag.app import App

log = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.jsonl"
ANSWER_CONCURRENCY_ID = "answer"  # every event that runs the LLM shares one queue
EXAMPLE_QUESTIONS = [
    "Which benchmark evaluates Chinese multimodal math and how large is it?",
    "What is NVLM and how does it compare to GPT-4o?",
    "How many human-curated samples are in the vision-indispensable benchmark built after finding that GeminiPro scores 42.9% on MMMU without images?",
    "What post-processing technique reduces the hubness problem in cross-modal retrieval?",
]
DEV_QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions" / "dev.jsonl"
_STOPWORDS = set(
    "a an and are as at be by can do does did for from how in into is it its of on or that the their them "
    "then there these they this to was were what when where which who whom why will with about after also "
    "than used use using paper papers model models".split()
)
_CSS = """
#rag-sources { overflow-y: auto; }
.rag-src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
.rag-src.cited { border-color: var(--color-accent); border-width: 2px; }
.rag-src .rag-title { font-weight: 600; }
.rag-src .rag-meta { font-size: 0.85em; opacity: 0.75; }
.rag-src .rag-badge { font-size: 0.8em; font-weight: 600; color: var(--color-accent); margin-left: 4px; }
.rag-src .rag-passage { font-size: 0.9em; margin-top: 4px; max-height: 10em; overflow-y: auto; }
.rag-src mark { padding: 0 1px; border-radius: 2px; }
.rag-src mark.rag-quote { background: #fde68a; }
blockquote.rag-quote { margin: 4px 0 4px 8px; padding-left: 8px; border-left: 3px solid var(--color-accent); font-size: 0.92em; }
"""
_feedback_lock = threading.Lock()


# -- rendering (pure functions, tested directly) ------------------------------------------
def query_terms(text: str) -> list[str]:
    """The words of a question worth highlighting in passages (no stopwords, longest first)."""
    words = {w for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z0-9]", text) if len(w) > 2}
    words = {w for w in words if w.lower() not in _STOPWORDS}
    return sorted(words, key=lambda w: (-len(w), w.lower()))


def highlight(text: str, terms: list[str]) -> str:
    """HTML-escape ``text`` and wrap every whole-word occurrence of ``terms`` in ``<mark>``.

    >>> highlight("CMM-Math has <28k> problems", ["cmm-math", "problems"])
    '<mark>CMM-Math</mark> has &lt;28k&gt; <mark>problems</mark>'
    """
    if not terms:
        return html.escape(text)
    pattern = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(t) for t in terms) + r")(?![A-Za-z0-9])", re.I)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_answer(answer: Answer) -> str:
    """Answer text for the chat: ``[n]`` markers as superscripts, then each cited paper with its quotes.

    >>> from rag.answer import Citation, Quote
    >>> from rag.retrieval import Hit
    >>> q = Quote("A does X.", 0, 9, "A does X [2].")
    >>> a = Answer("q", "A does X [2].", [Citation(2, "Paper <A>", "a", "A does X.", [q])], [Hit("B", 1, "", "b"), Hit("Paper <A>", 1, "", "a")], False)
    >>> print(render_answer(a))
    A does X <sup title="Paper &lt;A&gt;">[2]</sup>.
    <BLANKLINE>
    **Sources**
    <BLANKLINE>
    [2] Paper &lt;A&gt;
    <blockquote class="rag-quote">&ldquo;A does X.&rdquo;</blockquote>
    """
    if answer.refused:
        body = html.escape(answer.text)
        if answer.related:
            body += "\n\nClosest papers (not sources): " + "; ".join(html.escape(h.title) for h in answer.related)
        return body
    titles = {c.number: c.title for c in answer.citations}
    for i, h in enumerate(answer.sources, 1):
        titles.setdefault(i, h.title)

    def sup(m: re.Match) -> str:
        nums = [int(n) for n in re.findall(r"\d+", m.group(0))]
        return "".join(f'<sup title="{html.escape(titles.get(n, ""), quote=True)}">[{n}]</sup>' for n in nums)

    body = re.sub(r"\s*\[\d+(?:\s*,\s*\d+)*\]", lambda m: " " + sup(m), html.escape(answer.text, quote=False))
    if not answer.citations:
        return body
    refs = []
    for c in answer.citations:
        quotes = "".join(f'<blockquote class="rag-quote">&ldquo;{html.escape(q.text)}&rdquo;</blockquote>' for q in c.quotes)
        refs.append(f"[{c.number}] {html.escape(c.title)}\n{quotes}")
    return f"{body}\n\n**Sources**\n\n" + "\n\n".join(refs)


def mark_quotes(text: str, spans: list[tuple[int, int]], terms: list[str]) -> str:
    """HTML of ``text`` with the quoted spans in ``<mark class="rag-quote">`` and query terms highlighted elsewhere.

    >>> mark_quotes("A does X. B is <i>.", [(0, 9)], ["B"])
    '<mark class="rag-quote">A does X.</mark> <mark>B</mark> is &lt;i&gt;.'
    """
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out.append(highlight(text[pos:start], terms))
        out.append(f'<mark class="rag-quote">{html.escape(text[start:end])}</mark>')
        pos = end
    out.append(highlight(text[pos:], terms))
    return "".join(out)


def render_sources(answer: Answer | None, placeholder: str = "", turn: int = 0) -> str:
    """The sources panel for an answer: one card per paper, cited ones marked, their quotes highlighted.

    ``turn`` (answers so far in the chat) is written as ``data-turn`` so scripts can wait for it.
    """
    if answer is None:
        return render_hits([], "", placeholder or "Sources for the answer appear here.", turn)
    return render_hits(answer.sources, answer.standalone_question or answer.question,
                       placeholder or "No paper was used for this answer.", turn, answer.citations)


def render_hits(hits: list, question: str, placeholder: str = "", turn: int = 0, citations=()) -> str:
    """Source cards for ``hits`` (shown as soon as retrieval is done, then again with the citations)."""
    if not hits:
        return f'<div id="rag-sources-list" data-turn="{turn}"><p class="rag-empty">{html.escape(placeholder)}</p></div>'
    cited = {c.number: c for c in citations}
    terms = query_terms(question)
    cards = []
    for i, h in enumerate(hits, 1):
        c = cited.get(i)
        badge = '<span class="rag-badge">&#9733; cited</span>' if c else ""
        pages = ", ".join(h.pages) or "-"
        spans = [(q.start, q.end) for q in c.quotes] if c and c.text == h.text else []
        cards.append(
            f'<div class="rag-src{" cited" if c else ""}" data-cited="{"true" if c else "false"}">'
            f'<div><span class="rag-num">[{i}]</span> <span class="rag-title">{html.escape(h.title)}</span>{badge}</div>'
            f'<div class="rag-meta">score {h.score:.4f} &middot; from {html.escape(pages)}</div>'
            f'<div class="rag-passage">{mark_quotes(h.text, spans, terms)}</div></div>'
        )
    head = f"<p class=\"rag-meta\">Retrieved for: <em>{html.escape(question)}</em></p>"
    return f'<div id="rag-sources-list" data-turn="{turn}">{head}{"".join(cards)}</div>'


def friendly_error(exc: BaseException) -> str:
    """A one-paragraph message for the chat; never a traceback."""
    if isinstance(exc, RagError):
        msg = str(exc).strip() or type(exc).__name__
        return f"\u26a0\ufe0f {msg[0].upper()}{msg[1:]}"
    return (f"\u26a0\ufe0f Sorry, something went wrong while answering ({type(exc).__name__}). "
            "Please try again; the error was logged.")


def clean_question(text: Any) -> str:
    """Control characters become spaces (the pipeline also does this); surrounding space is dropped."""
    if not isinstance(text, str):
        return ""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()


# -- index facets, examples, feedback -----------------------------------------------------
def index_facets(app: "App", limit: int = 1000) -> tuple[list[str], list[tuple[str, str]]]:
    """(dates, [(page label, page file)]) found in the index, for the filter dropdowns.

    There is no facet API in the store, so this reads the payloads of up to ``limit`` chunks
    (dense search, all chunks); when the index is empty it falls back to the sample corpus.
    """
    dates: set[str] = set()
    pages: dict[str, str] = {}
    try:
        if app.count() > 0:
            for h in app.search("research paper", k=limit, mode="dense", one_per_paper=False):
                dates.update(h.metadata.get("dates", []))
                for p in h.pages:
                    pages.setdefault(_page_file(p), p)
    except Exception:  # the UI still works without filters
        log.warning("could not read dates/pages from the index; using the sample corpus", exc_info=True)
    if not pages:
        from rag.corpus import read_pages

        try:
            for f in sorted(Path(SAMPLE_CORPUS).glob("*.txt")):
                for e in read_pages(f):
                    dates.add(e.date)
                    pages.setdefault(f.name, f"{f.name} ({e.date})")
                    break
        except Exception:
            log.warning("could not read the sample corpus for filter choices", exc_info=True)
    return sorted(dates, key=_date_key), [(label, f) for f, label in sorted(pages.items())]


def _page_file(page: str) -> str:
    return re.sub(r"\s*\([^)]*\)$", "", page)


def _date_key(d: str):
    months = "jan feb mar apr may jun jul aug sep oct nov dec".split()
    m = re.match(r"([A-Za-z]{3})\w*\s+(\d+)", d)
    if m and m.group(1).lower() in months:
        return (0, months.index(m.group(1).lower()), int(m.group(2)), d)
    return (1, 0, 0, d)


def example_questions(n: int = 4) -> list[str]:
    """Fixed good questions, topped up with answerable dev questions."""
    out = list(EXAMPLE_QUESTIONS)
    try:
        with open(DEV_QUESTIONS, encoding="utf-8") as f:
            for line in f:
                q = json.loads(line)
                if q.get("type") != "unanswerable" and len(q["question"]) < 140 and q["question"] not in out:
                    out.append(q["question"])
    except (OSError, ValueError, KeyError):
        pass
    return out[: max(n, len(EXAMPLE_QUESTIONS))]


def answer_record(answer: Answer) -> dict:
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or answer.question,
        "answer": answer.text,
        "kind": answer.kind,
        "refused": answer.refused,
        "citations": [{"number": c.number, "title": c.title, "paper_id": c.paper_id, "quotes": [q.text for q in c.quotes]}
                      for c in answer.citations],
        "sources": [h.title for h in answer.sources],
        "model": answer.model,
    }


def write_feedback(data_dir: str | Path, record: dict, vote: str) -> dict:
    """Append one JSON line ``{time, question, answer, citations, sources, vote}`` to data_dir/feedback.jsonl."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record, "vote": vote}
    path = Path(data_dir) / FEEDBACK_FILE
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with _feedback_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
    return entry


# -- the UI -------------------------------------------------------------------------------
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


def create_app(app: "App", concurrency: int | None = None) -> "gr.Blocks":
    """Build the chat UI for ``app`` (shared by all sessions). Does not launch it."""
    import gradio as gr

    s = app.settings
    limit = concurrency or s.serving.concurrency
    dates, pages = index_facets(app)
    refusal = s.answer.refusal_text

    def chat(message: str, history: list, state: dict, k: float, date_f: list, page_f: list) -> Iterator[tuple]:
        state = state or _new_state()
        history = list(history or [])
        question = clean_question(message)
        history.append({"role": "user", "content": html.escape(question) if question else "(empty question)"})
        history.append({"role": "assistant", "content": ""})
        idx = len(history) - 1
        if not question:
            history[idx]["content"] = "\u26a0\ufe0f Please type a question about the indexed papers."
            yield history, gr.update(), "", state
            return
        if len(question) > s.answer.max_question_chars:
            history[idx]["content"] = (f"\u26a0\ufe0f Your question is {len(question):,} characters long; "
                                       f"please keep it under {s.answer.max_question_chars:,}.")
            yield history, gr.update(), "", state
            return
        history[idx]["content"] = "*Searching the papers and writing an answer\u2026*"
        yield history, gr.update(), "", state
        messages = state["turns"] + [{"role": "user", "content": question}]
        text, answer = "", None
        try:
            for item in app.chat_stream(messages, k=int(k) if k else None, filters=_filters(date_f, page_f)):
                if isinstance(item, Answer):
                    answer = item
                    break
                if isinstance(item, Sources):
                    history[idx]["content"] = "*Writing an answer from these papers\u2026*"
                    yield history, render_hits(item.hits, item.question, turn=len(state["records"])), "", state
                    continue
                text += item
                history[idx]["content"] = html.escape(text)
                yield history, gr.update(), "", state
            if answer is None:
                raise RuntimeError("the answer stream ended without an answer")
        except Exception as e:  # noqa: BLE001 - every failure becomes a chat message
            if not isinstance(e, RagError):
                log.exception("answering %r failed", question[:200])
            history[idx]["content"] = friendly_error(e)
            yield history, gr.update(), "", state
            return
        history[idx]["content"] = render_answer(answer)
        state = {
            "turns": (state["turns"] + [{"role": "user", "content": question},
                                        {"role": "assistant", "content": answer.text,
                                         "papers": [c.paper_id for c in answer.citations]}])[-2 * 20:],
            "records": {**state["records"], str(idx): answer_record(answer)},
        }
        yield history, render_sources(answer, turn=len(state["records"])), "", state

    def ask(question: str, k: int = 0) -> dict:
        """Answer one question (no history); returns Answer.to_dict()."""
        q = clean_question(question)
        try:
            return app.ask(q, k=int(k) if k else None).to_dict()
        except RagError as e:
            raise gr.Error(friendly_error(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001
            log.exception("/ask failed")
            raise gr.Error(friendly_error(e), print_exception=False) from None

    def ask_stream(question: str, k: int = 0) -> Iterator[dict]:
        """Stream one answer: {"text": partial, "done": False} pieces, then {"done": True, **answer}."""
        q = clean_question(question)
        text = ""
        try:
            for item in app.ask_stream(q, k=int(k) if k else None):
                if isinstance(item, Answer):
                    yield {"done": True, **item.to_dict()}
                    return
                if isinstance(item, Sources):
                    yield {"text": "", "done": False, "sources": [h.to_dict() for h in item.hits]}
                    continue
                text += item
                yield {"text": text, "done": False}
        except RagError as e:
            raise gr.Error(friendly_error(e), print_exception=False) from None
        except Exception as e:  # noqa: BLE001
            log.exception("/ask_stream failed")
            raise gr.Error(friendly_error(e), print_exception=False) from None

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

    def new_chat():
        return [], _new_state(), render_sources(None), ""

    with gr.Blocks(title="Paper QA", analytics_enabled=False) as demo:
        state = gr.State(_new_state())
        gr.Markdown("## Ask the papers\nCited answers from the indexed paper abstracts. Answers quote only the retrieved papers; "
                    f"if they do not contain the answer you get: *{html.escape(refusal)}*")
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
                with gr.Row():
                    new = gr.Button("New chat", elem_id="rag-new-chat", size="sm")
                    notice = gr.Markdown("", elem_id="rag-notice")
                gr.Examples(example_questions(), inputs=[msg], label="Example questions")
            with gr.Column(scale=2):
                with gr.Accordion("Search options", open=False):
                    k = gr.Slider(1, 10, value=s.retrieval.k, step=1, label="Number of sources", elem_id="rag-k")
                    date_f = gr.Dropdown(dates, value=[], multiselect=True, label="Only papers from these dates",
                                         elem_id="rag-dates")
                    page_f = gr.Dropdown(pages, value=[], multiselect=True, label="Only papers from these pages",
                                         elem_id="rag-pages")
                gr.Markdown("### Sources")
                sources = gr.HTML(render_sources(None), elem_id="rag-sources", max_height=620, js_on_load=None)

        chat_kw = dict(concurrency_limit=limit, concurrency_id=ANSWER_CONCURRENCY_ID, show_progress="minimal")
        inputs = [msg, chatbot, state, k, date_f, page_f]
        outputs = [chatbot, sources, msg, state]
        msg.submit(chat, inputs, outputs, api_name="chat", **chat_kw)
        send.click(chat, inputs, outputs, api_visibility="private", **chat_kw)
        new.click(new_chat, None, [chatbot, state, sources, msg], api_visibility="private", queue=False)
        chatbot.clear(lambda: (_new_state(), render_sources(None)), None, [state, sources], api_visibility="private", queue=False)
        chatbot.like(on_like, [state], [notice], api_visibility="private", queue=False)
        gr.api(ask, api_name="ask", concurrency_limit=limit, concurrency_id=ANSWER_CONCURRENCY_ID)
        gr.api(ask_stream, api_name="ask_stream", concurrency_limit=limit, concurrency_id=ANSWER_CONCURRENCY_ID)
    return demo


def theme():
    """Gradio's default look with system fonts only (no font files fetched from anywhere)."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


def auth_from(settings: ServingSettings) -> tuple[str, str] | None:
    user = settings.username or os.environ.get("RAG_UI_USERNAME")
    password = settings.password or os.environ.get("RAG_UI_PASSWORD")
    if user and password:
        return (user, password)
    if user or password:
        raise RagError("UI auth needs both a username and a password (serving.username/password or RAG_UI_USERNAME/RAG_UI_PASSWORD)")
    return None


def launch(app: "App", settings: ServingSettings | None = None, *, prevent_thread_lock: bool = False,
           quiet: bool = False) -> "gr.Blocks":
    """Serve the UI on ``settings.host:settings.port`` (default 127.0.0.1:7860); never a share link.

    With ``prevent_thread_lock=True`` it returns once the server runs (``demo.local_url``; stop
    with ``demo.close()``); otherwise it blocks until interrupted.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = settings or app.settings.serving
    demo = create_app(app, concurrency=settings.concurrency)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=None)
    demo.launch(
        server_name=settings.host, server_port=settings.port, share=False, auth=auth_from(settings),
        prevent_thread_lock=prevent_thread_lock, quiet=quiet, theme=theme(), css=_CSS, ssr_mode=False,
        mcp_server=False, show_error=False, inbrowser=False, enable_monitoring=False, pwa=False,
    )
    return demo
