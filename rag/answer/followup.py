"""Follow-ups: a turn that says "it" or "they" is about the papers of the turns before it.

From the conversation so far we keep the papers the assistant cited (message field ``papers``, a
list of paper ids, or the ``[n] Title`` reference lines of its text) and the names in play (short
names of those papers, e.g. "BigDocs" from "BigDocs: An Open ...", then names from the user's last
question). A follow-up is made standalone by putting the name in place of the first pronoun; when
that is not possible the LLM rewrites it, and if the rewrite names none of the names in play the
previous question is prepended. The cited papers stay candidates for the answer either way.

Example:
    >>> ctx = Context(papers=["p1"], names=["BigDocs"], last_question="What is BigDocs?")
    >>> resolve("How many documents and tasks does it cover?", ctx)
    'How many documents and tasks does BigDocs cover?'
    >>> resolve("What are its main results?", ctx)
    "What are BigDocs's main results?"
    >>> keeps_topic("How many documents does the dataset have?", ctx)
    False
    >>> short_name("BigDocs: An Open and Permissively-Licensed Dataset")
    'BigDocs'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.answer.question import PRONOUN
from rag.text import flat, names

_REFERENCE = re.compile(r"^\s*\[(\d+)\]\s+(.+?)\s*$", re.M)


@dataclass
class Context:
    papers: list[str] = field(default_factory=list)  # cited paper ids, most recent turn first
    names: list[str] = field(default_factory=list)  # names in play, most likely referent first
    last_question: str = ""
    titles: list[str] = field(default_factory=list)  # cited titles found in the text (resolved to ids by the caller)


def short_name(title: str) -> str | None:
    """The short name before a title's colon ("NVLM: Open ..." -> "NVLM"), if it is short."""
    head = title.split(":", 1)[0].strip() if ":" in title else ""
    return head if head and len(head.split()) <= 3 and len(head) <= 40 else None


def context(history: list[dict]) -> Context:
    """What the earlier turns were about (see the module docstring)."""
    ctx = Context()
    users = [m.get("content", "") for m in history if m.get("role") == "user" and m.get("content")]
    ctx.last_question = users[-1] if users else ""
    for m in reversed(history):
        if m.get("role") != "assistant":
            continue
        for pid in m.get("papers") or []:
            if isinstance(pid, str) and pid not in ctx.papers:
                ctx.papers.append(pid)
        for _, title in _REFERENCE.findall(m.get("content") or ""):
            if title not in ctx.titles:
                ctx.titles.append(title)
        for title in m.get("titles") or []:
            if isinstance(title, str) and title not in ctx.titles:
                ctx.titles.append(title)
        if ctx.papers or ctx.titles:
            break  # the most recent answer that cited something
    set_titles(ctx, ctx.titles)
    return ctx


def set_titles(ctx: Context, titles: list[str], paper_names: Callable[[list[str]], list[str]] | None = None) -> None:
    """Use ``titles`` as the cited titles and order the names in play: names the user typed that are
    names of indexed papers (``paper_names`` picks them, e.g. by a title search), then the short names
    of the cited papers, then the user's other names.

    The user's own paper name wins over a cited paper's ("What is NVLM?" answered from another
    paper: "it" is still NVLM); a cited paper wins over other names ("Which model beats GPT-4o?"
    answered by NVLM: "it" is NVLM).

    >>> ctx = Context(last_question="Which model beats GPT-4o?")
    >>> set_titles(ctx, ["NVLM: Open Frontier-Class Multimodal LLMs"]); ctx.names
    ['NVLM', 'GPT-4o']
    >>> ctx = Context(last_question="What is NVLM and how does it compare to GPT-4o?")
    >>> set_titles(ctx, ["BigDocs: An Open Dataset"], paper_names=lambda ns: [n for n in ns if n == "NVLM"]); ctx.names
    ['NVLM', 'BigDocs', 'GPT-4o']
    """
    ctx.titles = list(titles)
    cited = [n for n in (short_name(t) for t in ctx.titles) if n]
    typed = names(ctx.last_question)
    first = paper_names([n for n in typed if n not in cited]) if paper_names and typed else []
    ctx.names = list(dict.fromkeys(first + cited + typed))


def resolve(question: str, ctx: Context) -> str | None:
    """The question with its first pronoun replaced by the name in play; None if it has no pronoun or no name."""
    if not ctx.names:
        return None
    m = PRONOUN.search(question)
    if not m:
        return None
    name = ctx.names[0]
    repl = f"{name}'s" if m.group(1) else name
    return question[: m.start()] + repl + question[m.end():]


def keeps_topic(question: str, ctx: Context) -> bool:
    """Does the (rewritten) question still name something the conversation was about?"""
    have = flat(question)
    return not ctx.names or any(flat(n) in have for n in ctx.names)
