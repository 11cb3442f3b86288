"""Thumbs up / down from the chat, one JSON line each in ``<data_dir>/feedback.jsonl``.

Example:
    >>> import tempfile, json
    >>> from rag.answer import Answer
    >>> d = tempfile.mkdtemp()
    >>> e = write_feedback(d, answer_record(Answer("q?", "A [1].", [], [], False)), "up")
    >>> json.loads(open(f"{d}/feedback.jsonl").read())["vote"]
    'up'
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from rag.answer import Answer

FEEDBACK_FILE = "feedback.jsonl"
_lock = threading.Lock()


def answer_record(answer: Answer) -> dict:
    """What is kept of an answer next to a vote."""
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or answer.question,
        "answer": answer.text,
        "kind": answer.kind,
        "refused": answer.refused,
        "citations": [{"number": c.number, "title": c.title, "paper_id": c.paper_id, "quotes": [q.text for q in c.shown_quotes]}
                      for c in answer.citations],
        "sources": [h.title for h in answer.sources],
        "model": answer.model,
    }


def write_feedback(data_dir: str | Path, record: dict, vote: str) -> dict:
    """Append one JSON line ``{time, question, answer, citations, sources, vote}`` to data_dir/feedback.jsonl."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record, "vote": vote}
    path = Path(data_dir) / FEEDBACK_FILE
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
    return entry
