"""Synthetic arXiv metadata snapshots and random embeddings, for measuring ingest and the store at scale.

Titles and abstracts are drawn from the bundled corpus: word frequencies of its vocabulary, abstract
lengths of its real abstracts, sentences of 8-30 words. 1% of the records are a newer version of an
earlier paper (same id, later ``update_date``) and ~0.3% are damaged (cut JSON, blank abstract).

Example:
    >>> arxiv_ident(0), arxiv_ident(100001)
    ('0701.00000', '0702.00001')
    >>> v = RandomEmbedder().embed_query("attention"); len(v), v == RandomEmbedder().embed_query("attention")
    (384, True)
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np

from bench.common import ROOT, corpus_vocab

CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "cs.IR", "cs.RO", "math.OC", "eess.IV", "q-bio.NC"]
DIM = 384


def make_snapshot(path: Path, n: int, seed: int = 0, queries: int = 200) -> dict:
    """Write ``n`` arXiv-format JSON lines to ``path``; returns stats and ``queries`` query records."""
    words, probs, _ = corpus_vocab(ROOT / "data" / "sample")
    from rag.ingest.corpus import load_papers

    abstract_words = [len(p.abstract.split()) for p in load_papers([ROOT / "data" / "sample"])]
    rng = np.random.default_rng(seed)
    pyr = random.Random(seed)
    cdf = np.cumsum(probs)
    vocab = np.asarray(words, dtype=object)
    q_at = set(pyr.sample(range(n), min(queries, n)))
    qrecs, bad, versions = [], 0, 0
    with open(path, "w") as f:
        block = 4096
        for start in range(0, n, block):
            m = min(block, n - start)
            alen = np.asarray(abstract_words)[rng.integers(len(abstract_words), size=m)]
            tlen = rng.integers(6, 16, size=m)
            draws = np.searchsorted(cdf, rng.random(int(alen.sum() + tlen.sum())), side="right").clip(max=len(vocab) - 1)
            toks, pos = vocab[draws], 0
            for j in range(m):
                i = start + j
                title = " ".join(toks[pos : pos + tlen[j]]).capitalize()
                pos += tlen[j]
                abstract = sentences(toks[pos : pos + alen[j]], pyr)
                pos += alen[j]
                ident, date = arxiv_ident(i), f"20{7 + i // 1200000:02d}-{1 + i // 100000 % 12:02d}-{1 + i % 28:02d}"
                if i % 100 == 99 and i > 200:  # a newer version of an earlier paper: same id, later date
                    ident, date, versions = arxiv_ident(i - 150), "2026-01-01", versions + 1
                rec = {
                    "id": ident, "submitter": "A. Submitter", "authors": ", ".join(f"Author {k}" for k in rng.integers(1000, size=3)),
                    "title": title, "comments": "12 pages", "journal-ref": None, "doi": None, "report-no": None,
                    "categories": " ".join(pyr.sample(CATEGORIES, 2)), "license": None, "abstract": "  " + abstract + "\n",
                    "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
                    "update_date": date, "authors_parsed": [["Author", "A", ""]],
                }
                if i in q_at:
                    qrecs.append({"title": title, "abstract": abstract, "id": ident})
                line = json.dumps(rec)
                if i % 997 == 500:
                    line, bad = line[: len(line) // 2], bad + 1  # a damaged line
                elif i % 1499 == 700:
                    rec["abstract"], bad = "   ", bad + 1
                    line = json.dumps(rec)
                f.write(line + "\n")
    return {"records": n, "damaged": bad, "second_versions": versions, "bytes": path.stat().st_size, "queries": qrecs}


def sentences(words, rng: random.Random) -> str:
    """Words into sentences of 8-30 words (the sentence splitter then works as on real abstracts)."""
    out, i = [], 0
    while i < len(words):
        n = rng.randint(8, 30)
        out.append(" ".join(words[i : i + n]).capitalize() + ".")
        i += n
    return " ".join(out)


def arxiv_ident(i: int) -> str:
    """A distinct new-style arXiv id per record number: 100,000 per month from 0701 on."""
    month = i // 100000
    return f"{7 + month // 12:02d}{1 + month % 12:02d}.{i % 100000:05d}"


class RandomEmbedder:
    """Deterministic random unit vectors, one per text (store cost without an embedding model)."""

    dim = DIM
    model_id = "random-384"

    @staticmethod
    def vector(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed_documents(self, texts, progress=None):
        return [self.vector(t).tolist() for t in texts]

    def embed_query(self, text: str):
        return self.vector(text).tolist()
