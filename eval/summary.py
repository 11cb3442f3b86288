"""Summaries of eval records: metric means with bootstrap CIs, latency, the precision-coverage curve.

    summarize_records(records) -> {"overall": ..., "by_type": {...}, "precision_coverage": [...]}

Means ignore questions where a metric is undefined (``None``). The precision-coverage curve
(as LitQA2 reports precision against accuracy) orders the system's answers by its own confidence
(the best evidence score, ``signals.best_evidence``) and, for each cut-off, gives the share of
questions answered (coverage) and the share of those answers that cite a gold paper (precision);
refusals and unanswerable questions count as in the system: answering an unanswerable question
is a wrong answer.

>>> recs = [{"type": "single", "refused": False, "signals": {"best_evidence": 0.9}, "metrics": {"cites_gold": 1.0}},
...         {"type": "unanswerable", "refused": False, "signals": {"best_evidence": 0.5}, "metrics": {}},
...         {"type": "single", "refused": True, "signals": {"best_evidence": 0.2}, "metrics": {"cites_gold": 0.0}}]
>>> [(p["coverage"], p["precision"]) for p in precision_coverage(recs)]
[(0.333, 1.0), (0.667, 0.5)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eval.metrics.bootstrap import bootstrap_ci, mean_ci
from eval.metrics.latency import summarize
from eval.questions import DECLINED, TYPES
from eval.scoring import ANSWER_METRICS, BASELINE_METRICS, RETRIEVAL_K, RETRIEVAL_METRICS

LATENCY_KEYS = ("retrieval_ms", "evidence_ms", "ttft_s", "total_s", "tokens_per_s", "prompt_tokens")
CURVE_TYPES = ("single", "numeric", "multi", "title_lookup", "semantic", "followup", "false_premise", "non_english", "unanswerable")


def _ci(values: list) -> dict:
    point, low, high = mean_ci(values)
    return {"mean": point, "low": low, "high": high, "n": sum(v is not None for v in values)}


def _metric_table(records: list[dict], getter, names: Sequence[str]) -> dict:
    return {name: _ci([getter(r).get(name) for r in records if getter(r) is not None]) for name in names}


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
        "latency": _latency([r for r in ok if r.get("kind") not in DECLINED or "ttft_s" in (r.get("timings") or {})],
                            lambda r: r.get("timings") or {}, latency_ci),
    }
    if not retrieval_only:
        g["system"].update(_metric_table(answered, lambda r: r.get("metrics") or {}, ANSWER_METRICS))
    if "bm25" in baselines:
        g["bm25"] = _metric_table(ok, lambda r: r.get("bm25_metrics"), RETRIEVAL_METRICS)
    for name in ("extractive", "closed_book"):
        if not retrieval_only and name in baselines:
            g[name] = _metric_table([r for r in ok if name in r], lambda r, n=name: r[n]["metrics"], BASELINE_METRICS)
    return g


def precision_coverage(records: list[dict]) -> list[dict]:
    """The precision-coverage curve (see the module docstring)."""
    recs = [r for r in records if r.get("type") in CURVE_TYPES and not r.get("error") and "signals" in r]
    if not recs:
        return []

    def conf(r):
        return -1.0 if r.get("refused") else (r.get("signals") or {}).get("best_evidence") or 0.0

    ranked = sorted(recs, key=conf, reverse=True)
    points, correct = [], 0
    for i, r in enumerate(ranked, 1):
        if r.get("refused"):
            break
        correct += bool((r.get("metrics") or {}).get("cites_gold")) and r["type"] != "unanswerable"
        points.append({"threshold": round(conf(r), 4), "coverage": round(i / len(recs), 3), "precision": round(correct / i, 3)})
    return points


def summarize_records(records: list[dict], retrieval_only: bool = False, baselines: Sequence[str] = ("bm25", "closed_book", "extractive")) -> dict:
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
        "precision_coverage": [] if retrieval_only else precision_coverage(records),
    }
