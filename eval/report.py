"""Turn an eval run folder (``summary.json`` + ``records.jsonl``) into ``report.md`` with PNG plots.

    write_report(out_dir) -> Path of report.md

The report has the overall table (system next to the BM25, extractive and closed-book
baselines, every value a mean with its bootstrap 95% CI), a per-type breakdown, the
precision-coverage curve, latency percentiles, and the worst failures of each question type
(question, gold, answer, retrieved). Plots (``per_type.png``, ``latency.png``,
``precision_coverage.png``) are drawn with matplotlib's Agg backend, so no display is needed; if
matplotlib is missing the report is written without them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from eval.metrics import normalize_title
from eval.questions import DECLINED
from eval.runner import RECORDS, SUMMARY, read_records
from eval.scoring import ANSWER_METRICS, RETRIEVAL_METRICS

log = logging.getLogger(__name__)

LABELS = {
    "recall@1": "Recall@1", "recall@5": "Recall@5", "recall@10": "Recall@10", "mrr": "MRR@10",
    "ndcg@10": "nDCG@10", "all_gold@5": "All-gold@5 (multi)",
    "citation_precision": "Citation precision (list: set precision)",
    "citation_recall": "Citation recall (list: set recall)", "cites_gold": "Cites gold",
    "fact_coverage": "Fact coverage (answer as shown)", "fact_coverage_text": "Fact coverage (answer text only)",
    "token_f1": "Token F1", "citation_support": "Citation support (independent judge)",
    "refusal_accuracy": "Refusal accuracy (unanswerable)", "false_refusal_rate": "False-refusal rate (answerable)",
    "handled": "Handled (off-topic / emergency / injection)", "language_match": "Answer in the question's language",
    "answer_sources_recall": "Gold in answer sources",
    "retrieval_ms": "Retrieval (ms)", "evidence_ms": "Evidence scoring (ms)", "ttft_s": "Time to first token (s)",
    "total_s": "Total (s)", "tokens_per_s": "Tokens/s", "prompt_tokens": "Prompt tokens",
}
KEY_RETRIEVAL = ("recall@5", "mrr", "ndcg@10")
KEY_ANSWER = ("cites_gold", "fact_coverage", "false_refusal_rate", "refusal_accuracy")
MAX_EXAMPLES = 3


def fmt_ci(m: Mapping | None, digits: int = 3) -> str:
    """``0.812 [0.75, 0.87]`` (or ``-`` when undefined)."""
    if not m or m.get("mean") is None:
        return "-"
    return f"{m['mean']:.{digits}f} [{m['low']:.{min(digits, 2)}f}, {m['high']:.{min(digits, 2)}f}]"


def _fmt_num(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _short(text: str | None, n: int = 300) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 3] + "..."


# -- plots --------------------------------------------------------------------------------
def _plots(out: Path, summary: dict, records: list[dict]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: report without plots (pip install matplotlib)")
        return []
    made = []
    by_type = summary.get("by_type", {})
    metrics = list(KEY_RETRIEVAL) + ([] if summary.get("retrieval_only") else list(KEY_ANSWER))
    types = list(by_type)
    if types:
        fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(types) + 2), 4.5))
        width = 0.8 / len(metrics)
        for i, m in enumerate(metrics):
            means, errs = [], [[], []]
            for t in types:
                v = by_type[t]["system"].get(m) or {}
                mean = v.get("mean")
                means.append(mean if mean is not None else 0.0)
                errs[0].append(0.0 if mean is None else mean - v["low"])
                errs[1].append(0.0 if mean is None else v["high"] - mean)
            xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(types))]
            ax.bar(xs, means, width, yerr=errs, capsize=2, label=LABELS.get(m, m))
        ax.set_xticks(range(len(types)))
        ax.set_xticklabels([f"{t}\n(n={summary['type_counts'].get(t, 0)})" for t in types], fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("mean (95% CI)")
        ax.set_title("Key metrics by question type")
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.18))
        fig.tight_layout()
        fig.savefig(out / "per_type.png", dpi=110)
        plt.close(fig)
        made.append("per_type.png")

    ok = [r for r in records if not r.get("error")]
    series = [("retrieval_ms", "Retrieval latency (ms)", [r.get("timings", {}).get("retrieval_ms") for r in ok])]
    if not summary.get("retrieval_only"):
        series.append(("ttft_s", "Time to first token (s)", [r.get("timings", {}).get("ttft_s") for r in ok]))
        series.append(("total_s", "Total answer time (s)", [r.get("timings", {}).get("total_s") for r in ok]))
    series = [(k, label, [v for v in vals if v is not None]) for k, label, vals in series]
    series = [s for s in series if s[2]]
    if series:
        fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.5), squeeze=False)
        for ax, (key, label, vals) in zip(axes[0], series):
            ax.hist(vals, bins=min(30, max(5, len(vals) // 3)), color="tab:blue", alpha=0.8)
            lat = summary["overall"]["latency"].get(key, {})
            for p, style in (("p50", "--"), ("p95", ":")):
                if lat.get(p) is not None:
                    ax.axvline(lat[p], color="k", linestyle=style, label=f"{p} = {lat[p]:.3g}")
            ax.set_title(label)
            ax.set_ylabel("questions")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        made.append("latency.png")
    curve = summary.get("precision_coverage") or []
    if curve:
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([p["coverage"] for p in curve], [p["precision"] for p in curve], marker=".", markersize=3)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("coverage (share of questions answered)")
        ax.set_ylabel("precision (answers citing a gold paper)")
        ax.set_title("Precision vs coverage, by evidence score")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "precision_coverage.png", dpi=110)
        plt.close(fig)
        made.append("precision_coverage.png")
    return made


# -- failures -----------------------------------------------------------------------------
def failure_score(rec: Mapping) -> float:
    """Higher is worse. Answer quality when answered, else retrieval rank."""
    m = rec.get("metrics") or {}
    if rec.get("error"):
        return 10.0
    if "answer" in rec:
        if rec["type"] in DECLINED:
            return 0.0 if rec.get("refused") and not rec.get("citations") else 2.0 + (1.0 if rec.get("citations") else 0.0)
        score = 1.0 - (m.get("fact_coverage") or 0.0)
        score += 1.0 - (m.get("cites_gold") or 0.0)
        score += 1.0 if rec.get("refused") else 0.0
        score += 0.5 * (1.0 - (m.get("mrr") or 0.0))
        return score
    if rec["type"] == "unanswerable":
        return 0.0
    return (1.0 - (m.get("recall@10") or 0.0)) + (1.0 - (m.get("mrr") or 0.0))


def _is_failure(rec: Mapping) -> bool:
    if rec.get("error"):
        return True
    m = rec.get("metrics") or {}
    if "answer" in rec:
        if rec["type"] in DECLINED:
            return not rec.get("refused") or m.get("handled") == 0.0
        return bool(rec.get("refused")) or (m.get("fact_coverage") or 0.0) < 0.5 or not m.get("cites_gold")
    if rec["type"] in DECLINED:
        return False
    return (m.get("recall@5") or 0.0) < 1.0


def _retrieved_list(titles: Sequence[str], gold: Sequence[str], n: int = 5) -> str:
    g = {normalize_title(t) for t in gold}
    return "; ".join(f"{i}. {'**' if normalize_title(t) in g else ''}{_short(t, 90)}{'**' if normalize_title(t) in g else ''}"
                     for i, t in enumerate(titles[:n], 1)) or "(nothing)"


def _failures_section(records: list[dict], types: Sequence[str]) -> list[str]:
    lines = ["## Worst failures by type", "",
             "Up to 3 per type, worst first (answered runs: missing facts, no gold citation, refusal; "
             "retrieval-only: gold ranked low). Gold titles among the retrieved are in **bold**.", ""]
    for t in types:
        recs = [r for r in records if r["type"] == t and _is_failure(r)]
        recs.sort(key=failure_score, reverse=True)
        n_type = sum(r["type"] == t for r in records)
        lines.append(f"### {t} ({len(recs)} of {n_type} failing)")
        lines.append("")
        if not recs:
            lines += ["No failures.", ""]
            continue
        for r in recs[:MAX_EXAMPLES]:
            q = " / ".join(r["turns"]) if r.get("turns") else r.get("question", "")
            lines.append(f"- **{r['id']}**: {_short(q, 400)}")
            lines.append(f"  - gold: {'; '.join(r.get('gold') or []) or '(none: declined)'}")
            if r.get("facts"):
                lines.append(f"  - facts: {'; '.join(r['facts'])}")
            if r.get("error"):
                lines.append(f"  - error: `{_short(r['error'], 300)}`")
            if "answer" in r:
                m = r.get("metrics") or {}
                lines.append(f"  - answer ({r.get('kind', '-')}{', refused' if r.get('refused') else ''}): {_short(r['answer'], 400)}")
                if r.get("standalone_question") and r.get("turns"):
                    lines.append(f"  - standalone question: {_short(r['standalone_question'], 300)}")
                lines.append(f"  - cited: {'; '.join(r.get('citations') or []) or '(none)'}; "
                             f"fact coverage {_fmt_num(m.get('fact_coverage'), 2)}")
            lines.append(f"  - retrieved (hybrid): {_retrieved_list(r.get('retrieved') or [], r.get('gold') or [])}")
            if r.get("retrieved_bm25") is not None:
                lines.append(f"  - retrieved (BM25): {_retrieved_list(r['retrieved_bm25'], r.get('gold') or [])}")
        lines.append("")
    return lines


# -- report -------------------------------------------------------------------------------
def render_report(summary: dict, records: list[dict], plots: Sequence[str] = ()) -> str:
    overall = summary["overall"]
    answered = not summary.get("retrieval_only")
    types = list(summary.get("by_type", {}))
    models = summary.get("models") or {}
    lines = ["# Evaluation report", ""]
    meta = [
        ("questions", f"{summary.get('questions_file') or '-'} ({summary['n_questions']} questions, "
                      f"{summary['n_errors']} errors)"),
        ("mode", "retrieval only" if not answered else "retrieval + answers"),
        ("config hash", summary.get("config_hash", "-")),
        ("embedding model", models.get("embedding") or "-"),
        ("generation model", models.get("generation") or "-"),
        ("command", f"`{summary.get('command', '-')}`"),
        ("created", summary.get("created", "-")),
        ("machine", ", ".join(f"{k}={v}" for k, v in (summary.get("machine") or {}).items() if v is not None)),
    ]
    lines += [f"- **{k}**: {v}" for k, v in meta]
    lines += ["", "Values are means with bootstrap 95% confidence intervals `[low, high]`; "
                  "`n` is the number of questions where a metric is defined.", ""]

    # overall, system vs baselines
    baselines = [(b, label) for b, label in (("extractive", "Extractive (no LLM)"), ("bm25", "BM25 only"),
                                              ("closed_book", "Closed book")) if b in overall]
    cols = ["Metric", "System"] + [label for _, label in baselines] + ["n"]
    rows = []
    names = list(RETRIEVAL_METRICS) + (list(ANSWER_METRICS) if answered else [])
    for m in names:
        sys_v = overall["system"].get(m)
        rows.append([LABELS.get(m, m), fmt_ci(sys_v)] + [fmt_ci(overall[b].get(m)) for b, _ in baselines]
                    + [str((sys_v or {}).get("n", 0))])
    lines += ["## Overall: system and baselines", "", _table(cols, rows), ""]

    # per-type
    per_metrics = ["recall@5", "mrr"] + (["cites_gold", "citation_precision", "citation_recall", "fact_coverage",
                                          "fact_coverage_text", "citation_support"] if answered else ["ndcg@10", "recall@10"])
    rows = []
    for t in types:
        g = summary["by_type"][t]
        row = [t, str(g["n"])] + [fmt_ci(g["system"].get(m), 2) for m in per_metrics]
        if answered:
            if t in DECLINED:
                key, word = ("refusal_accuracy", "refused ") if t == "unanswerable" else ("handled", "handled ")
            else:
                key, word = "false_refusal_rate", "false "
            row.append(word + fmt_ci(g["system"].get(key), 2))
            row.append(fmt_ci(g.get("extractive", {}).get("fact_coverage"), 2))
        rows.append(row)
    header = ["Type", "n"] + [LABELS.get(m, m) for m in per_metrics] + (["Refusal", "Extractive fact coverage"] if answered else [])
    lines += ["## By question type", "", _table(header, rows), ""]
    if "bm25" in overall:
        rows = [[t, fmt_ci(summary["by_type"][t]["system"].get("recall@5"), 2),
                 fmt_ci(summary["by_type"][t]["bm25"].get("recall@5"), 2),
                 fmt_ci(summary["by_type"][t]["system"].get("mrr"), 2),
                 fmt_ci(summary["by_type"][t]["bm25"].get("mrr"), 2)] for t in types if t not in DECLINED]
        lines += ["### Hybrid vs BM25 by type", "",
                  _table(["Type", "Recall@5 hybrid", "Recall@5 BM25", "MRR hybrid", "MRR BM25"], rows), ""]
    curve = summary.get("precision_coverage") or []
    if curve:
        picks = [p for i, p in enumerate(curve) if i % max(1, len(curve) // 8) == 0 or i == len(curve) - 1]
        lines += ["## Precision vs coverage", "",
                  "Answers ordered by the system's evidence score; for each cut-off, the share of questions answered "
                  "and the share of those answers citing a gold paper (answering an unanswerable question counts as wrong).", "",
                  _table(["Evidence score >=", "Coverage", "Precision"],
                         [[f"{p['threshold']:.3f}", f"{p['coverage']:.3f}", f"{p['precision']:.3f}"] for p in picks]), ""]
        if "precision_coverage.png" in plots:
            lines += ["![Precision vs coverage](precision_coverage.png)", ""]
    if "per_type.png" in plots:
        lines += ["![Key metrics by question type](per_type.png)", ""]

    # latency
    rows = []
    for label, lat in [("system", overall["latency"])]:
        for key, v in lat.items():
            if not v or not v.get("n"):
                continue
            rows.append([label, LABELS.get(key, key), str(v["n"]), _fmt_num(v["mean"]),
                         f"{_fmt_num(v['p50'])} [{_fmt_num(v.get('p50_low'))}, {_fmt_num(v.get('p50_high'))}]",
                         f"{_fmt_num(v['p95'])} [{_fmt_num(v.get('p95_low'))}, {_fmt_num(v.get('p95_high'))}]",
                         _fmt_num(v["max"])])
    lines += ["## Latency", "", _table(["Run", "Measure", "n", "mean", "p50 [95% CI]", "p95 [95% CI]", "max"], rows), ""]
    if "latency.png" in plots:
        lines += ["![Latency histograms](latency.png)", ""]

    lines += _failures_section(records, types)
    errors = [r for r in records if r.get("error")]
    if errors:
        lines += ["## Errors", ""] + [f"- {r['id']}: `{_short(r['error'], 300)}`" for r in errors] + [""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(out_dir: str | Path) -> Path:
    """Write ``report.md`` (and the PNG plots) into ``out_dir`` from its summary and records."""
    out = Path(out_dir)
    summary = json.loads((out / SUMMARY).read_text())
    records = read_records(out / RECORDS)
    records = [r for r in records if r.get("config_hash") == summary.get("config_hash")]
    if summary.get("question_ids") is not None:
        wanted = set(summary["question_ids"])
        records = [r for r in records if r["id"] in wanted]
    order = {t: i for i, t in enumerate(summary.get("by_type", {}))}
    records.sort(key=lambda r: (order.get(r["type"], 99), r["id"]))
    plots = _plots(out, summary, records)
    path = out / "report.md"
    path.write_text(render_report(summary, records, plots))
    return path
