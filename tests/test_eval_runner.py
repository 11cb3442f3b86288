"""The eval harness: runner, records, resumability, summary, report, compare and the CLI.

Fast tests use FakeEmbedder + FakeGenerator over an in-memory store. The ``slow`` tests use
the real embedder and CPU LLM (configs/cpu.yaml) and guard retrieval quality on test.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rag
from eval.compare import compare, compare_rows
from eval.questions import TYPES, load_questions
from eval.report import write_report
from eval.runner import RECORDS, SUMMARY, read_records, run_eval
from rag.config import SAMPLE_CORPUS
from rag.testing import FakeEmbedder, FakeGenerator

ROOT = Path(__file__).resolve().parent.parent
TEST_Q = ROOT / "eval" / "questions" / "test.jsonl"
FAKE = {"store.backend": "server", "store.url": ":memory:"}


def run_cli(argv: list[str]) -> int:
    """`rag ARGV`, in process."""
    from serving import cli

    return cli.main(argv)


def one_of_each_type(path: Path = TEST_Q) -> list[dict]:
    seen, out = set(), []
    for q in load_questions(path):
        if q["type"] not in seen:
            seen.add(q["type"])
            out.append(q)
    return out


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory):
    app = rag.load(None, data_dir=tmp_path_factory.mktemp("evaldata"), embedder=FakeEmbedder(),
                   generator=FakeGenerator(), **FAKE)
    app.ingest([SAMPLE_CORPUS], progress=False)
    yield app
    app.close()


@pytest.fixture(scope="module")
def questions():
    qs = one_of_each_type()
    assert {q["type"] for q in qs} == set(TYPES)
    return qs


@pytest.fixture(scope="module")
def run_dir(fake_app, questions, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run_eval(fake_app, questions, out, progress=False, command="test")
    return out


def test_files_and_records(run_dir, questions, fake_app):
    assert (run_dir / RECORDS).is_file() and (run_dir / SUMMARY).is_file()
    lines = (run_dir / RECORDS).read_text().splitlines()
    assert len(lines) == len(questions)
    recs = {r["id"]: r for r in map(json.loads, lines)}
    for q in questions:
        r = recs[q["id"]]
        assert r["error"] is None
        assert r["type"] == q["type"] and r["gold"] == q["gold_titles"] and r["facts"] == q["answer_facts"]
        assert r["config_hash"] == fake_app.settings.config_hash()
        assert r["models"] == {"embedding": "fake-bow-64", "generation": "fake-generator"}
        assert len(r["retrieved"]) == 10
        assert len(r["retrieved_bm25"]) == 10 or q.get("language") == "zh"  # BM25 finds no English words in Chinese
        for key in ("answer", "shown", "kind", "refused", "citations", "quotes", "sources", "standalone_question", "timings",
                    "metrics", "closed_book", "extractive", "signals"):
            assert key in r, key
        assert {"retrieval_ms", "total_s"} <= set(r["timings"])
        assert {"answer", "refused", "metrics"} <= set(r["closed_book"]) and "fact_coverage" in r["closed_book"]["metrics"]
        assert {"answer", "citations", "metrics"} <= set(r["extractive"]) and "citation_support" in r["extractive"]["metrics"]
        assert "recall@5" in r["metrics"] and "recall@5" in r["bm25_metrics"]
    fu = next(r for r in recs.values() if r["type"] == "followup")
    assert fu["turns"] and "first_answer" in fu and fu["standalone_question"]
    un = next(r for r in recs.values() if r["type"] == "unanswerable")
    assert un["metrics"]["recall@5"] is None and un["metrics"]["refusal_accuracy"] in (0.0, 1.0)
    assert un["metrics"]["false_refusal_rate"] is None
    for t in ("emergency", "injection"):  # rule-based; off-topic depends on real embeddings (slow tests)
        r = next(r for r in recs.values() if r["type"] == t)
        assert r["metrics"]["handled"] == 1.0 and r["citations"] == [], r
    r = next(r for r in recs.values() if r["type"] == "off_topic")
    assert r["metrics"]["handled"] in (0.0, 1.0)
    ne = next(r for r in recs.values() if r["type"] == "non_english")
    assert ne["metrics"]["language_match"] in (0.0, 1.0, None)
    li = next(r for r in recs.values() if r["type"] == "list")
    assert li["kind"] in ("list", "refusal") and li["metrics"]["citation_recall"] is not None  # thresholds fit real embeddings


def test_summary_keys(run_dir, questions):
    s = json.loads((run_dir / SUMMARY).read_text())
    assert s["n_questions"] == len(questions) and s["n_errors"] == 0
    assert s["command"] == "test" and s["machine"]["cpu_count"]
    assert set(s["by_type"]) == {q["type"] for q in questions}
    o = s["overall"]
    for m in ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "all_gold@5", "citation_precision",
              "citation_recall", "cites_gold", "fact_coverage", "fact_coverage_text", "token_f1", "citation_support",
              "refusal_accuracy", "false_refusal_rate", "handled", "language_match"):
        assert set(o["system"][m]) == {"mean", "low", "high", "n"}, m
    assert "citation_validity" not in o["system"]  # true by construction: not a result
    assert o["system"]["all_gold@5"]["n"] == 1  # multi only
    declined = {"unanswerable", "off_topic", "emergency", "injection"}
    assert o["system"]["refusal_accuracy"]["n"] == 1 and o["system"]["false_refusal_rate"]["n"] == len(questions) - len(declined)
    assert o["system"]["handled"]["n"] == 3
    assert set(o["bm25"]) >= {"recall@5", "mrr", "ndcg@10"}
    assert set(o["closed_book"]) >= {"fact_coverage", "refusal_accuracy", "false_refusal_rate"}
    assert set(o["extractive"]) >= {"fact_coverage", "cites_gold", "citation_support"}
    assert o["extractive"]["refusal_accuracy"]["mean"] == 0.0  # it never refuses
    for key in ("retrieval_ms", "total_s"):
        lat = o["latency"][key]
        assert lat["n"] >= len(questions) - len(declined) and lat["p50"] <= lat["p95"] and lat["p50_low"] <= lat["p50"] <= lat["p50_high"]
    assert isinstance(s["precision_coverage"], list)
    m = o["system"]["recall@5"]
    assert m["low"] <= m["mean"] <= m["high"]


def test_resume_skips_done_questions(run_dir, questions, fake_app):
    gen = fake_app.generator
    calls = len(gen.calls)
    before = (run_dir / RECORDS).read_text()
    s = run_eval(fake_app, questions, run_dir, progress=False, command="test")
    assert s["n_skipped_resumed"] == len(questions)
    assert len(gen.calls) == calls
    assert (run_dir / RECORDS).read_text() == before
    assert s["n_questions"] == len(questions)


def test_errors_are_recorded_and_retried(fake_app, questions, tmp_path):
    bad = {"id": "bad-1", "type": "single", "question": "   ", "gold_titles": ["X"], "answer_facts": ["y"]}
    s = run_eval(fake_app, [bad, questions[0]], tmp_path, progress=False, retrieval_only=True)
    assert s["n_errors"] == 1 and s["n_questions"] == 2
    recs = {r["id"]: r for r in read_records(tmp_path / RECORDS)}
    assert "InputError" in recs["bad-1"]["error"] and recs[questions[0]["id"]]["error"] is None
    s = run_eval(fake_app, [bad, questions[0]], tmp_path, progress=False, retrieval_only=True)
    assert s["n_skipped_resumed"] == 1  # the errored question is tried again, the good one is not


def test_retrieval_only_then_full_run_does_not_reuse(fake_app, questions, tmp_path):
    s = run_eval(fake_app, questions[:2], tmp_path, progress=False, retrieval_only=True, baselines=("bm25",))
    assert "cites_gold" not in s["overall"]["system"] and "closed_book" not in s["overall"]
    s = run_eval(fake_app, questions[:2], tmp_path, progress=False, retrieval_only=False, baselines=())
    assert s["n_skipped_resumed"] == 0 and "cites_gold" in s["overall"]["system"]
    assert "bm25" not in s["overall"]
    assert len(read_records(tmp_path / RECORDS)) == 2  # the later record per id wins


def test_limit(fake_app, questions, tmp_path):
    s = run_eval(fake_app, questions, tmp_path, limit=2, progress=False, retrieval_only=True)
    assert s["n_questions"] == 2


def test_report_mentions_each_type(run_dir, questions):
    path = write_report(run_dir)
    text = path.read_text()
    for q in questions:
        assert q["type"] in text
    for section in ("## Overall: system and baselines", "## By question type", "## Latency", "## Worst failures by type",
                    "BM25 only", "Closed book", "Extractive (no LLM)", "Citation support (independent judge)"):
        assert section in text
    for png in ("per_type.png", "latency.png"):
        assert (run_dir / png).stat().st_size > 1000 and f"({png})" in text


def test_compare(run_dir, capsys):
    text = compare(run_dir, run_dir)
    assert "system recall@5" in text and "bm25 mrr" in text and "closed-book fact_coverage" in text
    assert "extractive fact_coverage" in text
    rows = compare_rows(json.loads((run_dir / SUMMARY).read_text()), json.loads((run_dir / SUMMARY).read_text()))
    assert all(r["delta"] in (0.0, None) for r in rows)
    assert all(r["overlap"] in (True, None) for r in rows)
    assert run_cli(["eval", "compare", str(run_dir), str(run_dir)]) == 0
    assert "system recall@5" in capsys.readouterr().out
    assert run_cli(["eval", "compare", str(run_dir), str(run_dir), "--type", "multi"]) == 0
    assert run_cli(["eval", "compare", str(run_dir), str(run_dir / "nope")]) == 2


def test_compare_flags_a_real_difference(run_dir, tmp_path):
    s = json.loads((run_dir / SUMMARY).read_text())
    s["overall"]["system"]["recall@5"] = {"mean": 0.1, "low": 0.0, "high": 0.2, "n": 6}
    (tmp_path / SUMMARY).write_text(json.dumps(s))
    s2 = dict(s, overall=dict(s["overall"], system=dict(s["overall"]["system"], **{"recall@5": {"mean": 0.9, "low": 0.8, "high": 1.0, "n": 6}})))
    b = tmp_path / "b"
    b.mkdir()
    (b / SUMMARY).write_text(json.dumps(s2))
    row = next(r for r in compare_rows(s, s2) if r["metric"] == "system recall@5")
    assert row["overlap"] is False and abs(row["delta"] - 0.8) < 1e-9
    assert "NO" in compare(tmp_path, b)


def test_eval_cli_with_fake_app(fake_app, questions, tmp_path, monkeypatch, capsys):
    """`rag eval --retrieval-only` end to end, with the app the CLI loads swapped for the fake one."""
    import eval.eval_cmd

    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({k: v for k, v in q.items() if not k.startswith("_")}) + "\n" for q in questions))

    class NoClose:  # the CLI closes its app; keep the shared fixture open
        def __init__(self, app):
            self._app = app

        def __getattr__(self, name):
            return getattr(self._app, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(eval.eval_cmd, "load_app", lambda args: NoClose(fake_app))
    out = tmp_path / "run"
    assert run_cli(["eval", "--questions", str(qfile), "--out", str(out), "--retrieval-only", "--limit", "4"]) == 0
    printed = capsys.readouterr().out
    assert "Recall@5" in printed and "bm25" in printed and str(out) in printed
    s = json.loads((out / SUMMARY).read_text())
    assert s["n_questions"] == 4 and s["retrieval_only"] and s["questions_file"] == str(qfile)
    assert (out / "report.md").is_file()
    assert run_cli(["eval", "--questions", str(qfile), "--out", str(out), "--retrieval-only", "--no-baselines"]) == 0
    s = json.loads((out / SUMMARY).read_text())
    assert s["n_questions"] == len(questions) and "bm25" not in s["overall"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "type": "single", "question": "Q", "gold_titles": ["Nope"], "answer_facts": ["f"]}) + "\n")
    assert run_cli(["eval", "--questions", str(bad), "--out", str(tmp_path / "r2")]) == 2


# -- slow: real models -------------------------------------------------------------------

# Measured on the sample corpus with configs/cpu.yaml (all-minilm-l6-v2, hybrid, k=10), the 140 questions of
# test.jsonl with single-answer types: recall@1 0.805, recall@5 0.945, recall@10 0.975, MRR 0.907, nDCG@10 0.920,
# all-gold@5 (multi) 0.938; BM25 only: recall@5 0.890, MRR 0.861. Thresholds are those minus 0.05.
MIN_HYBRID = {"recall@1": 0.75, "recall@5": 0.89, "recall@10": 0.92, "mrr": 0.85, "ndcg@10": 0.87, "all_gold@5": 0.88}
MIN_BM25 = {"recall@5": 0.84, "mrr": 0.81}
RETRIEVAL_TYPES = {"single", "numeric", "multi", "title_lookup", "semantic", "unanswerable", "followup"}
ANSWERED_IDS = ("test-001", "test-029", "test-049")


@pytest.fixture(scope="module")
def real_app(tmp_path_factory):
    app = rag.load("cpu", data_dir=tmp_path_factory.mktemp("edge"))
    app.ingest(progress=False)
    yield app
    app.close()


@pytest.mark.slow
def test_retrieval_regression_on_test_set(real_app, tmp_path):
    qs = [q for q in load_questions(TEST_Q) if q["type"] in RETRIEVAL_TYPES]
    s = run_eval(real_app, qs, tmp_path, retrieval_only=True, progress=False)
    assert s["n_errors"] == 0 and s["n_questions"] == len(qs) == 140
    got = {m: s["overall"]["system"][m]["mean"] for m in MIN_HYBRID}
    got_bm25 = {m: s["overall"]["bm25"][m]["mean"] for m in MIN_BM25}
    print("hybrid", got, "bm25", got_bm25)
    for m, lo in MIN_HYBRID.items():
        assert got[m] >= lo, f"hybrid {m} {got[m]:.3f} < {lo}"
    for m, lo in MIN_BM25.items():
        assert got_bm25[m] >= lo, f"bm25 {m} {got_bm25[m]:.3f} < {lo}"


@pytest.mark.slow
def test_real_llm_answers_are_quoted_and_judged(real_app, tmp_path):
    """With the real CPU model: each citation is a source paper and its quotes are copied from that abstract;
    the independent judge finds the cited sentences supported."""
    qs = [q for q in load_questions(TEST_Q) if q["id"] in ANSWERED_IDS]
    assert len(qs) == 3
    s = run_eval(real_app, qs, tmp_path, baselines=("extractive",), progress=False)
    recs = read_records(tmp_path / RECORDS)
    assert s["n_errors"] == 0, [r.get("error") for r in recs]
    print([(r["id"], r["kind"], r["answer"][:200], r["citations"]) for r in recs])
    answered = [r for r in recs if not r["refused"]]
    assert answered, "every question was refused: nothing to check"
    for r in answered:
        assert set(r["citations"]) <= set(r["sources"]) and all(r["quotes"])
    support = [r["metrics"]["citation_support"] for r in answered if r["metrics"]["citation_support"] is not None]
    assert support and min(support) >= 0.5, support
    assert all(r["models"]["generation"] == real_app.settings.generation.model for r in recs)
