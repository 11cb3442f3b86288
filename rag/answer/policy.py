"""The one decision of the answer stage: answer, quote, list, refuse or call it off-topic, and why.

``decide`` reads what the steps found (``Outcome``) and the calibrated numbers (``answer.policy``,
``rag.config.AnswerPolicy``) and returns a ``Decision``. The pipeline asks it twice on the question path (after the
evidence: generate or refuse; after the model: its answer, the quotes, or a refusal) and once on the list path; it
never decides by itself. The rule, in order:

1. A request without research vocabulary that nothing in the corpus is close to (``closest`` under
   ``off_topic_closeness``) is off-topic. Everyday words are not off-topic by themselves: a problem told in a
   newcomer's words lies close to its paper, and words the corpus lacks (a typo, "squashed") count for nothing.
2. A distinctive term of the question (a name, an acronym) that occurs nowhere in the corpus: refuse, saying so.
3. Evidence under ``min_evidence``, and no paper named by the question: refuse.
4. Not generated yet: generate.
5. The model found the answer and a sentence of it passed the citation check: the answer.
6. Otherwise (the model declined, or nothing it wrote is supported): the quotes themselves, when the evidence
   is confident (``confident_evidence``, and the paper has what a named paper is asked for) and the quotes hold
   what is asked; else refuse.

A list question: the papers that meet its criterion, or a refusal when none does.

Example:
    >>> from rag.answer.answerability import Signals
    >>> from rag.config import AnswerPolicy
    >>> p = AnswerPolicy()
    >>> decide(Outcome(Signals(best_evidence=0.5, closest=0.6)), p).route
    'generate'
    >>> decide(Outcome(Signals(best_evidence=0.2, closest=0.2, topical=False)), p).route  # nothing near: off-topic
    'off_topic'
    >>> decide(Outcome(Signals(best_evidence=0.2, closest=0.5, topical=False)), p).reason  # near a paper: a refusal
    'weak_evidence'
    >>> decide(Outcome(Signals(best_evidence=0.5, missing=["FlashAttention-3"])), p)
    Decision(route='refusal', reason='missing_terms', note='The indexed papers do not mention FlashAttention-3.')
    >>> decide(Outcome(Signals(best_evidence=0.5), found=False, quotes_hold=True), p)
    Decision(route='extractive', reason='model', note='')
    >>> decide(Outcome(listed=0), p).reason
    'weak_evidence'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.answerability import Signals, explain
from rag.answer.result import ANSWER, EXTRACTIVE, LIST, OFF_TOPIC, REFUSAL
from rag.config import AnswerPolicy

GENERATE = "generate"  # the one route that is not an Answer kind: the evidence passed, ask the model


@dataclass(frozen=True)
class Outcome:
    """What the steps found so far."""

    signals: Signals | None = None  # the evidence's answerability signals (question path)
    found: bool | None = None  # the model said it found the answer (None: not asked yet)
    cited: bool = False  # a sentence of the model's answer passed the citation check
    quotes_hold: bool = False  # the fallback's quotes mention the question's names and hold what it asks
    listed: int | None = None  # list path: how many papers meet the criterion


@dataclass(frozen=True)
class Decision:
    route: str  # generate | answer | extractive | list | refusal | off_topic
    reason: str = ""  # why: the refusal reason, or for the extractive route why the model's answer was not used
    note: str = ""  # the sentence a refusal adds after the refusal text ("The indexed papers do not mention X.")


def decide(o: Outcome, policy: AnswerPolicy) -> Decision:
    """The route for what the steps found (the rule: module docstring)."""
    if o.listed is not None:
        return Decision(LIST) if o.listed else Decision(REFUSAL, "weak_evidence")
    s = o.signals
    if not s.topical and s.closest < policy.off_topic_closeness:
        return Decision(OFF_TOPIC, "off_topic")
    if s.missing:
        return Decision(REFUSAL, "missing_terms", explain("missing_terms", s))
    if s.best_evidence < policy.min_evidence and not s.name_match:
        return Decision(REFUSAL, "weak_evidence", explain("weak_evidence", s))
    if o.found is None:
        return Decision(GENERATE)
    if o.found and o.cited:
        return Decision(ANSWER)
    reason = "model" if not o.found else "unsupported"
    if confident(s, policy) and o.quotes_hold:
        return Decision(EXTRACTIVE, reason)
    return Decision(REFUSAL, reason)


def confident(s: Signals, policy: AnswerPolicy) -> bool:
    """Is the evidence strong enough to answer with the quotes alone if the model declines?"""
    return s.best_evidence >= policy.confident_evidence and not s.asked_missing


def says_refusal(text: str, refusal_text: str) -> bool:
    """Did the model decline in words (empty, or the refusal phrase anywhere in its text)?

    >>> says_refusal("Sorry: I could not find this in the indexed papers!", "I could not find this in the indexed papers.")
    True
    """
    norm = lambda t: " ".join(re.findall(r"[a-z]+", t.lower()))  # noqa: E731
    return not text.strip() or norm(refusal_text) in norm(text)
