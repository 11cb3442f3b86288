"""Ingest at scale on synthetic arXiv-format data: dry-run memory, store cost, kill -9 recovery.

The snapshot generator writes arXiv metadata lines (``id``, ``title``, ``abstract``, ``authors``,
``categories``, ``versions``, ``update_date``, ...) with titles and abstracts drawn from the bundled
corpus: word frequencies of its vocabulary, abstract lengths of its real abstracts, sentences of
8-30 words (about 1.65 chunks of 256 tokens per paper; the store part sizes snapshots by a pilot). 1% of the records are a second version of an earlier paper
and ~0.3% are damaged (broken JSON, empty abstract, no title), as in a real snapshot.

Parts (``--parts``, default all three):

* ``dryrun``: ``rag ingest --dry-run --json SNAPSHOT`` in a fresh process per size of ``--dry-sizes``
  (records): wall time, records/s, peak RSS of that process (target: <= 1 GB at 1M, flat from 30k).
* ``store``: ``App.ingest`` of a snapshot sized for each of ``--chunks`` (chunks), in a fresh process,
  with ``--vectors random`` (default: deterministic random unit vectors per text, so the store's
  cost is measured apart from the embedding model's) or ``model`` (the real embedder). Then the
  HNSW build (``optimize``) timed alone, and 200 queries: dense and hybrid p50/p95 exact, HNSW with
  int8 quantization and HNSW on the original vectors; HNSW recall@10 vs exact; recall@1 of the
  chunk a query was made from; disk; peak RSS. Store settings: ``--config`` (default ``large``).
* ``kill``: ``kill -9`` during the upsert phase and during the HNSW build of an ingest of
  ``--kill-records`` records, then a re-run; checks that the index is complete (every paper
  written, points = chunks the state expects), duplicate-free (a sample of papers holds exactly its
  chunk ids) and indexed (no optimize left pending; HNSW over every point).

Results: ``bench/results/ingest_scale.json`` (``--out-dir``), with the command and machine.

Examples (the 2-core machine: run when it is otherwise idle)::

    .venv/bin/python bench/ingest_scale.py --parts dryrun --dry-sizes 30000,100000,300000,1000000
    .venv/bin/python bench/ingest_scale.py --parts store --chunks 100000,1000000
    .venv/bin/python bench/ingest_scale.py --parts kill --kill-records 60000
    .venv/bin/python bench/ingest_scale.py --dry-sizes 3000,10000 --chunks 5000 --kill-records 12000  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from bench.common import (  # noqa: E402
    RESULTS, CpuMonitor, indexed, machine_info, md_table, memory_mib, overlap, rss_mib, timed_queries, wait_quiet, write_json,
)
from bench.synthetic import RandomEmbedder, make_snapshot  # noqa: E402


def _py() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# The child records its own peak RSS (VmHWM: since its exec, unlike wait4's ru_maxrss, which on Linux
# also counts the pages the forked child shared with this process before exec).
WRAPPER = r"""
import atexit, runpy, sys
hwm_file, kind, target = sys.argv[1:4]
def _hwm():
    with open('/proc/self/status') as f, open(hwm_file, 'w') as out:
        out.write(next(ln for ln in f if ln.startswith('VmHWM')).split()[1])
atexit.register(_hwm)
sys.argv = [target, *sys.argv[4:]]
if kind == '-m':
    runpy.run_module(target, run_name='__main__', alter_sys=True)
else:
    exec(compile(target, '<child>', 'exec'), {'__name__': '__main__'})
