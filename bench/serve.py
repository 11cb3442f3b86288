"""Serving benchmark: N concurrent gradio_client sessions against the real UI server.

Starts the server in-process (real models, cpu preset, temporary data dir unless --data-dir),
then for each N in --levels runs N sessions at once, each asking a different answerable dev
question through the streaming endpoint /ask_stream, and measures per request:

    first_token_s   submit -> first streamed answer text (includes queueing behind other sessions)
    answer_s        submit -> the final cited answer

Prints a table and writes bench/results/serve.json.

    python bench/serve.py                       # N = 1, 4, 8
    python bench/serve.py --levels 1 2 --data-dir rag_data   # reuse an index
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    pos = (len(xs) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def dev_questions() -> list[str]:
    qs = [json.loads(line) for line in open(ROOT / "eval" / "questions" / "dev.jsonl", encoding="utf-8")]
    return [q["question"] for q in qs if q.get("type") != "unanswerable"]


def one_session(url: str, question: str, barrier: threading.Barrier, out: dict) -> None:
    from gradio_client import Client

    rec = {"question": question, "first_token_s": None, "answer_s": None, "error": None}
    try:
        client = Client(url, verbose=False)
        barrier.wait()
        t0 = time.perf_counter()
        job = client.submit(question, api_name="/ask_stream")
        final = None
        for item in job:  # one item per streamed update
            if rec["first_token_s"] is None and (item.get("text") or item.get("done")):
                rec["first_token_s"] = time.perf_counter() - t0
            if item.get("done"):
                final = item
        final = final or job.result()
        rec["answer_s"] = time.perf_counter() - t0
        if not final or not final.get("done") or final.get("question") != question:
            raise RuntimeError(f"wrong or missing answer: {str(final)[:200]}")
        rec.update(refused=final["refused"], citations=[c["title"] for c in final["citations"]],
                   server_ttft_s=final["timings"].get("ttft_s"), server_total_s=final["timings"].get("total_s"),
                   tokens_per_s=final["timings"].get("tokens_per_s"))
    except Exception as e:  # noqa: BLE001 - counted as an error
        rec["error"] = f"{type(e).__name__}: {e}"[:300]
    out[question] = rec


def run_level(url: str, questions: list[str]) -> dict:
    n = len(questions)
    barrier, out, threads = threading.Barrier(n), {}, []
    t0 = time.perf_counter()
    for q in questions:
        t = threading.Thread(target=one_session, args=(url, q, barrier, out), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=3600)
    wall = time.perf_counter() - t0
    recs = [out.get(q, {"question": q, "error": "no result (timeout)"}) for q in questions]
    ok = [r for r in recs if not r.get("error")]
    ft = [r["first_token_s"] for r in ok if r["first_token_s"] is not None]
    full = [r["answer_s"] for r in ok]
    return {
        "sessions": n, "errors": n - len(ok), "wall_s": wall,
        "first_token_p50_s": percentile(ft, 50), "first_token_p95_s": percentile(ft, 95),
        "answer_p50_s": percentile(full, 50), "answer_p95_s": percentile(full, 95),
        "answers_per_min": 60 * len(ok) / wall if wall else None,
        "refused": sum(1 for r in ok if r.get("refused")),
        "requests": recs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8], help="concurrent sessions per run")
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", default=None, help="index folder to reuse (default: a fresh temporary one)")
    ap.add_argument("--concurrency", type=int, default=None, help="server answers at once (default: serving.concurrency)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import rag
    from serving.cli import parse_overrides
    from serving.serve_cmd import prepare, serving_settings
    from serving.ui import launch

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="rag-bench-serve-")
    app = rag.load(args.config, data_dir=data_dir, **parse_overrides(args.overrides))
    t = time.perf_counter()
    prepare(app)
    setup_s = time.perf_counter() - t
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = serving_settings(app, port=port, concurrency=args.concurrency)
    demo = launch(app, settings, prevent_thread_lock=True, quiet=True)
    url = demo.local_url
    questions = dev_questions()
    levels, used = [], 0
    try:
        for n in args.levels:
            qs = [questions[(used + i) % len(questions)] for i in range(n)]
            used += n
            print(f"running {n} concurrent session(s)...", file=sys.stderr, flush=True)
            levels.append(run_level(url, qs))
            r = levels[-1]
            print(f"N={n}: errors {r['errors']}, first token p50 {r['first_token_p50_s']}, answer p50 {r['answer_p50_s']}, "
                  f"wall {r['wall_s']:.1f} s", file=sys.stderr, flush=True)
            write_result(args, app, settings, setup_s, levels)  # partial results survive an interrupted run
    finally:
        demo.close()
        app.close()

    header = f"{'N':>3} {'errors':>6} {'1st token p50':>13} {'p95':>7} {'answer p50':>10} {'p95':>7} {'wall s':>7} {'ans/min':>7}"
    print(header)
    print("-" * len(header))
    fmt = lambda x: f"{x:.1f}" if isinstance(x, (int, float)) else "-"  # noqa: E731
    for r in levels:
        print(f"{r['sessions']:>3} {r['errors']:>6} {fmt(r['first_token_p50_s']):>13} {fmt(r['first_token_p95_s']):>7} "
              f"{fmt(r['answer_p50_s']):>10} {fmt(r['answer_p95_s']):>7} {fmt(r['wall_s']):>7} {fmt(r['answers_per_min']):>7}")
    write_result(args, app, settings, setup_s, levels)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all(r["errors"] == 0 for r in levels) else 1


def write_result(args, app, settings, setup_s: float, levels: list[dict]) -> None:
    result = {
        "benchmark": "serve",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "config": args.config, "overrides": args.overrides,
        "generation_model": app.settings.generation.model, "embedding_model": app.settings.embedding.model,
        "server_concurrency": settings.concurrency, "setup_s": setup_s,
        "endpoint": "/ask_stream (gradio_client.submit, one Client per session)",
        "notes": "first_token_s and answer_s are measured from submit, so they include queueing: the server "
                 "generates serving.concurrency answers at a time and the others wait.",
        "levels_requested": args.levels,
        "levels": levels,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
