"""Answer quality by question style from eval runs: cites gold, facts, false refusal, search and answer-source recall@5.

The eval summary groups by ``type``; the everyday-words items (issue 24) are ``semantic`` items whose notes say
"lay", and the hard paraphrases are ``semantic`` dev-249..278. This splits them, from the runs' records::

    .venv/bin/python bench/by_style.py --questions eval/questions/dev.jsonl RUN_A RUN_B ...

prints one row per run and style and writes ``bench/results/by_style.json`` (--out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.runner import read_records  # noqa: E402

HARD = range(249, 279)


def style(q: dict) -> str:
    if q.get("notes", "").startswith("lay"):
        return "lay"
    if q["type"] == "semantic":
        return "semantic-hard" if q["id"].startswith("dev-") and int(q["id"].split("-")[1]) in HARD else "semantic"
    return q["type"]


def row(recs: list[dict]) -> dict:
    """Means over records: the answer cites a gold paper; facts found in the answer as shown; answerable but refused;
    the gold paper in search's / the answer's first 5 sources; declined (for questions without gold)."""
    out = {"n": len(recs)}
    answerable = [r for r in recs if r["gold"]]
    if answerable:
        out["cites_gold"] = statistics.mean(bool(set(r["gold"]) & set(r.get("citations") or [])) for r in answerable)
        out["facts"] = statistics.mean(r["metrics"].get("fact_coverage") or 0.0 for r in answerable)
        out["false_refusal"] = statistics.mean(bool(r.get("refused")) for r in answerable)
        out["search_r5"] = statistics.mean(bool(set(r["gold"]) & set((r.get("retrieved") or [])[:5])) for r in answerable)
        out["sources_r5"] = statistics.mean(bool(set(r["gold"]) & set((r.get("sources") or [])[:5])) for r in answerable)
        out["off_topic"] = statistics.mean(r.get("kind") == "off_topic" for r in answerable)
    else:
        out["declined"] = statistics.mean(bool(r.get("refused")) for r in recs)
    total = [r["timings"].get("total_s") for r in recs if r.get("timings", {}).get("total_s") is not None]
    if total:
        out["p50_s"] = statistics.median(total)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="eval run folders (records.jsonl)")
    ap.add_argument("--questions", type=Path, default=ROOT / "eval/questions/dev.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/by_style.json")
    args = ap.parse_args()
    questions = {q["id"]: q for q in map(json.loads, args.questions.read_text().splitlines()) if q}
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    cols = ("n", "cites_gold", "facts", "false_refusal", "off_topic", "search_r5", "sources_r5", "declined", "p50_s")
    print(f"{'run':28s} {'style':14s}" + "".join(f"{c:>14s}" for c in cols))
    for run in args.runs:
        recs = [r for r in read_records(run / "records.jsonl") if r["id"] in questions]
        groups: dict[str, list[dict]] = {}
        for r in recs:
            groups.setdefault(style(questions[r["id"]]), []).append(r)
        results[str(run)] = {g: row(rs) for g, rs in sorted(groups.items())}
        for g, m in results[str(run)].items():
            print(f"{run.name:28s} {g:14s}" + "".join(f"{m.get(c, ''):>14}" for c in cols))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
