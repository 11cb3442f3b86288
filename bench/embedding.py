"""Embedding speed of the ways to run the model, and retrieval quality of those the product offers.

Speed (texts/s over ``--texts`` chunk texts of the bundled corpus, the median of ``--repeats``
timed passes after a warm-up pass; ratios against torch float32):

* ``torch float32``: sentence-transformers as the product runs it by default (``embedding.precision: float32``).
* ``torch int8``: the product's ``embedding.precision: int8`` (dynamic int8 quantization of the linear layers).
* ``onnx float32`` / ``onnx int8``: the model exported with ``torch.onnx.export`` and run by onnxruntime
  (int8: ``onnxruntime.quantization.quantize_dynamic``); needs ``pip install 'paper-rag[onnx]'``.
  (sentence-transformers' own ``backend="onnx"`` needs optimum-onnx, which pins transformers < 4.58:
  incompatible with this project's transformers 5.)
* ``pool xN``: sentence-transformers' multi-process pool, N CPU processes of 1 thread each.
* ``cuda float32`` / ``cuda float16`` (batch 32, 128, 512) when a CUDA GPU is present.

Quality (``--quality``): for each product precision measured here, the bundled corpus is indexed
with it and the dev questions are searched (dense and hybrid): recall@1/5, MRR@10, and the
cosine between its document vectors and float32's. Keep a faster variant only at equal quality.

The full-snapshot estimate multiplies seconds per chunk by the snapshot's chunk count
(``--snapshot-papers`` x 1.9 chunks per paper, the bundled corpus's ratio).

Examples::

    .venv/bin/python bench/embedding.py                      # speed, 256 texts, all variants available
    .venv/bin/python bench/embedding.py --quality            # + dev-set retrieval for float32 and int8
    .venv/bin/python bench/embedding.py --texts 64 --repeats 1 --variants "torch float32,torch int8"   # smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from bench.common import RESULTS, CpuMonitor, machine_info, md_table, wait_quiet, write_json  # noqa: E402
from bench.retrieval import build_index, evaluate, load_questions  # noqa: E402

CHUNKS_PER_PAPER = 651 / 342
VARIANTS = ["torch float32", "torch int8", "onnx float32", "onnx int8", "pool x2", "cuda float32", "cuda float16"]


def sample_texts(n: int) -> list[str]:
    from rag.ingest.chunking import chunk_papers
    from rag.config import ChunkSettings
    from rag.ingest.corpus import load_papers

    texts = [c.embed_text for c in chunk_papers(load_papers([ROOT / "data" / "sample"]), ChunkSettings())]
    return (texts * (n // len(texts) + 1))[:n]


def _embedder(precision: str, device: str = "cpu", batch_size: int = 32):
    from rag.config import EmbeddingSettings
    from rag.search.embedding import Embedder

    return Embedder(EmbeddingSettings(precision=precision, device=device, batch_size=batch_size, show_progress=False))


class OnnxEncoder:
    """The sentence-transformers model (Transformer -> mean pooling -> normalize) run by onnxruntime."""

    def __init__(self, st_model, int8: bool, work: Path, threads: int):
        import onnxruntime as ort
        import torch

        hf, self.tok, self.max_len = st_model[0].auto_model.eval(), st_model.tokenizer, st_model.max_seq_length
        pooling = getattr(st_model[1], "pooling_mode", "?") if len(st_model) > 1 else "?"
        if pooling != "mean":
            raise SystemExit(f"onnx variant supports mean pooling only (this model: {pooling})")

        class Wrapped(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

        path = work / "model.onnx"
        if not path.exists():
            enc = self.tok(["a b", "c"], padding=True, return_tensors="pt")
            names = ["input_ids", "attention_mask", "token_type_ids"]
            torch.onnx.export(Wrapped(hf), tuple(enc[k] for k in names), str(path), input_names=names,
                              output_names=["hidden"], dynamic_axes={k: {0: "b", 1: "s"} for k in [*names, "hidden"]},
                              opset_version=17, dynamo=False)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            q = work / "model.int8.onnx"
            if not q.exists():
                quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
            path = q
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def embed_documents(self, texts, progress=None, batch_size: int = 32):
        out = []
        for i in range(0, len(texts), batch_size):
            e = self.tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=self.max_len, return_tensors="np")
            h = self.sess.run(None, {k: e[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})[0]
            m = e["attention_mask"][..., None].astype(np.float32)
            v = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return np.concatenate(out).tolist()


class PoolEncoder:
    def __init__(self, st_model, n: int):
        self.st, self.pool = st_model, st_model.start_multi_process_pool(["cpu"] * n)

    def embed_documents(self, texts, progress=None):
        return self.st.encode(texts, pool=self.pool, batch_size=32, normalize_embeddings=True, chunk_size=max(1, len(texts) // 8)).tolist()

    def close(self):
        self.st.stop_multi_process_pool(self.pool)


def make(variant: str, work: Path, threads: int):
    """(embed function, closer) for a variant, or raise SystemExit/ImportError if it cannot run here."""
    if variant.startswith("torch "):
        e = _embedder(variant.split()[1])
        return e, None
    if variant.startswith("cuda "):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA GPU")
        bs = 128
        return _embedder(variant.split()[1], "cuda", bs), None
    base = _embedder("float32").sentence_transformer
    if variant.startswith("onnx "):
        return OnnxEncoder(base, variant.endswith("int8"), work, threads), None
    if variant.startswith("pool x"):
        p = PoolEncoder(base, int(variant[6:]))
        return p, p.close
    raise SystemExit(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def time_variant(enc, texts: list[str], repeats: int) -> dict:
    enc.embed_documents(texts[: min(32, len(texts))])  # warm-up
    runs = []
    with CpuMonitor() as mon:
        for _ in range(repeats):
            t = time.perf_counter()
            vecs = enc.embed_documents(texts)
            runs.append(time.perf_counter() - t)
    med = float(np.median(runs))
    return {"texts": len(texts), "seconds": runs, "texts_per_s": len(texts) / med, "cpu": mon.result}, np.asarray(vecs, dtype=np.float32)


def quality_of(precision: str, tmp: Path, questions: list[dict]) -> dict:
    app, report, extra = build_index(tmp / precision, ROOT / "data" / "sample", "cpu", **{"embedding.precision": precision})
    res = {"ingest": report, **extra}
    for mode in ("dense", "hybrid"):
        res[mode] = evaluate(lambda q, k, m=mode: [h.title for h in app.retrieve(q, k=k, mode=m).hits], questions)["summary"]
    app.close()
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch/onnxruntime threads (0: all cores)")
    ap.add_argument("--quality", action="store_true", help="also dev-set retrieval for each product precision measured")
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions" / "dev.jsonl")
    ap.add_argument("--snapshot-papers", type=int, default=2_700_000)
    ap.add_argument("--wait-quiet", type=float, default=60)
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    import torch

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    texts = sample_texts(args.texts)
    out = {"command": " ".join([sys.executable, *sys.argv]), "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "threads": threads, "wait_quiet": wait_quiet(args.wait_quiet), "speed": {}, "skipped": {}}
    ref = None
    with tempfile.TemporaryDirectory(prefix="rag-emb-") as tmp:
        tmp = Path(tmp)
        for v in [x.strip() for x in args.variants.split(",") if x.strip()]:
            try:
                enc, close = make(v, tmp, threads)
            except (ImportError, RuntimeError) as e:
                out["skipped"][v] = str(e).splitlines()[0]
                print(f"{v}: skipped ({out['skipped'][v]})", flush=True)
                continue
            try:
                res, vecs = time_variant(enc, texts, args.repeats)
            finally:
                if close:
                    close()
            if ref is None and v in ("torch float32", "cuda float32"):
                ref = vecs
            if ref is not None and len(ref) == len(vecs):
                cos = (ref * vecs).sum(1)
                res["cosine_to_float32"] = {"min": float(cos.min()), "mean": float(cos.mean())}
            out["speed"][v] = res
            print(f"{v}: {res['texts_per_s']:.1f} texts/s" + (f", cosine to float32 min {res['cosine_to_float32']['min']:.3f} "
                  f"mean {res['cosine_to_float32']['mean']:.4f}" if "cosine_to_float32" in res else ""), flush=True)
        base = out["speed"].get("torch float32", {}).get("texts_per_s")
        for v, res in out["speed"].items():
            res["speedup_vs_torch_float32"] = res["texts_per_s"] / base if base else None
            res["snapshot_hours"] = args.snapshot_papers * CHUNKS_PER_PAPER / res["texts_per_s"] / 3600
        if args.quality:
            questions = load_questions(args.questions)
            precisions = [v.split()[1] for v in out["speed"] if v.startswith("torch ")]
            out["quality"] = {p: quality_of(p, tmp, questions) for p in precisions}
    path = write_json("embedding.json", out, args.out_dir)
    print("\n### Embedding speed (" + f"{len(texts)} chunk texts, {threads} threads)\n")
    print(md_table(["variant", "texts/s", "x torch float32", "cosine to float32 (min / mean)", f"hours for {args.snapshot_papers:,} papers"],
                   [[v, f"{r['texts_per_s']:.1f}", f"{r['speedup_vs_torch_float32']:.2f}" if r["speedup_vs_torch_float32"] else "-",
                     f"{r['cosine_to_float32']['min']:.3f} / {r['cosine_to_float32']['mean']:.4f}" if "cosine_to_float32" in r else "-",
                     f"{r['snapshot_hours']:.1f}"] for v, r in out["speed"].items()]))
    if out.get("quality"):
        print("\n### Dev-set retrieval per precision\n")
        rows = [[p, m, q[m]["recall@1"], q[m]["recall@5"], q[m]["mrr@10"]] for p, q in out["quality"].items() for m in ("dense", "hybrid")]
        print(md_table(["precision", "mode", "R@1", "R@5", "MRR@10"], rows))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
