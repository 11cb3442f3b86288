"""Rendering answers and sources as HTML for the chat UI: escaped, cited, and never fetching anything.

Paper text and model output are untrusted: an abstract may contain ``![](http://host/x.png)`` or
``<img src=...>``. Everything untrusted goes through ``safe`` first: HTML-escaped, and the
characters Markdown builds images and links from (``! [ ] ( ) < > * _ ` : | ~ #``) written as
entities, so neither the browser nor the chat's Markdown renderer turns them into an image, a link or
a request. Only the few tags made here (``sup``, ``blockquote``, ``mark``, ``div``, ``span``) are HTML.

Example:
    >>> safe("see ![x](http://evil/p.png) <img src=http://evil/q.png>")
    'see &#33;&#91;x&#93;&#40;http&#58;//evil/p.png&#41; &lt;img src=http&#58;//evil/q.png&gt;'
"""

from __future__ import annotations

import html
import re
from typing import Any

from rag.answer import Answer
from rag.errors import RagError

_STOPWORDS = set(
    "a an and are as at be by can do does did for from how in into is it its of on or that the their them "
    "then there these they this to was were what when where which who whom why will with about after also "
    "than used use using paper papers model models".split()
)
_MARKDOWN = str.maketrans({c: f"&#{ord(c)};" for c in "![]()*_`:|~#\\"})
CSS = """
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


def safe(text: Any) -> str:
    """Untrusted text as inert HTML: escaped, with Markdown's image/link characters as entities."""
    return html.escape(str(text), quote=True).translate(_MARKDOWN)


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
        return safe(text)
    pattern = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(t) for t in terms) + r")(?![A-Za-z0-9])", re.I)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(safe(text[pos : m.start()]))
        out.append(f"<mark>{safe(m.group(0))}</mark>")
        pos = m.end()
    out.append(safe(text[pos:]))
    return "".join(out)


_MARKERS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def filter_line(answer: Answer) -> str:
    """How the answer's search was filtered, and any constraint the index could not apply ('' for neither)."""
    return " ".join(x for x in (f"Filtered: {answer.filtered}." if answer.filtered else "", answer.filter_note) if x)


def render_answer(answer: Answer) -> str:
    """Answer HTML for the chat: ``[n]`` markers as superscripts, then each cited paper with its quotes.

    >>> from rag.answer import Citation, Quote
    >>> from rag.search.retrieval import Hit
    >>> q = Quote("A does X.", 0, 9, "A does X [2].")
    >>> a = Answer("q", "A does X [2].", [Citation(2, "Paper <A>", "a", "A does X.", [q])], [Hit("B", 1, "", "b"), Hit("Paper <A>", 1, "", "a")], False)
    >>> print(render_answer(a))
    A does X <sup title="Paper &lt;A&gt;">[2]</sup>.
    <BLANKLINE>
    <strong>Sources</strong>
    <BLANKLINE>
    [2] Paper &lt;A&gt;
    <blockquote class="rag-quote">&ldquo;A does X.&rdquo;</blockquote>
    """
    note = f"\n\n<em>{safe(filter_line(answer))}</em>" if filter_line(answer) else ""
    if answer.refused:
        body = safe(answer.text)
        if answer.related:
            body += "\n\nClosest papers (not sources): " + "; ".join(safe(h.title) for h in answer.related)
        return body + note
    titles = {c.number: c.title for c in answer.citations}
    for i, h in enumerate(answer.sources, 1):
        titles.setdefault(i, h.title)

    def sup(marker: str) -> str:
        nums = [int(n) for n in re.findall(r"\d+", marker)]
        return " " + "".join(f'<sup title="{safe(titles.get(n, ""))}">[{n}]</sup>' for n in nums)

    pos, parts = 0, []
    for m in _MARKERS.finditer(answer.text):
        parts += [safe(answer.text[pos:m.start()]), sup(m.group(0))]
        pos = m.end()
    body = "".join(parts) + safe(answer.text[pos:]) + note
    if not answer.citations:
        return body
    refs = []
    for c in answer.citations:
        quotes = "".join(f'<blockquote class="rag-quote">&ldquo;{safe(q.text)}&rdquo;</blockquote>' for q in c.shown_quotes)
        refs.append(f"[{c.number}] {safe(c.title)}\n{quotes}")
    return f"{body}\n\n<strong>Sources</strong>\n\n" + "\n\n".join(refs)


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
        out.append(f'<mark class="rag-quote">{safe(text[start:end])}</mark>')
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
                       placeholder or "No paper was used for this answer.", turn, answer.citations,
                       filter_line(answer))


def render_hits(hits: list, question: str, placeholder: str = "", turn: int = 0, citations=(), filtered: str = "") -> str:
    """Source cards for ``hits`` (shown as soon as retrieval is done, then again with the citations).
    ``filtered``: how the search was filtered ('Filtered: year ≥ 2024.'), shown above the cards."""
    flt = f'<p class="rag-meta rag-filtered">{safe(filtered)}</p>' if filtered else ""
    if not hits:
        return f'<div id="rag-sources-list" data-turn="{turn}">{flt}<p class="rag-empty">{safe(placeholder)}</p></div>'
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
            f'<div><span class="rag-num">[{i}]</span> <span class="rag-title">{safe(h.title)}</span>{badge}</div>'
            f'<div class="rag-meta">score {h.score:.4f} &middot; from {safe(pages)}</div>'
            f'<div class="rag-passage">{mark_quotes(h.text, spans, terms)}</div></div>'
        )
    head = f"{flt}<p class=\"rag-meta\">Retrieved for: <em>{safe(question)}</em></p>"
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