"""


def run_child(args: list[str], env_extra: dict | None = None, on_line=None) -> dict:
    """Run ``python -m MODULE ...`` or ``python -c CODE ...`` (``args``); returns rc, wall seconds, the
    child's peak RSS in MiB (None if it was killed) and its stdout. ``on_line(line, popen)`` sees stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    fd, hwm = tempfile.mkstemp(prefix="rag-hwm-")
    os.close(fd)
    t0 = time.perf_counter()
    p = subprocess.Popen([_py(), "-c", WRAPPER, hwm, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    err_lines: list[str] = []

    def pump():
        for line in p.stderr:
            err_lines.append(line)
            if on_line:
                on_line(line, p)

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    out = p.stdout.read()
    p.wait()
    th.join(5)
    text = Path(hwm).read_text().strip()
    os.unlink(hwm)
    return {"rc": p.returncode, "wall_s": time.perf_counter() - t0, "peak_rss_mib": int(text) / 1024 if text else None,
            "stdout": out, "stderr_tail": "".join(err_lines[-20:])}


# -- part: dry run --------------------------------------------------------------------------------
def part_dryrun(sizes: list[int], work: Path, seed: int, out: dict, save) -> dict:
    for n in sizes:
        snap = work / f"dry{n}.json"
        gen = make_snapshot(snap, n, seed, queries=0)
        data = work / f"dry{n}-data"
        r = run_child(["-m", "serving.cli", "ingest", "--dry-run", "--json", str(snap), "--data-dir", str(data), "--config", "large"])
        if r["rc"] != 0:
            raise SystemExit(f"dry run failed at {n}: {r['stderr_tail']}")
        rep = json.loads(r["stdout"])
        out[str(n)] = {"records_written": n, "snapshot_mib": gen["bytes"] / 2**20, "wall_s": r["wall_s"], "records_per_s": n / r["wall_s"],
                       "peak_rss_mib": r["peak_rss_mib"], "papers": rep["papers"], "would_add": rep["added"],
                       "skipped": rep["skipped"], "expected_damaged": gen["damaged"], "second_versions": gen["second_versions"],
                       "left_behind": data.exists()}
        print(f"dry run {n:,} records: {r['wall_s']:.1f} s ({n / r['wall_s']:,.0f} records/s), peak RSS {r['peak_rss_mib']:.0f} MiB, "
              f"{rep['papers']:,} papers, skipped {rep['skipped']}", flush=True)
        snap.unlink()
        save()
    return out


# -- part: store ----------------------------------------------------------------------------------
STORE_CHILD = r"""
import json, sys, time, logging
sys.path.insert(0, sys.argv[1])
from bench.ingest_scale import store_child
store_child(*sys.argv[2:])
"""


def store_child(snap: str, data_dir: str, config: str, vectors: str, queries_file: str, out_file: str) -> None:
    import logging

    import rag
    from rag.ingest.chunking import chunk_paper
    from rag.ingest.corpus import Paper, normalize_text
    from rag.search.store import QuerySpec, sparse_query

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    emb = RandomEmbedder() if vectors == "random" else None
    res: dict = {"rss_mib": {"start": rss_mib()}, "memory_mib": {"start": memory_mib()}}
    app = rag.load(config, data_dir=data_dir, embedder=emb, **{"store.hnsw_threshold": 10**12})  # build timed apart below
    with CpuMonitor() as mon:
        rep = app.ingest([snap], progress=True)
    res["ingest"] = rep.to_dict()
    write_s = rep.seconds - rep.parse_seconds
    res.update(points=rep.points_total, write_s=write_s, chunks_per_s=rep.chunks_written / write_s, papers_per_s=rep.added / write_s,
               cpu_ingest=mon.result)
    res["rss_mib"]["after_ingest"] = rss_mib()
    res["memory_mib"]["after_ingest"] = memory_mib()
    store = app.store
    with CpuMonitor() as mon:
        t = time.perf_counter()
        store.optimize()
        res["optimize_s"] = time.perf_counter() - t
    res["cpu_optimize"] = mon.result
    res["rss_mib"]["after_optimize"] = rss_mib()
    res["memory_mib"]["after_optimize"] = memory_mib()
    info = store.info()
    res["indexed_vectors"], res["shard_info"] = indexed(info), info

    qrecs = [json.loads(line) for line in Path(queries_file).read_text().splitlines()]
    rng = np.random.default_rng(7)
    dense, sparse, src = [], [], []
    embedder = emb or app.embedder
    for q in qrecs:
        c0 = chunk_paper(Paper(normalize_text(q["title"]), normalize_text(q["abstract"]), metadata={"id": q["id"]}), app.settings.chunking)[0]
        v = np.asarray(embedder.embed_documents([c0.embed_text])[0], dtype=np.float32)
        v = v + 0.02 * rng.standard_normal(v.shape).astype(np.float32)
        dense.append((v / np.linalg.norm(v)).tolist())
        words = normalize_text(q["abstract"]).split()
        sparse.append(sparse_query(" ".join(rng.choice(words, size=min(8, len(words)), replace=False))))
        src.append(c0.point_id)
    kw = {"limit": 20, "prefetch": 50, "fields": []}
    specs = {
        "dense exact": [QuerySpec(dense=d, mode="dense", exact=True, **kw) for d in dense],
        "dense HNSW int8": [QuerySpec(dense=d, mode="dense", **kw) for d in dense],
        "dense HNSW float32": [QuerySpec(dense=d, mode="dense", use_quantization=False, **kw) for d in dense],
        "sparse": [QuerySpec(sparse=s, mode="sparse", **kw) for s in sparse],
        "hybrid exact": [QuerySpec(dense=d, sparse=s, exact=True, **kw) for d, s in zip(dense, sparse)],
        "hybrid HNSW int8": [QuerySpec(dense=d, sparse=s, **kw) for d, s in zip(dense, sparse)],
        "hybrid HNSW float32": [QuerySpec(dense=d, sparse=s, use_quantization=False, **kw) for d, s in zip(dense, sparse)],
    }
    lat, ids = {}, {}
    with CpuMonitor() as mon:
        for name, ss in specs.items():
            lat[name], ids[name] = timed_queries(store, ss)
    res["cpu_queries"] = mon.result
    res["latency_ms"] = lat
    res["recall"] = {
        "dense_hnsw_int8@10_vs_exact": overlap(ids["dense HNSW int8"], ids["dense exact"], 10),
        "dense_hnsw_float32@10_vs_exact": overlap(ids["dense HNSW float32"], ids["dense exact"], 10),
        "hybrid_hnsw_int8@10_vs_exact": overlap(ids["hybrid HNSW int8"], ids["hybrid exact"], 10),
        "hybrid_hnsw_float32@10_vs_exact": overlap(ids["hybrid HNSW float32"], ids["hybrid exact"], 10),
        "source_chunk@1 dense exact": float(np.mean([r[:1] == [s] for r, s in zip(ids["dense exact"], src)])),
        "source_chunk@1 dense HNSW int8": float(np.mean([r[:1] == [s] for r, s in zip(ids["dense HNSW int8"], src)])),
        "queries": len(src),
    }
    res["rss_mib"]["after_queries"] = rss_mib()
    res["memory_mib"]["after_queries"] = memory_mib()
    app.close()
    Path(out_file).write_text(json.dumps(res, default=str))


def chunks_per_record(work: Path, seed: int, n: int = 400) -> float:
    """Chunks per synthetic record at the default chunking, from a small pilot snapshot."""
    from rag.ingest.chunking import chunk_papers
    from rag.config import ChunkSettings
    from rag.ingest.corpus import load_papers

    pilot = work / "pilot.json"
    make_snapshot(pilot, n, seed + 1, queries=0)
    papers = load_papers([pilot], strict=False)
    pilot.unlink()
    return len(chunk_papers(papers, ChunkSettings())) / len(papers)


def part_store(chunks: list[int], work: Path, seed: int, config: str, vectors: str, keep: bool, out: dict, save, run: dict | None = None) -> dict:
    ratio = chunks_per_record(work, seed)
    for target in chunks:
        n = int(round(target / ratio))
        snap, data = work / f"store{target}.json", work / f"store{target}-data"
        gen = make_snapshot(snap, n, seed)
        qfile = work / f"store{target}-queries.jsonl"
        qfile.write_text("".join(json.dumps(q) + "\n" for q in gen["queries"]))
        res_file = work / f"store{target}.result.json"
        print(f"store: {n:,} records for ~{target:,} chunks ({gen['bytes'] / 2**20:.0f} MiB)", flush=True)
        r = run_child(["-c", STORE_CHILD, str(ROOT), str(snap), str(data), config, vectors, str(qfile), str(res_file)],
                      on_line=lambda line, p: print("  " + line.rstrip(), flush=True) if "ETA" in line or "HNSW" in line else None)
        if r["rc"] != 0:
            raise SystemExit(f"store part failed at {target}: {r['stderr_tail']}")
        res = json.loads(res_file.read_text())
        reopen = run_child(["-c", OPEN_CHILD, str(ROOT), str(data), config])
        res["serving_process"] = (json.loads(reopen["stdout"]) | {"peak_rss_mib": reopen["peak_rss_mib"]} if reopen["rc"] == 0
                                  else {"error": reopen["stderr_tail"]})
        res.update(run=run, records=n, target_chunks=target, process_peak_rss_mib=r["peak_rss_mib"], wall_s=r["wall_s"],
                   disk_mib=sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20, config=config, vectors=vectors)
        out[str(target)] = res
        L = res["latency_ms"]
        print(f"  {res['points']:,} points: write {res['chunks_per_s']:,.0f} chunks/s, optimize {res['optimize_s']:.1f} s, "
              f"hybrid HNSW int8 p50 {L['hybrid HNSW int8']['p50']:.2f} ms, dense HNSW int8 recall@10 "
              f"{res['recall']['dense_hnsw_int8@10_vs_exact']:.3f}, disk {res['disk_mib']:.0f} MiB, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
        if not keep:
            shutil.rmtree(data, ignore_errors=True)
            snap.unlink()
        save()
    return out


# -- part: kill -9 --------------------------------------------------------------------------------
# A fresh process that opens the finished index and queries it, as `rag serve` would: its memory is what a
# server of that index holds (the ingest process's heap is the writer's, returned when it closes).
OPEN_CHILD = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
import numpy as np
import rag
from rag.search.store import QuerySpec, sparse_query
from bench.common import memory_mib
from bench.synthetic import RandomEmbedder
before = memory_mib()
with rag.load(sys.argv[3], data_dir=sys.argv[2], embedder=RandomEmbedder()) as app:
    n = app.store.count()
    opened = memory_mib()
    rng = np.random.default_rng(1)
    for i in range(200):
        v = rng.standard_normal(384).astype(np.float32)
        app.store.query(QuerySpec(dense=(v / np.linalg.norm(v)).tolist(), sparse=sparse_query("multimodal model benchmark"), limit=20))
    print(json.dumps({"points": n, "before_open": before, "after_open": opened, "after_200_hybrid_queries": memory_mib()}))
"""

KILL_CHILD = r"""
import sys, logging
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import rag
from bench.synthetic import RandomEmbedder
with rag.load(sys.argv[4], data_dir=sys.argv[3], embedder=RandomEmbedder(), **{"store.hnsw_threshold": int(sys.argv[5])}) as app:
    r = app.ingest([sys.argv[2]], progress=True)
    print(r.summary(), file=sys.stderr)
"""

VERIFY_CHILD = r"""
import sys, json, random
sys.path.insert(0, sys.argv[1])
import rag
from rag.ingest.chunking import chunk_paper
from rag.ingest.corpus import Paper, read_entry_at
from rag.ingest.state import IngestState
from bench.synthetic import RandomEmbedder
from bench.common import indexed
with rag.load(sys.argv[3], data_dir=sys.argv[2], embedder=RandomEmbedder()) as app:
    st = IngestState(app.ingest_state_path())
    keys = [k for (k,) in st.db.execute("SELECT key FROM papers WHERE chash IS NOT NULL")]
    sample = random.Random(0).sample(keys, min(500, len(keys)))
    bad = 0
    for k in sample:
        r = st.resolve(k)
        e = read_entry_at(r.path, r.offset, r.line)
        p = Paper(e.title, e.abstract, r.pages, e.extra)
        ids = [c.point_id for c in chunk_paper(p, app.settings.chunking)]
        bad += (app.store.count(p.paper_id) != len(ids)) or len(app.store.payloads(ids, [])) != len(ids)
    out = {"points": app.count(), "state_chunks": st.stored_chunks(), "stored_papers": len(keys), "pending": st.count_pending(),
           "optimize_pending": st.get_meta("optimize_pending"), "sample_papers": len(sample), "sample_wrong": bad,
           "indexed_vectors": indexed(app.store.info())}
    st.close()
print(json.dumps(out))
"""


def part_kill(n: int, work: Path, seed: int, config: str) -> dict:
    snap = work / f"kill{n}.json"
    gen = make_snapshot(snap, n, seed, queries=0)
    out = {"records": n, "damaged": gen["damaged"]}
    # (phase, log line that starts it, seconds to wait after it, log line that would mean the phase had ended)
    for phase, marker, delay, after in (("upsert", "writing", 5.0, "building the HNSW index"),
                                        ("optimize", "building the HNSW index", 1.0, "built the HNSW index")):
        data = work / f"kill-{phase}"
        shutil.rmtree(data, ignore_errors=True)
        killed = {}

        def on_line(line, p, marker=marker, delay=delay, killed=killed):
            if marker in line and "at" not in killed:
                killed["at"] = time.perf_counter()
                threading.Timer(delay, lambda: (os.kill(p.pid, signal.SIGKILL), killed.update(sent=True))).start()

        first = run_child(["-c", KILL_CHILD, str(ROOT), str(snap), str(data), config, "20000"], on_line=on_line)
        second = run_child(["-c", KILL_CHILD, str(ROOT), str(snap), str(data), config, "20000"])
        check = run_child(["-c", VERIFY_CHILD, str(ROOT), str(data), config])
        v = json.loads(check["stdout"]) if check["rc"] == 0 else {"error": check["stderr_tail"]}
        in_phase = "at" in killed and after not in first["stderr_tail"]
        ok = (first["rc"] == -9 and in_phase and second["rc"] == 0 and v.get("pending") == 0 and v.get("points") == v.get("state_chunks")
              and v.get("sample_wrong") == 0 and v.get("optimize_pending") == "0" and v.get("indexed_vectors") == 2 * v.get("points", -1))
        out[phase] = {"killed": first["rc"] == -9, "killed_during_phase": in_phase, "first_rc": first["rc"], "rerun_rc": second["rc"], "rerun_s": second["wall_s"],
                      "rerun_summary": second["stderr_tail"].strip().splitlines()[-1:], "verify": v, "ok": ok}
        print(f"kill -9 during {phase}: killed={first['rc'] == -9} (in that phase: {in_phase}), re-run rc {second['rc']}, {v}; ok={ok}", flush=True)
        shutil.rmtree(data, ignore_errors=True)
    snap.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="dryrun,store,kill")
    ap.add_argument("--dry-sizes", default="30000,100000,300000,1000000", help="records per dry run")
    ap.add_argument("--chunks", default="100000,1000000", help="target chunk counts for the store part")
    ap.add_argument("--kill-records", type=int, default=60000)
    ap.add_argument("--config", default="large", help="preset or YAML for the store settings (default: large)")
    ap.add_argument("--vectors", choices=["random", "model"], default="random")
    ap.add_argument("--work-dir", default=None, help="where snapshots and indexes go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the store part's snapshots and indexes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wait-quiet", type=float, default=60, help="wait up to this many seconds for other processes to go quiet")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    parts = args.parts.split(",")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="rag-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    name = "ingest_scale.json"
    # each part keeps its own run facts; parts not run now keep their last results (separate commands add up)
    old = args.out_dir / name
    result = json.loads(old.read_text()) if old.exists() else {}
    run = {"command": " ".join([_py(), *sys.argv]), "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "config": args.config, "vectors": args.vectors, "wait_quiet": wait_quiet(args.wait_quiet)}
    def save():  # after every size: an interrupted big size keeps the smaller ones
        run["machine"]["loadavg_end"] = list(os.getloadavg())
        return write_json(name, result, args.out_dir)

    steps = {
        "dry_run": lambda out: part_dryrun([int(x) for x in args.dry_sizes.split(",")], work, args.seed, out, save),
        "store": lambda out: part_store([int(x) for x in args.chunks.split(",")], work, args.seed, args.config, args.vectors,
                                        args.keep, out, save, run),
        "kill": lambda out: out.update(part_kill(args.kill_records, work, args.seed, args.config)),
    }
    path = None
    try:
        for key, part in (("dry_run", "dryrun"), ("store", "store"), ("kill", "kill")):
            if part in parts:
                # store sizes are slow to re-run: sizes not run now keep their last result (each carries its run)
                kept = result.get(key, {}).get("results", {}) if key == "store" else {}
                for v in kept.values():
                    v.setdefault("run", result[key].get("run"))
                result[key] = {"run": run, "results": kept}
                steps[key](result[key]["results"])
                path = save()
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print_tables(result)
    print(f"\nwrote {path}")
    return 0


def _anon_file(v: dict) -> str:
    """Heap vs mmapped-file RSS per phase, then in a fresh serving process ("-" for results from before
    the split was recorded)."""
    m = v.get("memory_mib")
    if not m:
        return "-"
    out = ", ".join(f"{m[k]['anon']:,.0f} / {m[k]['file']:,.0f}" for k in ("after_ingest", "after_optimize", "after_queries") if m.get(k))
    srv = (v.get("serving_process") or {}).get("after_200_hybrid_queries")
    return out + (f"; serving {srv['anon']:,.0f} / {srv['file']:,.0f}" if srv else "")


def print_tables(r: dict) -> None:
    if r.get("dry_run"):
        print("\n### rag ingest --dry-run on synthetic arXiv snapshots\n")
        print(md_table(["records", "MiB", "wall s", "records/s", "peak RSS MiB", "papers", "skipped"],
                       [[f"{int(n):,}", f"{v['snapshot_mib']:.0f}", v["wall_s"], f"{v['records_per_s']:,.0f}", f"{v['peak_rss_mib']:.0f}",
                         f"{v['papers']:,}", str(sum(v["skipped"].values()))] for n, v in r["dry_run"]["results"].items()]))
    if r.get("store"):
        run = r["store"]["run"]
        print(f"\n### Store at scale ({run['config']} settings, {run['vectors']} vectors; latency of one store.query, ms p50 / p95)\n")
        pp = lambda d: f"{d['p50']:.2f} / {d['p95']:.2f}"  # noqa: E731
        rows = []
        for v in r["store"]["results"].values():
            L, R = v["latency_ms"], v["recall"]
            rows.append([f"{v['points']:,}", f"{v['chunks_per_s']:,.0f}", f"{v['optimize_s']:.0f}", f"{v['disk_mib']:,.0f}",
                         f"{v['process_peak_rss_mib']:,.0f}", pp(L["hybrid HNSW int8"]), pp(L["hybrid HNSW float32"]), pp(L["hybrid exact"]),
                         pp(L["dense HNSW int8"]), pp(L["dense HNSW float32"]), pp(L["dense exact"]),
                         f"{R['dense_hnsw_int8@10_vs_exact']:.3f} / {R['dense_hnsw_float32@10_vs_exact']:.3f}",
                         f"{R['hybrid_hnsw_int8@10_vs_exact']:.3f}", _anon_file(v)])
        print(md_table(["chunks", "write chunks/s", "HNSW build s", "disk MiB", "peak RSS MiB", "hybrid int8", "hybrid f32", "hybrid exact",
                        "dense int8", "dense f32", "dense exact", "dense recall@10 int8 / f32", "hybrid overlap@10 int8",
                        "RSS anon / file MiB (after ingest, optimize, queries; fresh serving process)"], rows))
    if r.get("kill"):
        print("\n### kill -9, then re-run\n")
        print(md_table(["killed during", "killed in that phase", "re-run ok (complete, duplicate-free, indexed)", "points", "re-run s"],
                       [[k, str(v["killed_during_phase"]), str(v["ok"]), str(v["verify"].get("points")), v["rerun_s"]]
                        for k, v in r["kill"]["results"].items() if isinstance(v, dict)]))


if __name__ == "__main__":
    sys.exit(main())
