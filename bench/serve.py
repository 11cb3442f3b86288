"""Serving benchmark: N concurrent sessions against a real server (UI + API), real models.

Starts the server in-process (cpu preset, temporary data dir unless --data-dir) with
``serving.concurrency`` slots (= llama.cpp parallel slots), then for each N in --levels runs N
sessions at once, each asking a different answerable dev question, through the OpenAI endpoint
(``/v1/chat/completions``, stream) and through the Gradio API (``/ask_stream``). Per request:

    sources_s       submit -> the retrieval results (first ``rag.sources`` chunk / event)
    first_text_s    submit -> the first answer text (checked sentences, so later than the model's first token)
    answer_s        submit -> the final cited answer
    tokens          completion tokens (llama.cpp's count)

Per level: errors, p50/p95 of each, aggregate completion tokens/s, and the throughput ratio
(answers per minute) against N=1 on the same endpoint (``--serial-rounds`` requests one after another).
Then cancel: on the idle server a streaming client disconnects at its first text chunk (the model is
writing) and at its sources chunk (the model is still reading its prompt, which llama.cpp finishes
before it can stop), twice each; the time until its slot is free. Prints tables and writes
bench/results/serve.json.

    python bench/serve.py                                   # N = 1, 4, 8, 16; concurrency from the config
    python bench/serve.py --concurrency 1 --levels 1 4      # serial baseline
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
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

from eval.metrics.latency import percentile  # noqa: E402


def dev_questions() -> list[str]:
    qs = [json.loads(line) for line in open(ROOT / "eval" / "questions" / "dev.jsonl", encoding="utf-8")]
    return [q["question"] for q in qs if q["type"] in ("single", "numeric", "title_lookup")]


def openai_session(url: str, question: str, barrier: threading.Barrier, out: dict) -> None:
    import httpx

    rec = {"question": question, "sources_s": None, "first_text_s": None, "answer_s": None, "tokens": 0, "error": None,
           "queued": False}
    try:
        barrier.wait()
        t0 = time.perf_counter()
        body = {"model": "paper-rag", "stream": True, "messages": [{"role": "user", "content": question}]}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=900) as r:
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.read()[:200]!r}")
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(chunk["error"]["message"])
                rag = chunk.get("rag") or {}
                now = time.perf_counter() - t0
                rec["queued"] = rec["queued"] or "queue_position" in rag
                if "sources" in rag and rec["sources_s"] is None:
                    rec["sources_s"] = now
                if chunk["choices"][0]["delta"].get("content") and rec["first_text_s"] is None:
                    rec["first_text_s"] = now
                if chunk["choices"][0].get("finish_reason") == "stop":
                    rec["answer_s"] = now
                    rec["tokens"] = rag.get("timings", {}).get("completion_tokens", 0)
                    rec["kind"] = rag.get("kind")
    except Exception as e:  # noqa: BLE001 - counted as an error
        rec["error"] = f"{type(e).__name__}: {e}"
    out[question] = rec


def gradio_session(url: str, question: str, barrier: threading.Barrier, out: dict) -> None:
    from gradio_client import Client

    rec = {"question": question, "sources_s": None, "first_text_s": None, "answer_s": None, "tokens": 0, "error": None}
    try:
        client = Client(url, verbose=False)
        barrier.wait()
        t0 = time.perf_counter()
        job = client.submit(question, api_name="/ask_stream")
        for update in job:
            now = time.perf_counter() - t0
            if update.get("sources") and rec["sources_s"] is None:
                rec["sources_s"] = now
            if update.get("text") and rec["first_text_s"] is None:
                rec["first_text_s"] = now
        final = job.result()
        rec["answer_s"] = time.perf_counter() - t0
        rec["tokens"] = final.get("timings", {}).get("completion_tokens", 0)
        rec["kind"] = final.get("kind")
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"
    out[question] = rec


def run_level(url: str, questions: list[str], session, rounds: int = 1) -> dict:
    """``len(questions) // rounds`` concurrent sessions, ``rounds`` times one after another (N=1: a serial run)."""
    out: dict = {}
    n = len(questions) // rounds
    t0 = time.perf_counter()
    for r in range(rounds):
        batch = questions[r * n:(r + 1) * n]
        barrier = threading.Barrier(len(batch))
        threads = [threading.Thread(target=session, args=(url, q, barrier, out)) for q in batch]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    recs = list(out.values())
    ok = [r for r in recs if not r["error"] and r["answer_s"] is not None]
    stat = lambda k, q: percentile([r[k] for r in ok if r[k] is not None], q)  # noqa: E731
    return {
        "sessions": n, "rounds": rounds, "errors": len(recs) - len(ok), "wall_s": round(wall, 2),
        **{f"{k}_p{q}": (round(v, 2) if (v := stat(k, q)) is not None else None)
           for k in ("sources_s", "first_text_s", "answer_s") for q in (50, 95)},
        # requests that got a slot at once (openai endpoint: no queue_position event); the target is <= 1 s
        "sources_s_not_queued_max": max((r["sources_s"] for r in ok if not r.get("queued", True) and r["sources_s"] is not None),
                                        default=None),
        "not_queued": sum(1 for r in ok if r.get("queued") is False),
        "answers_per_min": round(60 * len(ok) / wall, 2), "tokens_per_s": round(sum(r["tokens"] for r in ok) / wall, 2),
        "requests": recs,
    }


