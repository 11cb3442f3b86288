"""Paraphrased questions without the LLM: is the right paper retrieved, put first, and judged answerable?

For each answerable dev question (by type), what the pipeline's step before the model (``Answerer.gather``) did:
recall@1 / @5 of retrieval (r1, r5); the gold paper among the first 5 of the answer's sources (src5: 0 when the
question is refused) and among the papers shown to the model (shown); "first": the paper shown first is gold;
"answerable": the decision lets it through; "off_topic": it is called off-topic. "first & answerable" is what
"cites gold" needs before the model writes a word, at ~0.3 s a question instead of ~5 s. The dev set's
``semantic`` items ``dev-249``.. (30 paraphrases that share at most 3 content words with their abstract) are
reported apart as ``semantic-hard``, and items whose notes say "lay" (everyday words, issue 24) as ``lay``;
``--off-topic`` adds the off_topic questions (their off_topic column should be 1).

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
from rag.answer.pipeline import answer_sources  # noqa: E402
from rag.answer.policy import GENERATE  # noqa: E402
from rag.answer.question import Question  # noqa: E402
from rag.answer.result import OFF_TOPIC  # noqa: E402

TYPES = ("single", "numeric", "multi", "title_lookup", "false_premise", "semantic")
HARD_FROM = 249  # dev-249 .. dev-278: the hard paraphrases


def _group(q: dict) -> str:
    if q.get("notes", "").startswith("lay"):
        return "lay"  # everyday words (issue 24): no field term, method name or title word
    if q["type"] == "semantic" and int(q["id"].split("-")[1]) >= HARD_FROM:
        return "semantic-hard"
    return q["type"]


COLUMNS = ("r1", "r5", "src5", "shown", "first", "answerable", "off_topic", "first_and_answerable")


def run(app, questions: list[dict]) -> tuple[list[dict], dict]:
    """Per question, what ``Answerer.gather`` (the pipeline's own step before the model) did with it."""
    ans = app.answerer
    rows, evidence_ms = [], []
    for q in questions:
        gold, timings = set(q["gold_titles"]), {}
        g = ans.gather(Question(q["question"]), timings=timings)
        evidence_ms.append(timings["evidence_ms"])
        titles = [h.title for h in g.retrieval.hits]
        answerable = g.decision.route == GENERATE
        shown = [p.title for p, _ in g.selection]
        sources = [h.title for h in answer_sources(g)] if answerable else []
        first = bool(shown) and shown[0] in gold
        rows.append({"id": q["id"], "group": _group(q), "r1": bool(titles) and titles[0] in gold,
                     "r5": bool(gold & set(titles[:5])), "src5": bool(gold & set(sources[:5])),
                     "shown": bool(gold & set(shown)), "first": first, "answerable": answerable,
                     "off_topic": g.decision.route == OFF_TOPIC, "first_and_answerable": first and answerable,
                     "closest": round(g.signals.closest, 4), "topical": g.signals.topical,
                     "should_be_off_topic": q["type"] == "off_topic"})
    groups = ["all", *dict.fromkeys(r["group"] for r in rows)]
    summary = {}
    for g in groups:
        sub = [r for r in rows if g == "all" or r["group"] == g]
        summary[g] = {"n": len(sub), **{k: round(statistics.mean(r[k] for r in sub), 3) for k in COLUMNS}}
    summary["evidence_ms_p50"] = round(statistics.median(evidence_ms), 1)
    return rows, summary


def fit_off_topic(rows: list[dict]) -> tuple[float, dict]:
    """The ``answer.policy.off_topic_closeness`` that best separates, among questions without research vocabulary
    (the only ones it decides), the off-topic requests (closest under it) from the questions about the papers (at
    or above it); of the best cut-offs, the middle of the widest gap.

    >>> rows = [{"closest": c, "topical": False, "should_be_off_topic": off} for c, off in
    ...         [(0.1, True), (0.3, True), (0.35, False), (0.5, False)]]
    >>> fit_off_topic(rows)
    (0.325, {'n_off_topic': 2, 'n_about_papers': 2, 'errors': 0, 'off_topic_max': 0.3, 'about_papers_min': 0.35})
    """
    pool = [r for r in rows if not r["topical"]]
    values = sorted({r["closest"] for r in pool})
    cuts = [(a + b) / 2 for a, b in zip(values, values[1:])] or [values[0] if values else 0.0]

    def errors(t: float) -> int:
        return sum((r["closest"] < t) != r["should_be_off_topic"] for r in pool)

    best = min(errors(t) for t in cuts)
    good = [t for t in cuts if errors(t) == best]
    gap = lambda t: min((abs(r["closest"] - t) for r in pool), default=0.0)  # noqa: E731
    t = round(max(good, key=lambda t: (gap(t), -t)), 4)
    off = [r["closest"] for r in pool if r["should_be_off_topic"]]
    about = [r["closest"] for r in pool if not r["should_be_off_topic"]]
    return t, {"n_off_topic": len(off), "n_about_papers": len(about), "errors": best,
               "off_topic_max": max(off, default=None), "about_papers_min": min(about, default=None)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", required=True, help="key of this run in bench/results/semantic.json")
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--questions", type=Path, default=ROOT / "eval/questions/dev.jsonl")
    ap.add_argument("--off-topic", action="store_true", help="also the off_topic questions (their off_topic column should be 1)")
    ap.add_argument("--fit-off-topic", action="store_true", help="(implies --off-topic) fit answer.policy.off_topic_closeness "
                    "on these questions and print it as YAML")
    ap.add_argument("--group", action="append", default=[], help="only these groups (lay, semantic-hard, semantic, single, ...; repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="setting override (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/semantic.json")
    args = ap.parse_args()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    questions = [json.loads(line) for line in args.questions.open() if line.strip()]
    args.off_topic = args.off_topic or args.fit_off_topic
    questions = [q for q in questions if q["type"] in TYPES or (args.off_topic and q["type"] == "off_topic")]
    questions = [q for q in questions if not args.group or _group(q) in args.group]
    t0 = time.perf_counter()
    with rag.load(args.config, data_dir=args.data_dir, **overrides) as app:
        rows, summary = run(app, questions)
    print(f"{args.label}: {args.config} {overrides or ''}")
    print(f"{'group':15s} {'n':>4s}" + "".join(f" {c:>10s}" for c in COLUMNS))
    for g, m in summary.items():
        if isinstance(m, dict):
            print(f"{g:15s} {m['n']:4d}" + "".join(f" {m[c]:10.3f}" for c in COLUMNS))
    print(f"evidence scoring p50 {summary['evidence_ms_p50']} ms")
    if args.fit_off_topic:
        t, fit = fit_off_topic(rows)
        summary["off_topic_fit"] = {"off_topic_closeness": t, **fit}
        print(f"off-topic fit (questions without research vocabulary): {fit}")
        print(f"answer:\n  policy:\n    off_topic_closeness: {t}")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.label] = {"command": " ".join(sys.argv), "config": args.config, "overrides": overrides,
                           "questions_file": str(args.questions.relative_to(ROOT)) if args.questions.is_relative_to(ROOT) else str(args.questions),
                           "machine": machine_info(), "wall_s": round(time.perf_counter() - t0, 1),
                           "summary": summary, "rows": rows}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
