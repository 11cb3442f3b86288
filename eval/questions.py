"""Evaluation question sets: loading and validation against a corpus.

A question file is JSON lines, one object per question::

    {"id": "dev-001", "type": "single", "question": "...", "gold_titles": ["Exact Title"],
     "answer_facts": ["fact copied from the gold abstract"], "notes": "optional"}

Types:

* answerable about named gold papers: ``single``, ``numeric``, ``multi`` (2+ gold papers),
  ``title_lookup``, ``semantic`` (paraphrased), ``false_premise`` (the question states a wrong
  number or relation; the facts are the true ones), ``non_english`` (with ``"language": "es"``
  etc.; facts are language-neutral names and numbers) and ``followup`` (``"turns": [first,
  second]`` instead of ``"question"``; the facts answer the second turn);
* ``list``: "which papers ...?"; ``gold_titles`` is the complete list (2+), facts may be empty;
* declined, with empty ``gold_titles`` and ``answer_facts``: ``unanswerable`` (the papers lack
  the answer), ``off_topic``, ``emergency`` and ``injection``.

Every gold title must be an exact corpus title, and every fact must appear in one of the gold
abstracts or gold titles (compared case- and whitespace-insensitively) unless ``notes`` mentions
"paraphrase".

Example:
    >>> qs = [{"id": "q1", "type": "single", "question": "What does A do?",
    ...        "gold_titles": ["Paper A"], "answer_facts": ["does  X"]}]
    >>> validate(qs, ["Paper A"], {"Paper A": "Paper A Does X well."})
    []
    >>> validate([dict(qs[0], answer_facts=["Paper A"])], ["Paper A"], {"Paper A": "It does X."})  # a fact in the title
    []
    >>> validate(qs + [dict(qs[0], type="bogus")], ["Paper A"], {"Paper A": "A does X."})  # doctest: +NORMALIZE_WHITESPACE
    ["line 2 (q1): duplicate id 'q1' (first on line 1)", "line 2 (q1): unknown type 'bogus' (expected one of: emergency,
    false_premise, followup, injection, list, multi, non_english, numeric, off_topic, semantic, single, title_lookup,
    unanswerable)"]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from rag.errors import InputError

TYPES = ("single", "numeric", "multi", "title_lookup", "semantic", "unanswerable", "followup",
         "list", "false_premise", "non_english", "off_topic", "emergency", "injection")
DECLINED = ("unanswerable", "off_topic", "emergency", "injection")  # no gold papers: the answer is a refusal
REQUIRED = ("id", "type", "gold_titles", "answer_facts")
OPTIONAL = ("question", "turns", "notes", "language")


class QuestionFileError(InputError):
    """A question file that cannot be parsed at all."""


def load_questions(path: str | Path) -> list[dict]:
    """Read a question file (JSON lines; blank lines ignored). Each dict gets ``_line`` (1-based)."""
    path = Path(path)
    if not path.is_file():
        raise QuestionFileError(f"{path}: no such question file")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise QuestionFileError(f"{path}:{n}: invalid JSON ({e.msg}); each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise QuestionFileError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            obj["_line"] = n
            out.append(obj)
    return out


def question_text(q: Mapping) -> str:
    """The text to retrieve with: the question, or the last turn of a follow-up."""
    if q.get("type") == "followup" or "turns" in q:
        turns = q.get("turns") or [""]
        return turns[-1]
    return q.get("question", "")


def retrieval_query(q: Mapping) -> str:
    """The query used for retrieval metrics: a follow-up's two turns joined (the second alone is ambiguous)."""
    if q.get("type") == "followup" or "turns" in q:
        return " ".join(t for t in q.get("turns") or [] if isinstance(t, str))
    return q.get("question", "")


