"""Answer quality and latency on the dev set, and the calibration of every answering threshold.

    .venv/bin/python bench/answer_quality.py                      # the cpu preset on the whole dev set
    .venv/bin/python bench/answer_quality.py --models qwen2.5-coder-0.5b-instruct-q4_k_m qwen2.5-coder-1.5b-instruct-q4_k_m
    .venv/bin/python bench/answer_quality.py --calibrate          # threshold sweeps (dev set only)

Default: each question of ``--questions`` (dev.jsonl) goes through ``eval.scoring.eval_question``
(the system and the extractive baseline); one row per model with the key metrics and the latency
percentiles (time to first token, total, prompt tokens). -> bench/results/answer_quality.json

``--calibrate`` loads the app with ``answer.policy.min_evidence`` and ``confident_evidence`` at 0 (every
answerable-looking question reaches the model; every failed model answer falls back to quotes), records what
happened, then replays ``rag.answer.policy.decide`` with each policy of a grid of (min_evidence,
confident_evidence): refusal accuracy on unanswerable questions, false refusals on the others. It also sweeps the
list numbers (``rag.answer.lists.include``) and the evidence selection (``rag.answer.evidence.select``: quotes per
paper, keep ratio; fact coverage of the quotes alone), and prints the policy it chooses as YAML
(``choose``). No module global is touched: each variant is an ``AnswerPolicy``. -> bench/results/answer_calibration.json
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

import yaml  # noqa: E402

import rag  # noqa: E402
from eval.metrics import citation_precision, citation_recall, fact_coverage  # noqa: E402
from eval.questions import DECLINED, load_questions, retrieval_query  # noqa: E402
from eval.runner import machine_info  # noqa: E402
from eval.scoring import eval_question  # noqa: E402
from rag.answer import evidence as E  # noqa: E402
from rag.answer import lists as L  # noqa: E402
from rag.answer.answerability import Signals  # noqa: E402
from rag.answer.policy import Outcome, decide  # noqa: E402
from rag.answer.question import Question  # noqa: E402
from rag.config import Settings  # noqa: E402

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
    """Sweep the answer policy's numbers on dev; returns the sweeps and the policy chosen (printed as YAML).

    Nothing is assigned to any module: every variant is an ``AnswerPolicy`` handed to the library's own rules
    (``rag.answer.policy.decide``, ``rag.answer.lists.include``, ``rag.answer.evidence.select``)."""
    with rag.load(args.config, data_dir=args.data_dir, **{"answer.policy.min_evidence": 0.0,
                                                          "answer.policy.confident_evidence": 0.0}) as app:
        if app.count() == 0:
            app.ingest(progress=False)
        shipped = Settings.load(args.config).answer.policy
        rows = answerability_rows(app, questions)
        grid = answerability_grid(rows, shipped)
        lists_sweep = list_sweep(app, questions, shipped)
        selection = selection_sweep(app, questions, shipped)
    chosen = choose(grid, lists_sweep, selection)
    policy = shipped.model_copy(update=chosen)
    print("\nThe policy these sweeps choose (answer.policy in a config file):")
    print(yaml.safe_dump({"answer": {"policy": chosen}}, sort_keys=False).rstrip())
    changed = {k: (getattr(shipped, k), v) for k, v in chosen.items() if getattr(shipped, k) != v}
    print("differs from the shipped policy in: " + (", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) or "nothing"))
    return {"shipped": shipped.model_dump(), "chosen": chosen, "policy": policy.model_dump(),
            "answerability": {"rows": rows, "grid": grid}, "lists": lists_sweep, "selection": selection}


def answerability_rows(app, questions) -> list[dict]:
    """Each answerable-looking dev question asked with min/confident evidence 0: its signals and what the model did."""
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
        signals = {k: v for k, v in (a.signals or {}).items() if k in Signals.__dataclass_fields__}
        rows.append({"id": q["id"], "answerable": q["type"] not in DECLINED, "signals": signals or None,
                     "model_ok": a.kind == "answer", "fallback": a.kind == "extractive",
                     "gold_cited": bool({c.title for c in a.citations} & set(q["gold_titles"]))})
    return rows


def refused_under(row: dict, policy) -> bool:
    """Would ``policy`` refuse this row? ``decide`` on its signals and what the model did (with confident evidence
    0 the run quoted whenever the quotes held the answer, so ``fallback`` is ``quotes_hold``)."""
    if row["signals"] is None:
        return True
    o = Outcome(Signals(**row["signals"]), found=row["model_ok"], cited=row["model_ok"], quotes_hold=row["fallback"])
    return decide(o, policy).route not in ("answer", "extractive")


def answerability_grid(rows: list[dict], shipped) -> list[dict]:
    grid = []
    for mn, conf in itertools.product([0.0, 0.25, 0.30, 0.35, 0.40], [0.0, 0.35, 0.40, 0.45, 0.52, 0.60, 1.0]):
        policy = shipped.model_copy(update={"min_evidence": mn, "confident_evidence": conf})
        refused = [(r, refused_under(r, policy)) for r in rows]
        grid.append({"min_evidence": mn, "confident_evidence": conf,
                     "refusal_accuracy": mean([x for r, x in refused if not r["answerable"]]),
                     "false_refusal": mean([x for r, x in refused if r["answerable"]]),
                     "cites_gold": mean([not x and r["gold_cited"] for r, x in refused if r["answerable"]])})
    print("\nAnswerability (dev): min_evidence x confident_evidence -> refusal on unanswerable / false refusal / cites gold")
    for g in grid:
        print(f"  min {g['min_evidence']:.2f} conf {g['confident_evidence']:.2f}: refusal {g['refusal_accuracy']}  "
              f"false refusal {g['false_refusal']}  cites gold {g['cites_gold']}")
    return grid


def list_sweep(app, questions, shipped) -> list[dict]:
    scorer, store = app.answerer.scorer, app.locked_store
    data = []
    for q in [q for q in questions if q["type"] == "list"]:
        crit = Question(q["question"], kind="list").criterion
        r = app.retrieve(q["question"], k=shipped.list_retrieve)
        data.append((q, *L.scored(scorer, crit, E.load_sources(store, r.hits)), crit))
    sweep = []
    for rw, dw, rel, ew in itertools.product([0.0, 0.2, 0.3, 0.4], [0.0, 0.5, 0.8, 1.0], [0.6, 0.64, 0.68, 0.72, 0.75],
                                             [0.0, 0.3, 0.6, 1.0]):
        policy = shipped.model_copy(update={"list_rank_weight": rw, "list_doc_weight": dw, "list_relative": rel,
                                            "list_entity_weight": ew})
        got = [([p.title for p in L.include(papers, sims, policy, crit)], q["gold_titles"]) for q, papers, sims, crit in data]
        sweep.append({"list_rank_weight": rw, "list_doc_weight": dw, "list_relative": rel, "list_entity_weight": ew,
                      "precision": mean([citation_precision(g, gold) or 0.0 for g, gold in got]),
                      "recall": mean([citation_recall(g, gold) for g, gold in got])})
    print("\nList inclusion (dev list questions): rank x doc x relative x entity weight -> set precision / recall")
    for s in sweep:
        print(f"  {s['list_rank_weight']:.1f} x {s['list_doc_weight']:.1f} x {s['list_relative']:.2f} x "
              f"{s['list_entity_weight']:.1f}: precision {s['precision']}  recall {s['recall']}")
    return sweep


def selection_sweep(app, questions, shipped) -> list[dict]:
    scorer, store, sel = app.answerer.scorer, app.locked_store, []
    answerable = [q for q in questions if q["type"] not in DECLINED and q["type"] not in ("list", "non_english")]
    data = []
    for q in answerable:
        query = Question(retrieval_query(q))
        r = app.retrieve(query.text, k=5)
        data.append((q, query, scorer.score(query, E.load_sources(store, r.hits[:3]), r.vector)))
    for per, keep in itertools.product([2, 3, 4], [0.75, 0.85, 1.0]) if data else []:
        policy = shipped.model_copy(update={"quotes_per_paper": per, "keep_papers": keep})
        cov, words = [], []
        for q, query, papers in data:
            text = " ".join(p.sentences[i].text for p, idx in E.select(papers, query, policy, app.settings.answer.llm_sources)
                            for i in idx)
            cov.append(fact_coverage(q["answer_facts"], text))
            words.append(len(text.split()))
        sel.append({"quotes_per_paper": per, "keep_papers": keep, "fact_coverage": mean(cov), "words_p50": statistics.median(words)})
    print("\nEvidence selection (answerable dev questions, quotes only): per paper x keep -> fact coverage, words")
    for s in sel:
        print(f"  {s['quotes_per_paper']} x {s['keep_papers']:.2f}: facts {s['fact_coverage']}  words p50 {s['words_p50']}")
    return sel


def choose(grid: list[dict], lists_sweep: list[dict], selection: list[dict]) -> dict:
    """The operating point of each sweep: answerability by balanced accuracy (refusal on unanswerables and answers
    on answerables weigh alike; ties: more gold cited, then the lower thresholds); lists by F1 of set precision and
    recall; selection by fact coverage of the quotes (ties: fewer words).

    >>> choose([{"min_evidence": 0.3, "confident_evidence": 0.3, "refusal_accuracy": 0.9, "false_refusal": 0.1, "cites_gold": 0.8},
    ...         {"min_evidence": 0.4, "confident_evidence": 0.3, "refusal_accuracy": 1.0, "false_refusal": 0.5, "cites_gold": 0.5}],
    ...        [], [])
    {'min_evidence': 0.3, 'confident_evidence': 0.3}
    """
    out: dict = {}
    if grid:
        g = max(grid, key=lambda g: ((g["refusal_accuracy"] or 0) + 1 - (g["false_refusal"] or 0), g["cites_gold"] or 0,
                                     -g["min_evidence"], -g["confident_evidence"]))
        out |= {"min_evidence": g["min_evidence"], "confident_evidence": g["confident_evidence"]}
    if lists_sweep:
        f1 = lambda s: 2 * s["precision"] * s["recall"] / (s["precision"] + s["recall"]) if s["precision"] and s["recall"] else 0.0  # noqa: E731
        best = max(lists_sweep, key=f1)
        out |= {k: best[k] for k in ("list_rank_weight", "list_doc_weight", "list_relative", "list_entity_weight")}
    if selection:
        best = max(selection, key=lambda s: (s["fact_coverage"] or 0, -s["words_p50"]))
        out |= {"quotes_per_paper": best["quotes_per_paper"], "keep_papers": best["keep_papers"]}
    return out


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
