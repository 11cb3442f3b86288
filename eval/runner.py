"""Run a question set through an App and write per-question records plus a summary.

    run_eval(app, questions, out_dir) -> summary dict

For each question:

* **retrieval** -- hybrid search (``app.retrieve(query, k=10)``) scored with recall@1/5/10,
  MRR, nDCG@10 and all-gold@5 (multi questions), and the same for a BM25-only baseline
  (``mode="sparse"``). The query is the question; for a follow-up it is both turns joined
  (the second turn alone is ambiguous without the conversation).
* **answer** (unless ``retrieval_only``) -- ``app.ask(question)``; a follow-up goes through
  ``app.chat`` with the first turn and its answer as history. Scored with citation validity
  (cited titles among the sources given to the LLM), citation precision/recall and cites-gold
  against the gold titles, fact coverage and token F1 against ``answer_facts``, and refusal
  (correct refusal on unanswerable questions, false refusal on the others).
* **closed-book baseline** (``"closed_book" in baselines``) -- ``app.ask(q, closed_book=True)``,
  scored on facts and refusal.

``out_dir/records.jsonl`` gets one line per question as soon as it is done (flushed), so a run
can be interrupted and resumed: questions already recorded with the same configuration hash
(and models) are skipped. A question that raises is recorded with its ``error`` and the run
goes on; errored questions are retried on the next run. ``out_dir/summary.json`` holds every
metric's mean with a bootstrap 95% CI, overall and per question type, for the system and the
baselines, plus latency percentiles (with bootstrap CIs overall), machine information and the command.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from eval.metrics import (
    all_gold_at_k,
    citation_precision,
    citation_recall,
    citation_validity,
    cites_gold,
    fact_coverage,
    is_refusal,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    token_f1_facts,
)
from eval.metrics.bootstrap import bootstrap_ci, mean_ci
from eval.metrics.latency import summarize
from eval.questions import TYPES, question_text, retrieval_query

log = logging.getLogger(__name__)

RETRIEVAL_K = 10
RECORDS = "records.jsonl"
SUMMARY = "summary.json"

RETRIEVAL_METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "all_gold@5")
ANSWER_METRICS = ("citation_validity", "citation_precision", "citation_recall", "cites_gold",
                  "fact_coverage", "token_f1", "refusal_accuracy", "false_refusal_rate",
                  "answer_sources_recall")
CLOSED_BOOK_METRICS = ("fact_coverage", "token_f1", "refusal_accuracy", "false_refusal_rate")
LATENCY_KEYS = ("retrieval_ms", "ttft_s", "total_s", "tokens_per_s")


# -- per-question metrics ------------------------------------------------------------------
def retrieval_metrics(retrieved: Sequence[str], gold: Sequence[str], qtype: str) -> dict:
    """Per-question retrieval metrics (``None`` where undefined, e.g. no gold titles)."""
    return {
        "recall@1": recall_at_k(retrieved, gold, 1),
        "recall@5": recall_at_k(retrieved, gold, 5),
        "recall@10": recall_at_k(retrieved, gold, 10),
        "mrr": reciprocal_rank(retrieved, gold, k=RETRIEVAL_K),
        "ndcg@10": ndcg_at_k(retrieved, gold, 10),
        "all_gold@5": all_gold_at_k(retrieved, gold, 5) if qtype == "multi" else None,
    }


def _refusal_metrics(refused: bool, qtype: str) -> dict:
    unanswerable = qtype == "unanswerable"
    return {
        "refusal_accuracy": float(refused) if unanswerable else None,
        "false_refusal_rate": None if unanswerable else float(refused),
    }


def answer_metrics(text: str, refused: bool, cited: Sequence[str], shown: Sequence[str],
                   gold: Sequence[str], facts: Sequence[str], qtype: str,
                   sources: Sequence[str] = ()) -> dict:
    """Per-question answer metrics. ``shown``: titles numbered in the prompt; ``sources``: all retrieved."""
    answerable = qtype != "unanswerable"
    return {
        "citation_validity": citation_validity(cited, shown),
        "citation_precision": citation_precision(cited, gold) if answerable else None,
        "citation_recall": citation_recall(cited, gold),
        "cites_gold": cites_gold(cited, gold),
        "fact_coverage": fact_coverage(facts, "" if refused else text),
        "token_f1": token_f1_facts(facts, "" if refused else text),
        **_refusal_metrics(refused, qtype),
        "answer_sources_recall": recall_at_k(sources, gold, max(len(sources), 1)),
    }


def closed_book_metrics(text: str, refused: bool, facts: Sequence[str], qtype: str) -> dict:
    return {
        "fact_coverage": fact_coverage(facts, "" if refused else text),
        "token_f1": token_f1_facts(facts, "" if refused else text),
        **_refusal_metrics(refused, qtype),
    }


# -- one question --------------------------------------------------------------------------
def _model_ids(app, answering: bool) -> dict:
    emb = app._embedder if getattr(app, "_embedder", None) is not None else None
    gen = app._generator if getattr(app, "_generator", None) is not None else None
    return {
        "embedding": getattr(emb, "model_id", None) or app.settings.embedding.model,
        "generation": (getattr(gen, "model_id", None) or app.settings.generation.model) if answering else None,
    }


def _titles(hits) -> list[str]:
    return [h.title for h in hits]


def _refused(answer) -> bool:
    return bool(answer.refused) or is_refusal(answer.text)


def eval_question(app, q: Mapping, *, retrieval_only: bool, baselines: Sequence[str]) -> dict:
    """Evaluate one question; the record (without run-level fields). Raises on failure."""
    qtype = q["type"]
    gold, facts = list(q.get("gold_titles", [])), list(q.get("answer_facts", []))
    query = retrieval_query(q)
    rec: dict = {"retrieval_query": query}

    hybrid = app.retrieve(query, k=RETRIEVAL_K, mode="hybrid")
    rec["retrieved"] = _titles(hybrid.hits)
    rec["metrics"] = retrieval_metrics(rec["retrieved"], gold, qtype)
    eval_ms = hybrid.embed_ms + hybrid.search_ms
    rec["timings"] = {"retrieval_ms": eval_ms, "eval_retrieval_ms": eval_ms, "embed_ms": hybrid.embed_ms,
                      "search_ms": hybrid.search_ms}
    if "bm25" in baselines:
        sparse = app.retrieve(query, k=RETRIEVAL_K, mode="sparse")
        rec["retrieved_bm25"] = _titles(sparse.hits)
        rec["bm25_metrics"] = retrieval_metrics(rec["retrieved_bm25"], gold, qtype)
        rec["timings"]["bm25_retrieval_ms"] = sparse.embed_ms + sparse.search_ms
    if retrieval_only:
        return rec

    if qtype == "followup":
        t1, t2 = q["turns"]
        first = app.ask(t1)
        rec["first_answer"] = first.text
        answer = app.chat([{"role": "user", "content": t1},
                           {"role": "assistant", "content": first.text},
                           {"role": "user", "content": t2}])
    else:
        answer = app.ask(q["question"])
    refused = _refused(answer)
    n_shown = app.settings.answer.llm_sources
    shown = _titles(answer.sources[:n_shown])
    cited = [c.title for c in answer.citations]
    rec.update(
        answer=answer.text,
        refused=refused,
        refusal_reason=getattr(answer, "refusal_reason", ""),
        citations=cited,
        sources=_titles(answer.sources),
        standalone_question=answer.standalone_question or question_text(q),
        model=answer.model,
    )
    # the answer's own retrieval latency replaces the eval's when present (it is what users see)
    rec["timings"].update({k: v for k, v in answer.timings.items() if isinstance(v, (int, float))})
    rec["metrics"].update(answer_metrics(answer.text, refused, cited, shown, gold, facts, qtype, rec["sources"]))

    if "closed_book" in baselines:
        cq = query if qtype == "followup" else q["question"]
        cb = app.ask(cq, closed_book=True)
        cb_refused = _refused(cb)
        rec["closed_book"] = {
            "question": cq,
            "answer": cb.text,
            "refused": cb_refused,
            "timings": {k: v for k, v in cb.timings.items() if isinstance(v, (int, float))},
            "metrics": closed_book_metrics(cb.text, cb_refused, facts, qtype),
        }
    return rec


# -- records ------------------------------------------------------------------------------
def read_records(path: str | Path) -> list[dict]:
    """Records of ``records.jsonl``, the last line per id winning (reruns of errored questions)."""
    path = Path(path)
    if not path.is_file():
        return []
    by_id: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping a truncated record", path, n)
                continue
            if isinstance(rec, dict) and "id" in rec:
                by_id.pop(rec["id"], None)
                by_id[rec["id"]] = rec
    return list(by_id.values())


def _reusable(rec: Mapping, config_hash: str, models: Mapping, retrieval_only: bool, baselines: Sequence[str]) -> bool:
    if rec.get("error") or rec.get("config_hash") != config_hash:
        return False
    if (rec.get("models") or {}).get("embedding") != models["embedding"]:
        return False
    if "bm25" in baselines and "bm25_metrics" not in rec:
        return False
    if retrieval_only:
        return True
    if rec.get("retrieval_only", True) or (rec.get("models") or {}).get("generation") != models["generation"]:
        return False
    return "closed_book" not in baselines or "closed_book" in rec


def run_eval(app, questions: Iterable[Mapping], out_dir: str | Path, limit: int | None = None,
             retrieval_only: bool = False, baselines: Sequence[str] = ("bm25", "closed_book"),
             progress: bool = True, command: str | None = None, questions_file: str | None = None) -> dict:
    """Evaluate ``questions`` with ``app``; write ``records.jsonl`` and ``summary.json`` in ``out_dir``.

    Returns the summary. ``limit`` keeps the first N questions. ``baselines``: any of
    ``"bm25"``, ``"closed_book"`` (the latter only when answering).
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    questions = [dict(q) for q in questions]
    if limit is not None:
        questions = questions[: max(limit, 0)]
    baselines = tuple(baselines)
    config_hash = app.settings.config_hash()
    records_path = out / RECORDS

    existing = {r["id"]: r for r in read_records(records_path)}
    # the generator is only built when a question needs it; its id is known from the settings
    models = _model_ids(app, answering=not retrieval_only)
    todo = [q for q in questions
            if not (q["id"] in existing and _reusable(existing[q["id"]], config_hash, models, retrieval_only, baselines))]
    skipped = len(questions) - len(todo)
    if skipped:
        log.info("resuming: %d of %d questions already recorded in %s", skipped, len(questions), records_path)
    started = time.perf_counter()
    with open(records_path, "a", encoding="utf-8") as f, \
            tqdm(total=len(questions), initial=skipped, desc="eval", unit="q", file=sys.stderr,
                 disable=not progress, dynamic_ncols=True) as bar:
        for q in todo:
            rec = {
                "id": q["id"], "type": q["type"],
                **({"turns": q["turns"]} if q.get("turns") else {"question": q.get("question")}),
                "gold": list(q.get("gold_titles", [])), "facts": list(q.get("answer_facts", [])),
            }
            try:
                rec.update(eval_question(app, q, retrieval_only=retrieval_only, baselines=baselines))
                rec["error"] = None
            except Exception as e:  # noqa: BLE001 - one bad question must not stop the run
                log.warning("question %s failed: %s", q["id"], e)
                rec["error"] = f"{type(e).__name__}: {e}"
                rec["traceback"] = traceback.format_exc(limit=5)
            rec.update(config_hash=config_hash, models=_model_ids(app, answering=not retrieval_only),
                       retrieval_only=retrieval_only, time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            f.flush()
            existing[q["id"]] = rec
            bar.update(1)

    wanted = {q["id"] for q in questions}
    records = [r for r in read_records(records_path) if r["id"] in wanted and r.get("config_hash") == config_hash]
    order = {q["id"]: i for i, q in enumerate(questions)}
    records.sort(key=lambda r: order[r["id"]])
    summary = summarize_records(records, retrieval_only=retrieval_only, baselines=baselines)
    summary.update(
        config_hash=config_hash,
        models=_model_ids(app, answering=not retrieval_only),
        settings=app.settings.model_dump(mode="json", exclude={"serving"}),
        questions_file=questions_file,
        n_skipped_resumed=skipped,
        question_ids=[r["id"] for r in records],
        run_seconds=round(time.perf_counter() - started, 2),
        machine=machine_info(),
        command=command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


# -- summary ------------------------------------------------------------------------------
def _ci(values: list) -> dict:
    point, low, high = mean_ci(values)
    return {"mean": point, "low": low, "high": high, "n": sum(v is not None for v in values)}


def _metric_table(records: list[dict], getter, names: Sequence[str]) -> dict:
    out = {}
    for name in names:
        vals = [getter(r).get(name) for r in records if getter(r) is not None]
        out[name] = _ci(vals)
    return out


def _pct(p: float):
    return lambda a: np.percentile(a, p)


def latency_stats(values: list, ci: bool = True) -> dict:
    """summarize() plus (``ci``) bootstrap CIs of p50 and p95."""
    s = summarize(values)
    for p in (50, 95) if ci else ():
        _, low, high = bootstrap_ci(values, _pct(p))
        s[f"p{p}_low"], s[f"p{p}_high"] = low, high
    return s


def _latency(records: list[dict], key_getter, ci: bool = True) -> dict:
    return {k: latency_stats([key_getter(r).get(k) for r in records if key_getter(r) is not None], ci) for k in LATENCY_KEYS}


def _group_summary(records: list[dict], retrieval_only: bool, baselines: Sequence[str], latency_ci: bool = True) -> dict:
    ok = [r for r in records if not r.get("error")]
    answered = [r for r in ok if "answer" in r]
    g: dict = {
        "n": len(records),
        "n_errors": len(records) - len(ok),
        "system": _metric_table(ok, lambda r: r.get("metrics") or {}, RETRIEVAL_METRICS),
        "latency": _latency(ok, lambda r: r.get("timings") or {}, latency_ci),
    }
    if not retrieval_only:
        g["system"].update(_metric_table(answered, lambda r: r.get("metrics") or {}, ANSWER_METRICS))
    if "bm25" in baselines:
        g["bm25"] = _metric_table(ok, lambda r: r.get("bm25_metrics"), RETRIEVAL_METRICS)
    if not retrieval_only and "closed_book" in baselines:
        cb = [r for r in ok if "closed_book" in r]
        g["closed_book"] = _metric_table(cb, lambda r: r["closed_book"]["metrics"], CLOSED_BOOK_METRICS)
        g["closed_book_latency"] = _latency(cb, lambda r: r["closed_book"].get("timings") or {}, latency_ci)
    return g


def summarize_records(records: list[dict], retrieval_only: bool = False,
                      baselines: Sequence[str] = ("bm25", "closed_book")) -> dict:
    """Summary of records: overall and per type, system and baselines, means with 95% CIs."""
    types = [t for t in TYPES if any(r["type"] == t for r in records)]
    types += sorted({r["type"] for r in records} - set(types))
    return {
        "n_questions": len(records),
        "n_errors": sum(bool(r.get("error")) for r in records),
        "retrieval_only": retrieval_only,
        "baselines": [b for b in baselines if b == "bm25" or not retrieval_only],
        "retrieval_k": RETRIEVAL_K,
        "type_counts": {t: sum(r["type"] == t for r in records) for t in types},
        "overall": _group_summary(records, retrieval_only, baselines),
        # latency percentile CIs overall only: per type they are wide and slow to bootstrap
        "by_type": {t: _group_summary([r for r in records if r["type"] == t], retrieval_only, baselines, latency_ci=False)
                    for t in types},
    }


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gb"] = None
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        try:
            info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except Exception:  # noqa: BLE001
            info["cuda"] = None
    return info