def _norm(text: str) -> str:
    return " ".join(str(text).casefold().split())


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def validate(questions: Iterable[Mapping], corpus_titles: Iterable[str],
             abstracts_by_title: Mapping[str, str]) -> list[str]:
    """Every problem found, one string each (empty list: the file is valid)."""
    titles = set(corpus_titles)
    by_norm = {_norm(t): t for t in titles}
    abstracts = {t: _norm(a) for t, a in abstracts_by_title.items()}
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, q in enumerate(questions, 1):
        line = q.get("_line", i) if isinstance(q, Mapping) else i
        if not isinstance(q, Mapping):
            errors.append(f"line {line}: expected a JSON object")
            continue
        qid = q.get("id")
        where = f"line {line} ({qid})" if isinstance(qid, str) else f"line {line}"

        def err(msg: str) -> None:
            errors.append(f"{where}: {msg}")

        for key in REQUIRED:
            if key not in q:
                err(f"missing field {key!r}")
        unknown = sorted(k for k in q if k not in REQUIRED + OPTIONAL and not k.startswith("_"))
        if unknown:
            err(f"unknown field(s) {', '.join(map(repr, unknown))}")
        if "id" in q:
            if not isinstance(qid, str) or not qid.strip():
                err(f"id must be a non-empty string, got {qid!r}")
            elif qid in seen:
                err(f"duplicate id {qid!r} (first on line {seen[qid]})")
            else:
                seen[qid] = line
        qtype = q.get("type")
        if "type" in q and qtype not in TYPES:
            err(f"unknown type {qtype!r} (expected one of: {', '.join(sorted(TYPES))})")
        gold = q.get("gold_titles", [])
        facts = q.get("answer_facts", [])
        if "gold_titles" in q and not _is_str_list(gold):
            err("gold_titles must be a list of strings")
            gold = []
        if "answer_facts" in q and not _is_str_list(facts):
            err("answer_facts must be a list of strings")
            facts = []
        if "notes" in q and not isinstance(q["notes"], str):
            err("notes must be a string")
        if qtype == "non_english" and not (isinstance(q.get("language"), str) and q["language"].strip()):
            err("non_english question needs 'language' (an ISO code such as 'es')")
        notes = q.get("notes") if isinstance(q.get("notes"), str) else ""

        # question text / turns
        if qtype == "followup":
            turns = q.get("turns")
            if not (isinstance(turns, list) and len(turns) == 2 and all(isinstance(t, str) and t.strip() for t in turns)):
                err("followup needs 'turns': a list of exactly 2 non-empty strings")
            if "question" in q:
                err("followup has 'turns' instead of 'question'")
        elif qtype in TYPES:
            if "turns" in q:
                err(f"'turns' is only for followup questions (type {qtype!r})")
            if not (isinstance(q.get("question"), str) and q["question"].strip()):
                err("missing or empty 'question'")

        # gold and facts
        if qtype in DECLINED:
            if gold:
                err(f"{qtype} question must have empty gold_titles")
            if facts:
                err(f"{qtype} question must have empty answer_facts")
            continue
        if qtype in TYPES:
            if not gold:
                err(f"{qtype} question needs at least one gold title")
            if not facts and qtype != "list":
                err(f"{qtype} question needs at least one answer fact")
            if qtype in ("multi", "list") and len(set(gold)) < 2:
                err(f"{qtype} question needs at least 2 distinct gold titles")
        if len(set(gold)) != len(gold):
            err("duplicate gold title")
        valid_gold = []
        for g in gold:
            if g in titles:
                valid_gold.append(g)
            elif _norm(g) in by_norm:
                err(f"gold title {g!r} differs from the corpus title {by_norm[_norm(g)]!r} (case/spacing); use it exactly")
            else:
                err(f"gold title not in the corpus: {g!r}")
        if "paraphrase" in notes.casefold() or not valid_gold:
            continue
        for fact in facts:
            nf = _norm(fact)
            if not nf:
                err("empty answer fact")
            elif not any(nf in abstracts.get(g, "") or nf in _norm(g) for g in valid_gold):
                err(f"fact {fact!r} not found in any gold abstract or title (add 'paraphrase' to notes if intended)")
    return errors


def corpus_index(paths) -> tuple[list[str], dict[str, str]]:
    """(titles, abstract by title) of the papers under ``paths`` (rag.corpus.load_papers)."""
    from rag.corpus import load_papers

    papers = load_papers(paths)
    return [p.title for p in papers], {p.title: p.abstract for p in papers}


def validate_file(path: str | Path, corpus_paths) -> list[str]:
    """Load and validate a question file against the corpus under ``corpus_paths``."""
    try:
        questions = load_questions(path)
    except QuestionFileError as e:
        return [str(e)]
    if not questions:
        return [f"{path}: no questions"]
    titles, abstracts = corpus_index(corpus_paths)
    return validate(questions, titles, abstracts)
