"""Question-time filters (issue 23): is the filter a question states the one applied, and does it help retrieval?

Ingests an arXiv-shaped corpus (default: the synthetic ``eval/data/arxiv-mini.jsonl``) with the real embedder,
then for each question of a file with ``filters`` (default ``eval/questions/dev-filters.jsonl``) reads the
question's own filters (``rag.answer.constraints.scope``, as the pipeline does) and compares them with the
expected ones, and measures recall@5 of the gold papers searching the question as asked (no filter) and as the
pipeline searches it (filtered, constraint phrases taken out), and R-precision (of the first len(gold) hits,
the share that is gold: do the filtered papers come first). For questions without gold (``unanswerable``) it says
whether the filter alone leaves no paper (refused by the scope) or the refusal is left to answerability. No LLM::

    .venv/bin/python bench/question_filters.py [--config cpu] [--questions F] [--corpus F]

prints a table and writes ``bench/results/question_filters.json`` (--out).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402
from rag.answer.constraints import scope  # noqa: E402
from rag.search.filters import conditions  # noqa: E402

K = 5


def same_filters(got: dict | None, want: dict | None) -> bool:
    """The same store conditions (order aside): 'Doe' and 'doe', '>2022' and '>=2023' are the same filter."""
    return sorted(map(repr, conditions(got))) == sorted(map(repr, conditions(want)))


def recall(hits, gold: list[str], k: int = K) -> float:
    titles = {h.title for h in hits[:k]}
    return sum(g in titles for g in gold) / len(gold) if gold else 0.0


def r_precision(hits, gold: list[str]) -> float:
    """Of the first len(gold) hits, the share that is gold: 1.0 when the gold papers come first."""
    return recall(hits, gold, len(gold))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--questions", default=str(ROOT / "eval/questions/dev-filters.jsonl"))
    ap.add_argument("--corpus", default=str(ROOT / "eval/data/arxiv-mini.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/question_filters.json"))
    args = ap.parse_args()
    items = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as d, rag.load(args.config, data_dir=d, **{"embedding.show_progress": False}) as app:
        app.ingest([args.corpus], progress=False)
        for q in items:
            sc = scope(q["question"], None, app.store)
            empty = not q["gold_titles"]
            applied = same_filters(sc.filters, q.get("filters"))
            row = {"id": q["id"], "applied": applied, "got": sc.filters, "want": q.get("filters"), "searched": sc.text,
                   "empty_said": bool(sc.empty)}
            if not empty:
                plain, filtered = app.search(q["question"], k=K), [] if sc.empty else app.search(sc.text, k=K, filters=sc.filters)
                row["recall_unfiltered"], row["recall_filtered"] = recall(plain, q["gold_titles"]), recall(filtered, q["gold_titles"])
                row["rprec_unfiltered"], row["rprec_filtered"] = r_precision(plain, q["gold_titles"]), r_precision(filtered, q["gold_titles"])
            rows.append(row)
    answerable = [r for r in rows if "recall_filtered" in r]
    summary = {
        "questions": len(rows), "filter_applied": sum(r["applied"] for r in rows),
        "recall@5_unfiltered": round(sum(r["recall_unfiltered"] for r in answerable) / max(len(answerable), 1), 3),
        "recall@5_filtered": round(sum(r["recall_filtered"] for r in answerable) / max(len(answerable), 1), 3),
        "r_precision_unfiltered": round(sum(r["rprec_unfiltered"] for r in answerable) / max(len(answerable), 1), 3),
        "r_precision_filtered": round(sum(r["rprec_filtered"] for r in answerable) / max(len(answerable), 1), 3),
        "empty_said": [r["id"] for r in rows if r["empty_said"]],
        "config": args.config, "questions_file": str(Path(args.questions).relative_to(ROOT)) if args.questions.startswith(str(ROOT)) else args.questions,
    }
    for r in rows:
        flag = "ok " if r["applied"] else "MISS"
        print(f"{flag} {r['id']:9s} got={r['got']} want={r['want']}"
              + (f" R-prec {r['rprec_unfiltered']:.2f} -> {r['rprec_filtered']:.2f}" if "recall_filtered" in r
                 else " (the filter leaves no paper: refused)" if r["empty_said"] else " (no gold: left to answerability)"))
    print(f"\nfilter applied as stated: {summary['filter_applied']}/{summary['questions']}; recall@{K} of gold, "
          f"question as asked {summary['recall@5_unfiltered']:.3f} -> with its filters {summary['recall@5_filtered']:.3f}; "
          f"R-precision {summary['r_precision_unfiltered']:.3f} -> {summary['r_precision_filtered']:.3f}")
    Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
