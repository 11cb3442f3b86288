"""Refusal detection and refusal-quality rates.

The chatbot refuses with one fixed phrase (``AnswerSettings.refusal_text``).
:func:`is_refusal` checks whether that phrase occurs in an answer after
:func:`eval.metrics.answers.normalize_text` on both sides (case, quote style,
whitespace and edge punctuation do not matter; the phrase must appear as
whole tokens).

Rates are computed over *records*: mappings with a ``"type"`` key (question
type; ``"unanswerable"`` marks questions whose answer is not in the corpus)
and a boolean ``"refused"`` key.

Worked example:

>>> is_refusal("I COULD NOT find this in the indexed papers")
True
>>> is_refusal("The paper reports 23.7% accuracy [1].")
False
>>> records = [
...     {"type": "unanswerable", "refused": True},
...     {"type": "unanswerable", "refused": False},
...     {"type": "factoid", "refused": False},
...     {"type": "multi_hop", "refused": True},
...     {"type": "factoid", "refused": False},
...     {"type": "factoid", "refused": False},
... ]
>>> refusal_accuracy(records)       # 1 of 2 unanswerable refused
0.5
>>> false_refusal_rate(records)     # 1 of 4 answerable refused
0.25
>>> refusal_accuracy(records[2:]) is None
True
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from eval.metrics.answers import normalize_text

__all__ = [
    "DEFAULT_REFUSAL_PHRASE",
    "UNANSWERABLE_TYPES",
    "DECLINED_TYPES",
    "DECLINED_REQUEST_TYPES",
    "is_refusal",
    "refusal_flags",
    "refusal_accuracy",
    "false_refusal_rate",
]

DEFAULT_REFUSAL_PHRASE = "I could not find this in the indexed papers."
UNANSWERABLE_TYPES: frozenset[str] = frozenset({"unanswerable"})
# requests the assistant declines by design (its off-topic / emergency / injection reply)
DECLINED_REQUEST_TYPES: frozenset[str] = frozenset({"off_topic", "emergency", "injection"})
# no gold papers: the right answer declines
DECLINED_TYPES: frozenset[str] = UNANSWERABLE_TYPES | DECLINED_REQUEST_TYPES


def is_refusal(answer_text: str | None, refusal_phrase: str = DEFAULT_REFUSAL_PHRASE) -> bool:
    """Whether the normalised ``refusal_phrase`` occurs in the normalised answer.

    ``None`` or empty answers are not refusals.  Raises ``ValueError`` if the
    phrase normalises to nothing.

    >>> is_refusal("Sorry. “I could not find this in the indexed papers.”")
    True
    >>> is_refusal("I could not find this in the indexed papers I read.", "could not find this")
    True
    """
    phrase = normalize_text(refusal_phrase)
    if not phrase:
        raise ValueError("refusal_phrase is empty after normalisation")
    if not answer_text:
        return False
    return f" {phrase} " in f" {normalize_text(answer_text)} "


def refusal_flags(refused: bool, qtype: str, unanswerable_types: Collection[str] = UNANSWERABLE_TYPES,
                  declined_types: Collection[str] = DECLINED_REQUEST_TYPES) -> dict:
    """One question's refusal metrics (``None`` where undefined); the rates below are their means.

    ``refusal_accuracy`` is defined for unanswerable questions, ``false_refusal_rate`` for answerable
    ones: every type that is neither unanswerable nor a request the assistant declines by design.

    >>> refusal_flags(True, "unanswerable"), refusal_flags(False, "single"), refusal_flags(True, "off_topic")
    ({'refusal_accuracy': 1.0, 'false_refusal_rate': None}, {'refusal_accuracy': None, 'false_refusal_rate': 0.0}, \
{'refusal_accuracy': None, 'false_refusal_rate': None})
    """
    answerable = qtype not in unanswerable_types and qtype not in declined_types
    return {"refusal_accuracy": float(refused) if qtype in unanswerable_types else None,
            "false_refusal_rate": float(refused) if answerable else None}


def _mean_flag(records: Iterable[Mapping[str, Any]], key: str, unanswerable_types: Collection[str]) -> float | None:
    xs = [v for rec in records
          if (v := refusal_flags(bool(rec["refused"]), rec["type"], unanswerable_types)[key]) is not None]
    return sum(xs) / len(xs) if xs else None


def refusal_accuracy(records: Iterable[Mapping[str, Any]],
                     unanswerable_types: Collection[str] = UNANSWERABLE_TYPES) -> float | None:
    """Share of unanswerable records that were refused (``None`` if there are none).

    A record is unanswerable when ``record["type"]`` is in ``unanswerable_types``.

    >>> refusal_accuracy([{"type": "unanswerable", "refused": True}])
    1.0
    """
    return _mean_flag(records, "refusal_accuracy", unanswerable_types)


def false_refusal_rate(records: Iterable[Mapping[str, Any]],
                       unanswerable_types: Collection[str] = UNANSWERABLE_TYPES) -> float | None:
    """Share of answerable records that were refused (``None`` if there are none).

    A record is answerable when its ``"type"`` is neither in ``unanswerable_types`` nor in
    ``DECLINED_REQUEST_TYPES`` (off-topic, emergency and injection requests are declined by design).

    >>> false_refusal_rate([{"type": "factoid", "refused": False}, {"type": "injection", "refused": True}])
    0.0
    """
    return _mean_flag(records, "false_refusal_rate", unanswerable_types)
