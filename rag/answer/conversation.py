"""Follow-ups against the index: the standalone question of a turn, and the papers the conversation cited.

``rag.answer.followup`` reads the conversation (pure text rules); this module completes it from the index: the
ids of the cited titles (or the titles of cited ids), which names the user typed are names of indexed papers, the
LLM rewrite when no pronoun can be resolved, and the cited papers' hits put first among the candidates.

Example:
    >>> from rag.testing import FakeGenerator
    >>> c = FollowUps(store=None, search=lambda *a, **k: [], generator=FakeGenerator, history_turns=3)
    >>> c.rewrite([], "How big is it?")  # nothing to rewrite from
    'How big is it?'
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.answer import followup
from rag.answer.prompting import rewrite_messages
from rag.search.retrieval import Hit

REWRITE_TOKENS = 60  # a rewritten question is one line
REWRITE_SLACK = 120  # a rewrite longer than the question by more characters answered or copied instead


class FollowUps:
    """``store``: the App's locked store; ``search(query, k=, mode=)``: hits; ``generator``: a zero-argument
    callable returning the generator (built only when a rewrite needs it)."""

    def __init__(self, store, search: Callable[..., list[Hit]], generator: Callable, history_turns: int):
        self.store, self.search, self.generator, self.history_turns = store, search, generator, history_turns

    def standalone(self, history: list[dict], question: str) -> tuple[str, list[str]]:
        """(the standalone question, paper ids the conversation cited)."""
        ctx = followup.context(history)
        if ctx.titles or ctx.papers:
            self._cited_titles(ctx)
        standalone = followup.resolve(question, ctx)
        if standalone is None:
            standalone = self.rewrite(history, question) if ctx.names or ctx.last_question else question
        if not followup.keeps_topic(standalone, ctx):
            standalone = f"{ctx.last_question} {question}".strip()
        return standalone, ctx.papers[:2]

    def rewrite(self, history: list[dict], question: str) -> str:
        """Turn a follow-up into a standalone question with the LLM (used when no pronoun can be resolved)."""
        turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")]
        turns = turns[-2 * self.history_turns :]
        if not turns:
            return question
        out = self.generator().complete(rewrite_messages(turns, question), max_new_tokens=REWRITE_TOKENS, temperature=0.0)
        out = " ".join(out.strip().strip('"').split())
        out = re.sub(r"^(rewritten question|question)\s*:\s*", "", out, flags=re.I)
        if not out or len(out) > len(question) + REWRITE_SLACK:  # the model answered or copied instead of rewriting
            return question
        return out

    def with_cited(self, hits: list[Hit], cited: list[str]) -> list[Hit]:
        """Retrieved hits with the conversation's cited papers put first (they stay candidates)."""
        if not cited:
            return hits
        have = {h.paper_id: h for h in hits}
        missing = [pid for pid in cited if pid not in have]
        fetched = {}
        if missing:
            rows = self.store.scroll({"paper_id": missing}, None, limit=64 * len(missing))
            for _, p in sorted(rows, key=lambda r: (r[1].get("paper_id", ""), r[1].get("chunk", 0))):
                fetched.setdefault(p["paper_id"], Hit(p["title"], 0.0, p.get("text", ""), p["paper_id"], p.get("chunk", 0), p.get("pages", [])))
        first = [have.get(pid) or fetched.get(pid) for pid in cited]
        first = [h for h in first if h is not None]
        return first + [h for h in hits if h.paper_id not in set(cited)]

    def _cited_titles(self, ctx: followup.Context) -> None:
        """Complete the cited papers: ids from titles, titles from ids; then order the names in play."""
        if ctx.titles:
            rows = self.store.scroll({"title": ctx.titles}, ["paper_id", "title"], limit=64 * len(ctx.titles))
            by_title = {p["title"]: p["paper_id"] for _, p in rows}
            ctx.papers += [by_title[t] for t in ctx.titles if t in by_title and by_title[t] not in ctx.papers]
        elif ctx.papers:  # paper ids only (the UI, API callers): their titles give the names in play
            rows = self.store.scroll({"paper_id": ctx.papers}, ["paper_id", "title"], limit=64 * len(ctx.papers))
            by_id = {p["paper_id"]: p["title"] for _, p in rows}
            ctx.titles = [by_id[pid] for pid in ctx.papers if pid in by_id]
        followup.set_titles(ctx, ctx.titles, paper_names=self._paper_names)

    def _paper_names(self, names: list[str]) -> list[str]:
        """The ``names`` that are the short name of an indexed paper ("NVLM" for "NVLM: Open ...")."""
        out = []
        for name in names:
            hits = self.search(name, k=3, mode="sparse")
            if any((followup.short_name(h.title) or "").casefold() == name.casefold() for h in hits):
                out.append(name)
        return out
