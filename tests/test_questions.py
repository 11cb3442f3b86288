"""The shipped question sets validate against the sample corpus; broken files are rejected precisely."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.questions import TYPES, load_questions, question_text, retrieval_query, validate, validate_file
from rag.config import SAMPLE_CORPUS
from rag.ingest.corpus import load_papers

QDIR = Path(__file__).resolve().parent.parent / "eval" / "questions"


@pytest.fixture(scope="module")
def corpus():
    papers = load_papers([SAMPLE_CORPUS])
    return [p.title for p in papers], {p.title: p.abstract for p in papers}


@pytest.mark.parametrize("name", ["dev.jsonl", "test.jsonl"])
def test_shipped_files_validate(name, corpus):
    titles, abstracts = corpus
    assert validate(load_questions(QDIR / name), titles, abstracts) == []


def test_counts_and_types():
    dev = Counter(q["type"] for q in load_questions(QDIR / "dev.jsonl"))
    test = Counter(q["type"] for q in load_questions(QDIR / "test.jsonl"))
    assert sum(dev.values()) >= 170
    assert set(dev) == set(TYPES)  # every type has dev items to calibrate and test on
    assert sum(test.values()) >= 170
    assert set(test) == set(TYPES)


def test_dev_and_test_ids_disjoint():
    dev = {q["id"] for q in load_questions(QDIR / "dev.jsonl")}
    test = {q["id"] for q in load_questions(QDIR / "test.jsonl")}
    assert not dev & test


def _good(corpus):
    titles, abstracts = corpus
    t0, t1 = titles[0], titles[1]
    fact0 = " ".join(abstracts[t0].split()[:3])
    fact1 = " ".join(abstracts[t1].split()[:3])
    return [
        {"id": "q1", "type": "single", "question": "Q?", "gold_titles": [t0], "answer_facts": [fact0.upper()]},
        {"id": "q2", "type": "multi", "question": "Q?", "gold_titles": [t0, t1], "answer_facts": [fact0, fact1]},
        {"id": "q3", "type": "unanswerable", "question": "Q?", "gold_titles": [], "answer_facts": []},
        {"id": "q4", "type": "followup", "turns": ["First?", "Second?"], "gold_titles": [t1], "answer_facts": [fact1]},
        {"id": "q5", "type": "semantic", "question": "Q?", "gold_titles": [t0], "answer_facts": ["not in the text at all"],
         "notes": "paraphrase of the method"},
    ]


def test_good_synthetic_file_passes(corpus):
    assert validate(_good(corpus), *corpus) == []


def test_broken_file_rejected_with_specific_errors(tmp_path, corpus):
    titles, abstracts = corpus
    t0 = titles[0]
    broken = [
        {"id": "b1", "type": "single", "question": "Q?", "gold_titles": ["No Such Paper"], "answer_facts": ["x"]},
        {"id": "b1", "type": "numeric", "question": "Q?", "gold_titles": [t0], "answer_facts": ["zebra quantum 42 giraffe"]},
        {"id": "b3", "type": "weird", "question": "Q?", "gold_titles": [t0], "answer_facts": ["y"]},
        {"id": "b4", "type": "unanswerable", "question": "Q?", "gold_titles": [t0], "answer_facts": ["z"]},
        {"id": "b5", "type": "followup", "turns": ["only one"], "gold_titles": [t0], "answer_facts": []},
        {"id": "b6", "type": "single", "gold_titles": [t0.upper()], "answer_facts": ["a"]},
        {"id": "b7", "type": "multi", "question": "Q?", "gold_titles": [t0], "answer_facts": "not a list"},
    ]
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in broken) + "\n")
    errors = validate_file(path, [SAMPLE_CORPUS])
    text = "\n".join(errors)
    assert "line 1 (b1): gold title not in the corpus: 'No Such Paper'" in text
    assert "duplicate id 'b1' (first on line 1)" in text
    assert "fact 'zebra quantum 42 giraffe' not found in any gold abstract" in text
    assert "line 3 (b3): type: Input should be 'single'" in text
    assert "line 4 (b4): unanswerable question must have empty gold_titles" in text
    assert "line 4 (b4): unanswerable question must have empty answer_facts" in text
    assert "line 5 (b5): followup needs 'turns': a list of exactly 2 non-empty strings" in text
    assert "line 5 (b5): followup question needs at least one answer fact" in text
    assert "line 6 (b6): missing or empty 'question'" in text
    assert "line 6 (b6): gold title" in text and "differs from the corpus title" in text
    assert "line 7 (b7): answer_facts: Input should be a valid list" in text
    assert all(e.startswith("line ") for e in errors), errors


def test_unknown_fields_and_wrong_types_are_named(corpus):
    titles, abstracts = corpus
    bad = [{"id": "x", "type": "single", "question": "Q?", "gold_titles": [titles[0]], "answer_facts": ["a"], "source": "me"},
           {"id": "y", "type": "multi", "question": 3, "gold_titles": [titles[0]], "answer_facts": ["a"]},
           {"id": "z", "type": "multi", "question": "Q?", "gold_titles": [titles[0]], "answer_facts": ["a"]}]
    text = "\n".join(validate(bad, titles, abstracts))
    assert "line 1 (x): source: Extra inputs are not permitted" in text
    assert "line 2 (y): question: Input should be a valid string" in text
    assert "line 3 (z): multi question needs at least 2 distinct gold titles" in text


def test_invalid_json_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "type": "single"\n')
    errors = validate_file(path, [SAMPLE_CORPUS])
    assert len(errors) == 1 and "bad.jsonl:1: invalid JSON" in errors[0]


def test_question_text_helpers():
    q = {"type": "followup", "turns": ["What is X?", "How big is it?"]}
    assert question_text(q) == "How big is it?"
    assert retrieval_query(q) == "What is X? How big is it?"
    assert retrieval_query({"type": "single", "question": "Q"}) == "Q"


def run_cli(argv: list[str]) -> int:
    """`rag ARGV`, in process."""
    from serving import cli

    return cli.main(argv)


def test_validate_cli_exit_codes(tmp_path, capsys):
    assert run_cli(["eval", "validate", str(QDIR / "dev.jsonl")]) == 0
    n = len((QDIR / "dev.jsonl").read_text().splitlines())
    assert f"OK: {n} questions" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "type": "single", "question": "Q", "gold_titles": ["Nope"], "answer_facts": ["f"]}) + "\n")
    assert run_cli(["eval", "validate", str(bad)]) == 2
    assert "gold title not in the corpus: 'Nope'" in capsys.readouterr().out
