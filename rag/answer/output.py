"""The model's JSON output ``{"found": bool, "answer": str}``: parsed whole, or streamed while it is written.

Partial JSON is parsed by pydantic-core (``allow_partial="trailing-strings"``), which decodes escapes
and surrogate pairs correctly (an emoji arrives whole) and keeps a string that is still being written.

Example:
    >>> x = AnswerStream()
    >>> "".join(x.feed(p) for p in ['{"found": true, "ans', 'wer": "A \\\\"b', '\\\\" \\\\ud83d', '\\\\ude00 [1].', '"}'])
    'A "b" 😀 [1].'
    >>> x.found
    True
    >>> parse_output('{"found": false, "answer": "x"}', json_mode=True)
    (False, 'x')
"""

from __future__ import annotations

import logging
import re

from pydantic_core import from_json

log = logging.getLogger(__name__)
_FOUND_FALSE = re.compile(r'"found"\s*:\s*false')


def _partial(raw: str) -> dict:
    try:
        obj = from_json(raw, allow_partial="trailing-strings")
    except ValueError:  # an invalid escape the model wrote, or not JSON at all
        return {}
    return obj if isinstance(obj, dict) else {}


class AnswerStream:
    """Feed raw pieces of the model's JSON; get back the new characters of ``answer`` each time."""

    def __init__(self):
        self.raw = ""
        self.sent = ""
        self.found: bool | None = None

    def feed(self, piece: str) -> str:
        self.raw += piece
        obj = _partial(self.raw)
        if isinstance(obj.get("found"), bool):
            self.found = obj["found"]
        answer = obj.get("answer")
        if not isinstance(answer, str) or len(answer) <= len(self.sent) or not answer.startswith(self.sent):
            return ""
        new, self.sent = answer[len(self.sent):], answer
        return new


def parse_output(raw: str, json_mode: bool) -> tuple[bool, str]:
    """(found, answer text) from the model's whole output (cut off by the token limit or not).

    >>> parse_output('{"found": true, "answer": "Cut off mid', True)
    (True, 'Cut off mid')
    >>> parse_output("plain text", False)
    (True, 'plain text')
    """
    if not json_mode:
        return True, raw.strip()
    obj = _partial(raw)
    if not obj:
        log.info("model output is not JSON: %r", raw[:200])
        return not _FOUND_FALSE.search(raw), raw.strip()
    found = obj.get("found", True) is not False
    text = str(obj.get("answer", "")).strip()
    if text.startswith("{") and '"answer"' in text:  # small models sometimes nest the JSON in the answer
        inner = _partial(text)
        text = str(inner.get("answer", text)).strip()
    return found, text