def measure_cancel(url: str, question: str, at: str) -> dict:
    """Stream one answer on an idle server, drop the connection at the first ``at`` chunk ("sources":
    the model is reading its prompt; "text": it is writing), and time until no answer is running."""
    import httpx

    def running() -> int:
        return httpx.get(f"{url}/healthz").json()["queue"]["running"]

    t = time.perf_counter()
    while running() and time.perf_counter() - t < 120:  # earlier levels' answers must be done first
        time.sleep(0.05)
    body = {"model": "paper-rag", "stream": True, "messages": [{"role": "user", "content": question}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=900) as r:
        for line in r.iter_lines():
            compact = line.replace(": ", ":")
            if (at == "sources" and '"sources"' in line) or (at == "text" and '"content":"' in compact
                                                               and '"content":""' not in compact):
                break
    t = time.perf_counter()
    while running() and time.perf_counter() - t < 30:
        time.sleep(0.01)
    return {"at": at, "slot_free_after_disconnect_s": round(time.perf_counter() - t, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8, 16], help="concurrent sessions per run")
    ap.add_argument("--endpoints", nargs="+", default=["openai", "gradio"], choices=["openai", "gradio"])
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", default=None, help="index folder to reuse (default: a fresh temporary one)")
    ap.add_argument("--concurrency", type=int, default=None, help="answers at once (default: serving.concurrency)")
    ap.add_argument("--max-waiting", type=int, default=32)
    ap.add_argument("--serial-rounds", type=int, default=4, help="N=1 runs this many requests one after another")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import rag
    from rag.cli_options import parse_overrides
    from rag.testing import free_port
    from serving.cmd_serve import prepare, serving_settings
    from serving.server import Running

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="rag-bench-serve-")
    app = rag.load(args.config, data_dir=data_dir, **parse_overrides(args.overrides))
    port = free_port()
    settings = serving_settings(app, port=port, concurrency=args.concurrency).model_copy(update={"max_waiting": args.max_waiting})
    app.settings.generation.parallel = settings.concurrency
    t = time.perf_counter()
    prepare(app)
    setup_s = time.perf_counter() - t
    questions = dev_questions()
    results: dict = {"levels": {}, "cancel": None}
    used = 0
    with Running(app, settings) as running:
        for endpoint in args.endpoints:
            session = openai_session if endpoint == "openai" else gradio_session
            for n in args.levels:
                rounds = args.serial_rounds if n == 1 else 1
                qs = [questions[(used + i) % len(questions)] for i in range(n * rounds)]
                used += n * rounds
                print(f"{endpoint}: {n} concurrent session(s) x {rounds}...", file=sys.stderr, flush=True)
                r = run_level(running.url, qs, session, rounds)
                results["levels"].setdefault(endpoint, []).append(r)
                print(f"  errors {r['errors']}, sources p50 {r['sources_s_p50']} (not queued: max {r['sources_s_not_queued_max']} "
                      f"over {r['not_queued']}), first text p50 {r['first_text_s_p50']}, "
                      f"answer p50 {r['answer_s_p50']} p95 {r['answer_s_p95']}, {r['answers_per_min']} answers/min, "
                      f"{r['tokens_per_s']} tok/s", file=sys.stderr, flush=True)
                write_result(args, app, settings, setup_s, results)
        results["cancel"] = [measure_cancel(running.url, questions[i], at) for i, at in enumerate(["text", "sources"] * 2)]
    app.close()
    for endpoint, levels in results["levels"].items():
        base = next((r["answers_per_min"] for r in levels if r["sessions"] == 1), None)
        print(f"\n{endpoint} (concurrency {settings.concurrency})")
        print(f"{'N':>3} {'err':>4} {'sources p50':>11} {'text p50':>9} {'answer p50':>10} {'p95':>7} {'ans/min':>8} {'tok/s':>6} {'vs N=1':>6}")
        for r in levels:
            ratio = f"{r['answers_per_min'] / base:.2f}" if base else "-"
            r["throughput_vs_serial"] = float(ratio) if base else None
            fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
            print(f"{r['sessions']:>3} {r['errors']:>4} {fmt(r['sources_s_p50']):>11} {fmt(r['first_text_s_p50']):>9} "
                  f"{fmt(r['answer_s_p50']):>10} {fmt(r['answer_s_p95']):>7} {r['answers_per_min']:>8} {r['tokens_per_s']:>6} {ratio:>6}")
    print(f"\ncancel: {results['cancel']}")
    write_result(args, app, settings, setup_s, results)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all(r["errors"] == 0 for lv in results["levels"].values() for r in lv) else 1


def write_result(args, app, settings, setup_s: float, results: dict) -> None:
    out = {
        "benchmark": "serve", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python", *sys.argv]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": list(os.getloadavg())},
        "config": args.config, "overrides": args.overrides, "generation_model": app.settings.generation.model,
        "server_concurrency": settings.concurrency, "max_waiting": settings.max_waiting, "setup_s": round(setup_s, 1),
        "notes": "times are from submit, so they include waiting in line; first_text_s is the first checked sentence",
        **results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
