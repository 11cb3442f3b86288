"""Paraphrased questions without the LLM: is the right paper retrieved, put first, and judged answerable?

For each answerable dev question (by type): recall@1 / @5 of retrieval, and "first & answerable": the
paper the answer stage puts first (``rag.answer.evidence.select``) is a gold paper and the answerability
scorer lets the question through. That is what "cites gold" needs before the model writes a word, at
~0.3 s a question instead of ~5 s. The dev set's ``semantic`` items ``dev-249``.. (30 paraphrases that
share at most 3 content words with their abstract) are reported apart as ``semantic-hard``.

    .venv/bin/python bench/semantic.py --label cpu --data-dir IDX
    .venv/bin/python bench/semantic.py --label cpu-mpnet --config cpu-mpnet --data-dir IDX_MPNET
    .venv/bin/python bench/semantic.py --label cpu-mpnet-rrf --config cpu-mpnet --data-dir IDX_MPNET \\
        --set retrieval.fusion=rrf --set answer.evidence_model=all-mpnet-base-v2

Each run prints a table and updates ``bench/results/semantic.json`` under its label (an index built
by ``rag ingest --config ... --data-dir IDX`` first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402
from bench.common import machine_info  # noqa: E402
from rag.answer import answerability, evidence  # noqa: E402
from rag.answer.policy import GENERATE, Outcome, decide  # noqa: E402
from rag.answer.question import Question  # noqa: E402

TYPES = ("single", "numeric", "multi", "title_lookup", "false_premise", "semantic")
HARD_FROM = 249  # dev-249 .. dev-278: the hard paraphrases


def _group(q: dict) -> str:
    if q["type"] == "semantic" and int(q["id"].split("-")[1]) >= HARD_FROM:
        return "semantic-hard"
    return q["type"]


def run(app, questions: list[dict]) -> tuple[list[dict], dict]:
    ans, s = app.answerer, app.settings.answer
    store, vocabulary = app.locked_store, ans.vocabulary
    shared = ans.shared_vector
    rows, evidence_ms = [], []
    for q in questions:
        question, gold = Question(q["question"]), set(q["gold_titles"])
        r = app.retrieve(question.text, k=10)
        titles = [h.title for h in r.hits]
        t = time.perf_counter()
        sources = evidence.load_sources(store, evidence.candidates(question, r.hits, s.llm_sources))
        papers = ans.scorer.score(question, sources, r.vector if shared else None)
        signals = answerability.signals(question, papers, r.best_dense, vocabulary)
        answerable = decide(Outcome(signals), s.policy).route == GENERATE
        sel = evidence.select(papers, question, s.policy, s.llm_sources)
        evidence_ms.append((time.perf_counter() - t) * 1000)
        first = bool(sel) and sel[0][0].title in gold
        rows.append({"id": q["id"], "group": _group(q), "r1": bool(titles) and titles[0] in gold,
                     "r5": bool(gold & set(titles[:5])), "first": first, "answerable": answerable,
                     "first_and_answerable": first and answerable})
    groups = ["all", *dict.fromkeys(r["group"] for r in rows)]
    summary = {}
    for g in groups:
        sub = [r for r in rows if g == "all" or r["group"] == g]
        summary[g] = {"n": len(sub), **{k: round(statistics.mean(r[k] for r in sub), 3)
                                        for k in ("r1", "r5", "first", "answerable", "first_and_answerable")}}
    summary["evidence_ms_p50"] = round(statistics.median(evidence_ms), 1)
    return rows, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", required=True, help="key of this run in bench/results/semantic.json")
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--questions", type=Path, default=ROOT / "eval/questions/dev.jsonl")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="setting override (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/semantic.json")
    args = ap.parse_args()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    questions = [json.loads(line) for line in args.questions.open() if line.strip()]
    questions = [q for q in questions if q["type"] in TYPES]
    t0 = time.perf_counter()
    with rag.load(args.config, data_dir=args.data_dir, **overrides) as app:
        rows, summary = run(app, questions)
    print(f"{args.label}: {args.config} {overrides or ''}")
    print(f"{'group':15s} {'n':>4s} {'R@1':>6s} {'R@5':>6s} {'first':>6s} {'answerable':>10s} {'first&answerable':>17s}")
    for g, m in summary.items():
        if isinstance(m, dict):
            print(f"{g:15s} {m['n']:4d} {m['r1']:6.3f} {m['r5']:6.3f} {m['first']:6.3f} {m['answerable']:10.3f} {m['first_and_answerable']:17.3f}")
    print(f"evidence scoring p50 {summary['evidence_ms_p50']} ms")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.label] = {"command": " ".join(sys.argv), "config": args.config, "overrides": overrides,
                           "questions_file": str(args.questions.relative_to(ROOT)) if args.questions.is_relative_to(ROOT) else str(args.questions),
                           "machine": machine_info(), "wall_s": round(time.perf_counter() - t0, 1),
                           "summary": summary, "rows": rows}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
