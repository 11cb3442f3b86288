"""Answer quality and latency of generation models on the dev set (for choosing the CPU default).

    .venv/bin/python bench/answer_quality.py --models qwen2.5-coder-0.5b-instruct-q4_k_m qwen2.5-coder-1.5b-instruct-q4_k_m \
        --per-type 5 --data-dir /tmp/aq

Prints one table row per (model, output mode) and writes bench/results/answer_quality.json.
It also calibrates the retrieval refusal threshold: the best dense cosine of each dev question,
unanswerable vs answerable, and the threshold that separates them best.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rag  # noqa: E402
from eval.metrics.answers import fact_coverage  # noqa: E402
from eval.metrics.citations import citation_validity, cites_gold  # noqa: E402
from eval.metrics.latency import percentile  # noqa: E402

DEV = Path(__file__).resolve().parent.parent / "eval" / "questions" / "dev.jsonl"


def pick(questions: list[dict], per_type: int) -> list[dict]:
    out, seen = [], {}
    for q in questions:
        if seen.get(q["type"], 0) < per_type:
            seen[q["type"]] = seen.get(q["type"], 0) + 1
            out.append(q)
    return out


def calibrate(app, questions: list[dict]) -> dict:
    scores = [(app.retrieve(q["question"], k=5).best_dense, q["type"] == "unanswerable") for q in questions]
    best = max(
        ((t, sum((s < t) == u for s, u in scores) / len(scores)) for t in sorted({round(s, 3) for s, _ in scores})),
        key=lambda x: x[1],
    )
    ans = sorted(s for s, u in scores if not u)
    un = sorted(s for s, u in scores if u)
    return {"best_threshold": best[0], "accuracy": best[1], "answerable_min": ans[0], "answerable_p05": percentile(ans, 5),
            "unanswerable_max": un[-1], "unanswerable_median": percentile(un, 50)}


def run(app, questions: list[dict]) -> dict:
    rows = []
    for q in questions:
        t = time.perf_counter()
        a = app.ask(q["question"])
        cited = [c.title for c in a.citations]
        retrieved = [h.title for h in a.sources]
        rows.append({
            "id": q["id"], "type": q["type"], "refused": a.refused, "reason": a.refusal_reason, "answer": a.text,
            "validity": citation_validity(cited, retrieved), "cites_gold": cites_gold(cited, q["gold_titles"]),
            "coverage": fact_coverage(q["answer_facts"], a.text) if not a.refused else 0.0 if q["answer_facts"] else None,
            "total_s": time.perf_counter() - t, "ttft_s": a.timings.get("ttft_s"), "tok_s": a.timings.get("tokens_per_s"),
        })
    answerable = [r for r in rows if r["type"] != "unanswerable"]
    unans = [r for r in rows if r["type"] == "unanswerable"]
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "n": len(rows),
        "gold_cited": mean([r["cites_gold"] or 0.0 for r in answerable]),
        "validity": mean([r["validity"] for r in rows if r["validity"] is not None]),
        "coverage": mean([r["coverage"] for r in answerable if r["coverage"] is not None]),
        "refusal_acc": mean([float(r["refused"]) for r in unans]),
        "false_refusal": mean([float(r["refused"]) for r in answerable]),
        "p50_s": percentile([r["total_s"] for r in rows], 50), "p95_s": percentile([r["total_s"] for r in rows], 95),
        "ttft_p50_s": percentile([r["ttft_s"] for r in rows if r["ttft_s"]], 50),
        "tok_s_p50": percentile([r["tok_s"] for r in rows if r["tok_s"]], 50),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"])
    ap.add_argument("--outputs", nargs="+", default=["json"], choices=["json", "text"])
    ap.add_argument("--per-type", type=int, default=5, help="questions per type (dev set has 6 types)")
    ap.add_argument("--data-dir", default="/tmp/rag-answer-quality")
    ap.add_argument("--set", nargs="*", default=[], help="extra overrides KEY=VALUE")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "answer_quality.json"))
    args = ap.parse_args()
    questions = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    extra = dict(kv.split("=", 1) for kv in args.set)
    results = {"command": " ".join(sys.argv), "machine": f"{platform.machine()} {os.cpu_count()} cores", "runs": []}
    app = rag.load("cpu", data_dir=args.data_dir, **extra)
    app.ingest(progress=False)
    results["calibration"] = calibrate(app, questions)
    print("refusal threshold calibration:", json.dumps(results["calibration"]))
    subset = pick(questions, args.per_type)
    print("| model | output | n | gold cited | validity | fact coverage | refusal | false refusal | p50 s | p95 s | TTFT p50 s | tok/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for model in args.models:
        for output in args.outputs:
            app.close()
            app = rag.load("cpu", data_dir=args.data_dir, **{"generation.model": model, "answer.output": output, **extra})
            r = run(app, subset)
            r.update(model=model, output=output)
            results["runs"].append(r)
            f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"| {model} | {output} | {r['n']} | {f(r['gold_cited'])} | {f(r['validity'])} | {f(r['coverage'])} | "
                  f"{f(r['refusal_acc'])} | {f(r['false_refusal'])} | {f(r['p50_s'])} | {f(r['p95_s'])} | {f(r['ttft_p50_s'])} | {f(r['tok_s_p50'])} |",
                  flush=True)
            Path(args.out).write_text(json.dumps(results, indent=2))
    app.close()


if __name__ == "__main__":
    main()
