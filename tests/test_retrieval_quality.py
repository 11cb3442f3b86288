"""Retrieval quality on the dev questions with the real MiniLM embedder (slow: ingests the sample, ~60 s)."""

from __future__ import annotations

from statistics import mean

import pytest

import rag
from eval.metrics.retrieval import hit_at_k, recall_at_k, reciprocal_rank
from eval.questions import DECLINED, load_questions
from rag.config import REPO_ROOT, SAMPLE_CORPUS

pytestmark = pytest.mark.slow

DEV = load_questions(REPO_ROOT / "eval/questions/dev.jsonl")
# retrieval of single-question English items, the scope of bench/retrieval.py (follow-ups, lists and
# non-English questions are scored end to end by the eval harness)
TYPES = ("single", "numeric", "multi", "title_lookup", "semantic")
ANSWERABLE = [q for q in DEV if q["type"] in TYPES]
# questions in everyday words (issue 24, notes "lay"): a user describes the paper without its vocabulary. They are
# gated on their own, at a floor two questions under today's measured recall (0.375 hybrid), so that the gate on the other
# styles keeps its meaning and a regression in either shows.
LAY = [q for q in ANSWERABLE if q.get("notes") == "lay"]
K = 5


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = rag.load("cpu", data_dir=str(tmp_path_factory.mktemp("quality")), **{"embedding.show_progress": False})
    report = a.ingest([SAMPLE_CORPUS], progress=False)
    assert report.papers == 342 and report.points_total == 651
    yield a
    a.close()


@pytest.fixture(scope="module")
def results(app):
    """question id -> mode -> ranked titles (top K, one per paper)."""
    out = {}
    for q in ANSWERABLE:
        out[q["id"]] = {m: [h.title for h in app.search(q["question"], k=K, mode=m)] for m in ("hybrid", "dense", "sparse")}
    return out


def _mean_recall(results, mode, types=None, qs=None):
    qs = [q for q in (ANSWERABLE if qs is None else qs) if types is None or q["type"] in types]
    return mean(recall_at_k(results[q["id"]][mode], q["gold_titles"], K) for q in qs), len(qs)


def test_dev_set_shape():
    assert len(ANSWERABLE) >= 80 and all(q["gold_titles"] and q["question"] for q in ANSWERABLE)
    assert all(not q["gold_titles"] for q in DEV if q["type"] in DECLINED)
    assert sum(q["type"] == "semantic" for q in DEV) >= 30


def test_gold_titles_are_in_the_corpus(app):
    from eval.metrics import normalize_title
    from rag.ingest.corpus import load_papers

    titles = {normalize_title(p.title) for p in load_papers([SAMPLE_CORPUS])}
    missing = [(q["id"], g) for q in ANSWERABLE for g in q["gold_titles"] if normalize_title(g) not in titles]
    assert not missing


def test_hybrid_recall_at_5(results, capsys):
    focused = ("single", "numeric", "title_lookup")
    r_focus, n_focus = _mean_recall(results, "hybrid", focused)
    r_all, n_all = _mean_recall(results, "hybrid")
    r_styled, n_styled = _mean_recall(results, "hybrid", qs=[q for q in ANSWERABLE if q not in LAY])
    r_lay, n_lay = _mean_recall(results, "hybrid", qs=LAY)
    with capsys.disabled():
        print(f"\nretrieval quality, recall@{K} (MiniLM, {n_all} answerable dev questions):")
        for mode in ("hybrid", "dense", "sparse"):
            by_type = {t: _mean_recall(results, mode, (t,))[0] for t in ("single", "numeric", "title_lookup", "multi", "semantic")}
            mrr = mean(reciprocal_rank(results[q["id"]][mode], q["gold_titles"], K) for q in ANSWERABLE)
            hit = mean(hit_at_k(results[q["id"]][mode], q["gold_titles"], K) for q in ANSWERABLE)
            print(f"  {mode:6s} all={_mean_recall(results, mode)[0]:.3f} "
                  f"single+numeric+title={_mean_recall(results, mode, focused)[0]:.3f} hit={hit:.3f} mrr={mrr:.3f} "
                  + " ".join(f"{t}={v:.3f}" for t, v in by_type.items()))
        misses = [(q["id"], q["type"]) for q in ANSWERABLE
                  if recall_at_k(results[q["id"]]["hybrid"], q["gold_titles"], K) < 1.0]
        print(f"  hybrid questions with recall < 1: {misses}")
        print(f"  hybrid without everyday words={r_styled:.3f} ({n_styled}) everyday words={r_lay:.3f} ({n_lay})")
    assert r_focus >= 0.9, f"hybrid recall@{K} on single+numeric+title_lookup ({n_focus} questions) = {r_focus:.3f}"
    assert r_styled >= 0.8, f"hybrid recall@{K} on answerable, everyday words aside ({n_styled} questions) = {r_styled:.3f}"
    assert r_lay >= 0.325, f"hybrid recall@{K} on everyday-words questions ({n_lay} questions) = {r_lay:.3f}"


def test_searching_a_gold_title_finds_it_first(app):
    from eval.metrics import normalize_title

    for q in (q for q in ANSWERABLE if q["type"] == "title_lookup"):
        (hit,) = app.search(q["gold_titles"][0], k=1)
        assert normalize_title(hit.title) == normalize_title(q["gold_titles"][0]), q["id"]
