"""Answer quality and latency on the dev set, and the calibration of every answering threshold.

    .venv/bin/python bench/answer_quality.py                      # the cpu preset on the whole dev set
    .venv/bin/python bench/answer_quality.py --models qwen2.5-coder-0.5b-instruct-q4_k_m qwen2.5-coder-1.5b-instruct-q4_k_m
    .venv/bin/python bench/answer_quality.py --calibrate          # threshold sweeps (dev set only)

Default: each question of ``--questions`` (dev.jsonl) goes through ``eval.scoring.eval_question``
(the system and the extractive baseline); one row per model with the key metrics and the latency
percentiles (time to first token, total, prompt tokens). -> bench/results/answer_quality.json

``--calibrate`` sets the answerability thresholds to 0 (every answerable-looking question reaches
the model; every failed model answer falls back to quotes), records what happened, then replays
the decision rule of ``rag.answer.answerability`` over a grid of (MIN_EVIDENCE, CONFIDENT_EVIDENCE): refusal
accuracy on unanswerable questions, false refusals on the others. It also sweeps the list thresholds
(``rag.answer.lists``) and the evidence selection (``rag.answer.evidence.select``: quotes per paper, keep ratio; fact
coverage of the quotes alone). -> bench/results/answer_calibration.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402
from eval.metrics import citation_precision, citation_recall, fact_coverage  # noqa: E402
from eval.questions import DECLINED, load_questions, retrieval_query  # noqa: E402
from eval.runner import machine_info  # noqa: E402
from eval.scoring import eval_question  # noqa: E402

RESULTS = ROOT / "bench" / "results"
KEYS = ("cites_gold", "fact_coverage", "fact_coverage_text", "citation_support", "refusal_accuracy", "false_refusal_rate",
        "handled", "citation_precision", "citation_recall")


def mean(xs):
    xs = [x for x in xs if x is not None]
    return round(sum(xs) / len(xs), 3) if xs else None


def pct(xs, p):
    xs = sorted(x for x in xs if x is not None)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 3) if xs else None


def run_models(args, questions) -> dict:
    out = {}
    for model in args.models:
        with rag.load(args.config, data_dir=args.data_dir, **{"generation.model": model}) as app:
            if app.count() == 0:
                app.ingest(progress=False)
            recs, t0 = [], time.perf_counter()
            for q in questions:
                recs.append({"id": q["id"], "type": q["type"], **eval_question(app, q, baselines=("extractive",))})
            by_type = {t: {k: mean([r["metrics"].get(k) for r in recs if r["type"] == t]) for k in KEYS}
                       for t in dict.fromkeys(r["type"] for r in recs)}
            lat = [r["timings"] for r in recs if "ttft_s" in r["timings"]]
            out[model] = {
                "overall": {k: mean([r["metrics"].get(k) for r in recs]) for k in KEYS},
                "extractive": {k: mean([r["extractive"]["metrics"].get(k) for r in recs if "extractive" in r])
                               for k in ("fact_coverage", "cites_gold", "citation_support")},
                "by_type": by_type,
                "latency": {k: {"p50": pct([t.get(k) for t in lat], 50), "p95": pct([t.get(k) for t in lat], 95)}
                            for k in ("ttft_s", "total_s", "prompt_tokens", "evidence_ms", "retrieval_ms")},
                "n": len(recs), "seconds": round(time.perf_counter() - t0, 1),
                "records": [{k: r.get(k) for k in ("id", "type", "kind", "answer", "citations", "metrics", "timings")} for r in recs],
            }
            o, lt = out[model], out[model]["latency"]
            print(f"{model}: cites gold {o['overall']['cites_gold']}, facts shown {o['overall']['fact_coverage']} "
                  f"(text {o['overall']['fact_coverage_text']}; extractive {o['extractive']['fact_coverage']}), support "
                  f"{o['overall']['citation_support']}, refusal {o['overall']['refusal_accuracy']}, false refusal "
                  f"{o['overall']['false_refusal_rate']}; TTFT p50 {lt['ttft_s']['p50']} s, total p50 {lt['total_s']['p50']} s, "
                  f"prompt tokens p50 {lt['prompt_tokens']['p50']}", flush=True)
    return out


def calibrate(args, questions) -> dict:
    import rag.answer.answerability as A
    import rag.answer.lists as L
    from rag.answer import evidence as E

    result: dict = {"configured": {"MIN_EVIDENCE": A.MIN_EVIDENCE, "CONFIDENT_EVIDENCE": A.CONFIDENT_EVIDENCE,
                                   "lists.RANK_WEIGHT": L.RANK_WEIGHT, "lists.DOC_WEIGHT": L.DOC_WEIGHT,
                                   "lists.RELATIVE": L.RELATIVE, "lists.MIN_BEST": L.MIN_BEST,
                                   "lists.ENTITY_WEIGHT": L.ENTITY_WEIGHT}}
    A.MIN_EVIDENCE, A.CONFIDENT_EVIDENCE = 0.0, 0.0
    with rag.load(args.config, data_dir=args.data_dir) as app:
        if app.count() == 0:
            app.ingest(progress=False)
        rows = []
        for q in questions:
            if q["type"] in ("list", "injection", "emergency", "off_topic"):
                continue
            if q["type"] == "followup":
                first = app.ask(q["turns"][0])
                a = app.chat([{"role": "user", "content": q["turns"][0]},
                              {"role": "assistant", "content": first.text, "papers": [c.paper_id for c in first.citations]},
                              {"role": "user", "content": q["turns"][1]}])
            else:
                a = app.ask(q["question"])
            s = a.signals or {}
            cited = [c.title for c in a.citations]
            rows.append({"id": q["id"], "answerable": q["type"] not in DECLINED, "ev": s.get("best_evidence"),
                         "asked_missing": bool(s.get("asked_missing")), "name_match": bool(s.get("name_match")),
                         "pre_refused": a.refused, "model_ok": a.kind == "answer", "fallback": a.kind == "extractive",
                         "gold_cited": bool(set(cited) & set(q["gold_titles"]))})
        grid = []
        for mn, conf in itertools.product([0.0, 0.25, 0.30, 0.35, 0.40], [0.0, 0.35, 0.40, 0.45, 0.52, 0.60, 1.0]):
            ref_u, ref_a, gold = [], [], []
            for r in rows:
                if r["pre_refused"] or r["ev"] is None:
                    refused = True
                elif r["ev"] < mn and not r["name_match"]:
                    refused = True
                else:
                    refused = not (r["model_ok"] or (r["fallback"] and r["ev"] >= conf and not r["asked_missing"]))
                (ref_a if r["answerable"] else ref_u).append(refused)
                if r["answerable"]:
                    gold.append(not refused and r["gold_cited"])
            grid.append({"min_evidence": mn, "confident": conf, "refusal_accuracy": mean(ref_u),
                         "false_refusal": mean(ref_a), "cites_gold": mean(gold)})
        result["answerability"] = {"rows": rows, "grid": grid}
        print("\nAnswerability (dev): MIN_EVIDENCE x CONFIDENT_EVIDENCE -> refusal on unanswerable / false refusal / cites gold")
        for g in grid:
            print(f"  min {g['min_evidence']:.2f} conf {g['confident']:.2f}: refusal {g['refusal_accuracy']}  "
                  f"false refusal {g['false_refusal']}  cites gold {g['cites_gold']}")

        scorer = E.EvidenceScorer(app.evidence_embedder)
        lists = []
        for q in [q for q in questions if q["type"] == "list"]:
            r = app.retrieve(q["question"], k=L.RETRIEVE)
            crit = L.criterion(q["question"])
            lists.append((q, *L.scored(scorer, crit, E.load_sources(app.store, r.hits)), crit))
        sweep = []
        for rw, dw, rel, ew in itertools.product([0.0, 0.2, 0.3, 0.4], [0.0, 0.5, 0.8, 1.0], [0.6, 0.64, 0.68, 0.72, 0.75],
                                                 [0.0, 0.3, 0.6, 1.0]):
            L.RANK_WEIGHT, L.DOC_WEIGHT, L.RELATIVE, L.ENTITY_WEIGHT = rw, dw, rel, ew
            got = [([p.title for p in L.include(papers, sims, crit)], q["gold_titles"]) for q, papers, sims, crit in lists]
            sweep.append({"rank_weight": rw, "doc_weight": dw, "relative": rel, "entity_weight": ew,
                          "precision": mean([citation_precision(g, gold) or 0.0 for g, gold in got]),
                          "recall": mean([citation_recall(g, gold) for g, gold in got])})
        result["lists"] = sweep
        print("\nList inclusion (dev list questions): RANK_WEIGHT x DOC_WEIGHT x RELATIVE x ENTITY_WEIGHT -> set precision / recall")
        for s in sweep:
            print(f"  {s['rank_weight']:.1f} x {s['doc_weight']:.1f} x {s['relative']:.2f} x {s['entity_weight']:.1f}: "
                  f"precision {s['precision']}  recall {s['recall']}")

        sel = []
        answerable = [q for q in questions if q["type"] not in DECLINED and q["type"] not in ("list", "non_english")]
        data = []
        for q in answerable:
            query = retrieval_query(q)
            r = app.retrieve(query, k=5)
            data.append((q, scorer.score(query, E.load_sources(app.store, r.hits[:3]), r.vector)))
        for per, keep in itertools.product([2, 3, 4], [0.75, 0.85, 1.0]) if data else []:
            cov, words = [], []
            for q, papers in data:
                text = " ".join(p.sentences[i].text for p, idx in E.select(papers, per_paper=per, keep=keep) for i in idx)
                cov.append(fact_coverage(q["answer_facts"], text))
                words.append(len(text.split()))
            sel.append({"quotes_per_paper": per, "keep_papers": keep, "fact_coverage": mean(cov), "words_p50": statistics.median(words)})
        result["selection"] = sel
        print("\nEvidence selection (answerable dev questions, quotes only): per paper x keep -> fact coverage, words")
        for s in sel:
            print(f"  {s['quotes_per_paper']} x {s['keep_papers']:.2f}: facts {s['fact_coverage']}  words p50 {s['words_p50']}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT / "eval/questions/dev.jsonl")
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", default="/tmp/bench-answers")
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b-instruct-q4_k_m"])
    ap.add_argument("--types", nargs="*", default=None, help="only these question types")
    ap.add_argument("--limit", type=int, default=None, help="first N questions of each type")
    ap.add_argument("--calibrate", action="store_true")
    args = ap.parse_args()
    questions = load_questions(args.questions)
    if args.types:
        questions = [q for q in questions if q["type"] in args.types]
    if args.limit:
        seen: dict = {}
        questions = [q for q in questions if seen.setdefault(q["type"], []).append(1) or len(seen[q["type"]]) <= args.limit]
    info = {"command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]), "questions": str(args.questions),
            "n_questions": len(questions), "machine": machine_info(), "loadavg": os.getloadavg(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if args.calibrate:  # --types list: only the list sweep, into answer_calibration_list.json
        out = {**info, **calibrate(args, questions)}
        path = RESULTS / ("answer_calibration" + "".join(f"_{t}" for t in args.types or []) + ".json")
    else:
        out = {**info, "models": run_models(args, questions)}
        path = RESULTS / "answer_quality.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
