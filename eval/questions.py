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
    >>> validate(qs + [dict(qs[0], type="bogus")], ["Paper A"], {"Paper A": "A does X."})  # doctest: +ELLIPSIS
    ["line 2 (q1): duplicate id 'q1' (first on line 1)", "line 2 (q1): type: Input should be 'single', 'numeric', ...]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eval.metrics.refusal import DECLINED_TYPES
from rag.errors import InputError

TYPES = ("single", "numeric", "multi", "title_lookup", "semantic", "unanswerable", "followup",
         "list", "false_premise", "non_english", "off_topic", "emergency", "injection")
DECLINED = tuple(sorted(DECLINED_TYPES))  # no gold papers: the answer declines (eval.metrics.refusal)


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


class QuestionRecord(BaseModel):
    """The shape of one line of a question file (types and field names; the corpus checks are in ``validate``)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(min_length=1, description="Unique id, e.g. dev-001.")
    type: Literal[TYPES] = Field(description="Question type (see the module docstring).")  # type: ignore[valid-type]
    gold_titles: list[str] = Field(description="Exact corpus titles that answer it (empty for declined types).")
    answer_facts: list[str] = Field(description="Short strings copied from a gold abstract or title.")
    question: str | None = Field(None, description="The question (every type but followup).")
    turns: list[str] | None = Field(None, description="followup: [first turn, second turn].")
    notes: str = Field("", description="Free text; 'paraphrase' allows facts not found verbatim.")
    language: str | None = Field(None, description="non_english: ISO code of the question's language.")
    filters: dict[str, list[str]] | None = Field(None, description="The search filters the question states, in the language of "
                                                 "rag.search.filters ({'year': ['>=2024'], 'author': ['Jane Doe']}): what "
                                                 "bench/question_filters.py expects the question-time filters to be.")


def _shape_errors(q: QuestionRecord) -> list[str]:
    """Rules that depend on the type."""
    errs = []
    if q.type == "followup":
        if not (q.turns and len(q.turns) == 2 and all(t.strip() for t in q.turns)):
            errs.append("followup needs 'turns': a list of exactly 2 non-empty strings")
        if q.question is not None:
            errs.append("followup has 'turns' instead of 'question'")
    else:
        if q.turns is not None:
            errs.append(f"'turns' is only for followup questions (type {q.type!r})")
        if not (q.question or "").strip():
            errs.append("missing or empty 'question'")
    if q.type == "non_english" and not (q.language or "").strip():
        errs.append("non_english question needs 'language' (an ISO code such as 'es')")
    if q.type in DECLINED:
        errs += [f"{q.type} question must have empty {name}" for name in ("gold_titles", "answer_facts") if getattr(q, name)]
        return errs
    if not q.gold_titles:
        errs.append(f"{q.type} question needs at least one gold title")
    if not q.answer_facts and q.type != "list":
        errs.append(f"{q.type} question needs at least one answer fact")
    if q.type in ("multi", "list") and len(set(q.gold_titles)) < 2:
        errs.append(f"{q.type} question needs at least 2 distinct gold titles")
    if len(set(q.gold_titles)) != len(q.gold_titles):
        errs.append("duplicate gold title")
    return errs


def validate(questions: Iterable[Mapping], corpus_titles: Iterable[str],
             abstracts_by_title: Mapping[str, str]) -> list[str]:
    """Every problem found, one string each (empty list: the file is valid)."""
    titles = set(corpus_titles)
    by_norm = {_norm(t): t for t in titles}
    abstracts = {t: _norm(a) for t, a in abstracts_by_title.items()}
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(questions, 1):
        line = raw.get("_line", i) if isinstance(raw, Mapping) else i
        if not isinstance(raw, Mapping):
            errors.append(f"line {line}: expected a JSON object")
            continue
        qid = raw.get("id")
        where = f"line {line} ({qid})" if isinstance(qid, str) else f"line {line}"
        if isinstance(qid, str) and qid in seen:
            errors.append(f"{where}: duplicate id {qid!r} (first on line {seen[qid]})")
        elif isinstance(qid, str):
            seen[qid] = line
        try:
            q = QuestionRecord.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})
        except ValidationError as e:
            errors += [f"{where}: {'.'.join(map(str, err['loc'])) or 'line'}: {err['msg']}" for err in e.errors()]
            continue
        errors += [f"{where}: {msg}" for msg in _shape_errors(q)]
        if q.type in DECLINED:
            continue
        valid_gold = []
        for g in q.gold_titles:
            if g in titles:
                valid_gold.append(g)
            elif _norm(g) in by_norm:
                errors.append(f"{where}: gold title {g!r} differs from the corpus title {by_norm[_norm(g)]!r} "
                              "(case/spacing); use it exactly")
            else:
                errors.append(f"{where}: gold title not in the corpus: {g!r}")
        if "paraphrase" in q.notes.casefold() or not valid_gold:
            continue
        for fact in q.answer_facts:
            nf = _norm(fact)
            if not nf:
                errors.append(f"{where}: empty answer fact")
            elif not any(nf in abstracts.get(g, "") or nf in _norm(g) for g in valid_gold):
                errors.append(f"{where}: fact {fact!r} not found in any gold abstract or title (add 'paraphrase' to notes if intended)")
    return errors


def corpus_index(paths) -> tuple[list[str], dict[str, str]]:
    """(titles, abstract by title) of the papers under ``paths`` (rag.ingest.corpus.load_papers)."""
    from rag.ingest.corpus import load_papers

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
