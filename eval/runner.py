"""Run a question set through an App and write per-question records plus a summary.

    run_eval(app, questions, out_dir) -> summary dict

Each question is evaluated by ``eval.scoring.eval_question`` (retrieval, the answer, the BM25,
extractive and closed-book baselines). ``out_dir/records.jsonl`` gets one line per question as
soon as it is done (flushed), so a run can be interrupted and resumed: questions already recorded
with the same configuration hash and models are skipped. A question that raises is recorded with
its ``error`` and the run goes on; errored questions are retried on the next run.
``out_dir/summary.json`` holds every metric's mean with a bootstrap 95% CI, overall and per
question type, for the system and the baselines, latency percentiles, the precision-coverage
curve (``eval.summary``), machine information and the command.
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

from eval.scoring import eval_question
from eval.summary import summarize_records

log = logging.getLogger(__name__)

RECORDS = "records.jsonl"
SUMMARY = "summary.json"
BASELINES = ("bm25", "closed_book", "extractive")


def model_ids(app, answering: bool) -> dict:
    return {"embedding": app.embedder_id(), "generation": app.generator_id() if answering else None}


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
    return all(b in rec for b in baselines if b != "bm25")


def run_eval(app, questions: Iterable[Mapping], out_dir: str | Path, limit: int | None = None,
             retrieval_only: bool = False, baselines: Sequence[str] = BASELINES,
             progress: bool = True, command: str | None = None, questions_file: str | None = None) -> dict:
    """Evaluate ``questions`` with ``app``; write ``records.jsonl`` and ``summary.json`` in ``out_dir``.

    Returns the summary. ``limit`` keeps the first N questions. ``baselines``: any of
    ``"bm25"``, ``"closed_book"``, ``"extractive"`` (the latter two only when answering).
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
    models = model_ids(app, answering=not retrieval_only)
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
            rec.update(config_hash=config_hash, models=model_ids(app, answering=not retrieval_only),
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
        models=model_ids(app, answering=not retrieval_only),
        settings=app.settings.public_dump(),
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
