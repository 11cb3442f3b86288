"""Benchmark retrieval: quality on the dev set, a chunking/fusion sweep, and latency.

Parts (each writes its own JSON under bench/results/, with the command line and machine info):

1. Quality (default): index data/sample into a fresh edge store with the real default embedder, then
   for modes sparse (BM25 only), dense and hybrid on that same index: recall@1/5/10, MRR@10,
   all-gold@5 on ``multi`` and recall@5 per question type (unanswerable questions excluded).
   Metrics at <=5 come from a k=5 search (retrieval.k, what the LLM is given); recall@10 and MRR@10
   from a k=10 search (the Retriever raises limit/prefetch with k, so the two can rank differently).
3. Latency (default): p50/p95 of ``embed_ms`` and ``search_ms`` as ``Retriever.search`` reports them,
   over every dev question x ``--repeats`` per mode, plus the single Qdrant ``store.query`` call timed
   alone and the BM25 query encoding alone (``search_ms`` = BM25 query encoding + the store query:
   for hybrid, the dense and BM25 searches and the RRF fusion in ``rag.search.store.ranking``); ingest papers/s with embedding time apart.
   -> bench/results/retrieval.json
2. ``--sweep``: chunk_size in {128, 256, 512} (one index each), and per index the hybrid fusion grid
   rrf_k x prefetch x (dense_weight, sparse_weight); query vectors are embedded once and cached, so
   the grid is only Qdrant queries. Best = highest recall@5, then MRR@10, then recall@10; its
   difference from the defaults gets a paired bootstrap CI. Configs are not changed.
   -> bench/results/retrieval_sweep.json

The store at 100k and 1M chunks (synthetic arXiv data): ``bench/ingest_scale.py``.

Example:
    .venv/bin/python bench/retrieval.py                          # parts 1 and 3
    .venv/bin/python bench/retrieval.py --sweep                  # part 2
"""

from __future__ import annotations

import argparse
import json
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from bench.common import RESULTS, CpuMonitor, _cores, machine_info, md_table, wait_quiet, write_json  # noqa: E402
from eval.metrics import all_gold_at_k, bootstrap_ci, recall_at_k, reciprocal_rank, summarize  # noqa: E402

TYPES = ["single", "numeric", "multi", "title_lookup", "semantic"]
MODES = ["sparse", "dense", "hybrid"]

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
    from rag.search.retrieval import check_query
    from rag.search.store import QuerySpec, sparse_query

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
    import rag
    from rag.search.retrieval import Retriever

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
            app = rag.App(app.settings, embedder=embedder, store=app.store)
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


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", action="store_true", help="part 2: chunk_size and fusion sweep (instead of parts 1+3)")
    ap.add_argument("--default", action="store_true", help="also run parts 1+3 when --sweep is given")
    ap.add_argument("--config", default=None, help="preset or YAML for the index/retrieval settings (default: built-in defaults)")
    ap.add_argument("--questions", type=Path, default=ROOT / "eval/questions/dev.jsonl")
    ap.add_argument("--corpus", type=Path, default=ROOT / "data/sample")
    ap.add_argument("--repeats", type=int, default=5, help="latency repeats over all questions")
    ap.add_argument("--chunk-sizes", default="128,256,512")
    ap.add_argument("--rrf-ks", default="10,30,60")
    ap.add_argument("--prefetches", default="20,50")
    ap.add_argument("--weights", default="1:1,2:1,1:2", help="dense:sparse RRF weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wait-quiet", type=float, default=60, help="before each part, wait up to this many s for other processes to go idle")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder for the indexes (default: a new temp dir, removed after)")
    args = ap.parse_args(argv)
    if args.sweep and "test" in args.questions.name:
        ap.error("tune on the dev set only: --sweep with a test question file is refused")

    run_parts = ([] if args.sweep and not args.default else ["default"]) + (["sweep"] if args.sweep else [])
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
    finally:
        if args.tmp is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
