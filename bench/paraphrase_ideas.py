"""Two ideas for paraphrased questions, measured without changing the system: neither is shipped.

A paraphrase ("Which work treats the firing of many nerve cells as next-element prediction?") shares
few words with its abstract, so the right paper is often retrieved but not ranked first. For each
dev ``semantic`` question (``semantic`` = dev-001..248, ``semantic-hard`` = dev-249..278), recall@1
and @5 of:

* ``hybrid``: what ``rag`` does now (chunks, dense + BM25 fused with RRF).
* ``dense``: chunks, dense only.
* ``paper``: one vector per paper (title + abstract, embedded whole; the model truncates long ones)
  instead of per chunk.
* ``rrf(hybrid,paper)``: both rankings fused with RRF (k=60).
* ``hyde`` / ``q+hyde`` (``--hyde``): the LLM first writes a 3-sentence abstract that would answer the
  question (HyDE); dense search with its vector alone, or with the question and it embedded together.
* ``terms`` / ``q+terms`` / ``rrf(hybrid,terms)`` (``--terms``): the LLM rewrites the question into a search
  query in a paper's technical terms ("magnet-based scan" -> "MRI"; three few-shot examples on topics
  outside the corpus); hybrid search with the rewrite alone, with the question and the rewrite together,
  or both rankings fused.
* ``clauses`` (``--clauses``): the question is also cut into clauses (at commas, "and", "by", "with",
  ...) and each clause searched by dense vectors; a paper scores 0.5 x its cosine to the whole question
  + 0.5 x its mean cosine to the clauses, so a paper that matches every part of a long paraphrase
  rises over one that matches its gist.
* ``dense+<config>`` / ``<config> dense`` / ``rrf(dense,<config>)`` (``--with-config NAME --with-data-dir
  DIR``, e.g. ``cpu-mpnet``): a second embedder's index; dense scores summed (0.2 x this one's, 0.8 x the
  other's), the other alone, or the two dense rankings fused.

    .venv/bin/python bench/paraphrase_ideas.py --data-dir IDX [--config cpu] [--hyde] [--terms] [--clauses]
        [--with-config cpu-mpnet --with-data-dir IDX_MPNET]

Prints a table and writes ``bench/results/paraphrase_ideas.json`` under the config's name.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import rag  # noqa: E402
from bench.common import machine_info  # noqa: E402
from rag.ingest.corpus import load_papers  # noqa: E402
from rag.search.retrieval import Retriever  # noqa: E402

HARD_FROM = 249
HYDE_PROMPT = ("Write the abstract (3 sentences) of a machine-learning research paper that answers the request below. "
               "Use the standard technical terms a paper would use. Do not mention the request.\n\nRequest: {q}")

TERMS_SYSTEM = ("You turn a question written in everyday words into a search query for machine-learning paper abstracts. "
                "Replace everyday descriptions with the standard technical terms, acronyms and task names a paper would use. "
                "Output only the query (one line, under 25 words).")
TERMS_SHOTS = [  # topics outside the corpus, so the examples teach the form, not an answer
    ("How can a computer guess tomorrow's rain from old satellite photos?",
     "precipitation nowcasting weather forecasting from satellite imagery deep learning"),
    ("Is there a way to make a talking-voice generator copy someone's voice from a few seconds of audio?",
     "zero-shot voice cloning text-to-speech (TTS) speaker adaptation from short reference audio"),
    ("Which method predicts how a chain of amino acids folds in 3D?", "protein structure prediction from amino acid sequence"),
]


def _terms_messages(question: str) -> list[dict]:
    messages = [{"role": "system", "content": TERMS_SYSTEM}]
    for q, a in TERMS_SHOTS:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return messages + [{"role": "user", "content": question}]


class _Fixed:
    """An embedder that returns a vector computed elsewhere (a HyDE abstract's), for Retriever."""

    def __init__(self, vector):
        self.vector = vector

    def embed_query(self, text):
        return self.vector


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


# where a long paraphrase is cut into clauses (``--clauses``)
_CLAUSE = re.compile(r"\s*(?:[,;:()?]|\s-\s|\u2014|\b(?:and then|while|whereas|so that|where|which|that|by|using|via|with|"
                     r"without|instead of|rather than|not just|and)\b)\s*", re.I)


def clauses(question: str) -> list[str]:
    """The clauses of a question with at least three words each.

    >>> clauses("Which method speeds up decoding by guessing several tokens and checking them with the big model?")
    ['method speeds up decoding', 'guessing several tokens', 'the big model']
    """
    return [c.strip() for c in _CLAUSE.split(question) if c and len(c.split()) >= 3]


def _by_score(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda t: -scores[t])


def _mix(parts: list[tuple[float, dict[str, float]]]) -> list[str]:
    """Papers ranked by a weighted sum of score tables; a paper missing from one gets that table's lowest score."""
    papers = set().union(*(table for _, table in parts))
    return _by_score({t: sum(w * table.get(t, min(table.values())) for w, table in parts if table) for t in papers})


def _rrf(rankings: list[list[str]], k: int = 60) -> list[str]:
    score: dict[str, float] = {}
    for ranking in rankings:
        for r, title in enumerate(ranking):
            score[title] = score.get(title, 0.0) + 1 / (k + r + 1)
    return sorted(score, key=lambda t: -score[t])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--questions", default=str(ROOT / "eval/questions/dev.jsonl"))
    ap.add_argument("--hyde", action="store_true", help="also ask the LLM for a hypothetical abstract (~3 s a question)")
    ap.add_argument("--terms", action="store_true", help="also ask the LLM to rewrite the question in technical terms")
    ap.add_argument("--clauses", action="store_true", help="also search the question's clauses one by one (dense)")
    ap.add_argument("--with-config", help="a second preset (another embedder) whose dense scores are combined with this one's")
    ap.add_argument("--with-data-dir", help="the second preset's index (rag ingest --config NAME --data-dir DIR)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    app = rag.load(args.config, data_dir=args.data_dir)
    other = rag.load(args.with_config, data_dir=args.with_data_dir) if args.with_config else None
    if app.count() == 0:
        app.ingest(progress=False)
    emb = app.embedder
    papers = load_papers(app.settings.corpus, strict=False)
    titles = [p.title for p in papers]
    t = time.perf_counter()
    paper_vectors = _unit(np.array(emb.embed_documents([f"{p.title}\n{p.abstract}" for p in papers], progress=False)))
    paper_embed_s = time.perf_counter() - t
    qs = [json.loads(line) for line in open(args.questions) if line.strip()]
    qs = [q for q in qs if q["type"] == "semantic"]

    def dense(vector, question):
        r = Retriever(_Fixed(vector), app.store, app.settings.retrieval).search(question, k=10, mode="dense")
        return [h.title for h in r.hits]

    def dense_scores(a, text, k=80):  # paper -> its best chunk's cosine
        scores: dict[str, float] = {}
        for h in a.retrieve(text, k=k, mode="dense").hits:
            scores.setdefault(h.title, h.score)
        return scores

    counts: dict[str, dict[str, list[int]]] = {}
    hyde_s, terms_s = [], []
    for q in qs:
        question, gold = q["question"], set(q["gold_titles"])
        hybrid = [h.title for h in app.retrieve(question, k=50).hits]
        qv = emb.embed_query(question)
        by_paper = [titles[i] for i in np.argsort(-(paper_vectors @ _unit(np.array(qv))))[:50]]
        rankings = {"hybrid": hybrid, "dense": dense(qv, question), "paper": by_paper,
                    "rrf(hybrid,paper)": _rrf([hybrid, by_paper])}
        if args.hyde:
            t = time.perf_counter()
            fake = app.generator.complete([{"role": "user", "content": HYDE_PROMPT.format(q=question)}],
                                          max_new_tokens=90, temperature=0.0)
            hyde_s.append(time.perf_counter() - t)
            fake = fake.replace("Abstract:", "").strip()
            rankings["hyde"] = dense(emb.embed_query(fake), question)
            rankings["q+hyde"] = dense(emb.embed_query(f"{question} {fake}"), question)
        if args.terms:
            t = time.perf_counter()
            query = " ".join(app.generator.complete(_terms_messages(question), max_new_tokens=40, temperature=0.0).split())
            terms_s.append(time.perf_counter() - t)
            by_terms = [h.title for h in app.retrieve(query.strip('"') or question, k=50).hits]
            rankings["terms"] = by_terms
            rankings["q+terms"] = [h.title for h in app.retrieve(f"{question} {query}", k=50).hits]
            rankings["rrf(hybrid,terms)"] = _rrf([hybrid, by_terms])
        if args.clauses:
            whole, parts = dense_scores(app, question), [dense_scores(app, c) for c in clauses(question)]
            mean = {t: sum(p.get(t, min(p.values())) for p in parts) / len(parts) for t in whole} if parts else whole
            rankings["clauses"] = _mix([(0.5, whole), (0.5, mean)])
        if other is not None:
            mine, theirs = dense_scores(app, question), dense_scores(other, question)
            rankings[f"dense+{args.with_config}"] = _mix([(0.2, mine), (0.8, theirs)])
            rankings[f"{args.with_config} dense"] = _by_score(theirs)
            rankings[f"rrf(dense,{args.with_config})"] = _rrf([_by_score(mine), _by_score(theirs)])
        group = "semantic-hard" if int(q["id"].split("-")[1]) >= HARD_FROM else "semantic"
        for name, ranking in rankings.items():
            for g in ("all", group):
                c = counts.setdefault(name, {}).setdefault(g, [0, 0, 0])
                c[0] += 1
                c[1] += bool(ranking) and ranking[0] in gold
                c[2] += bool(gold & set(ranking[:5]))
    summary = {name: {g: {"n": c[0], "r1": round(c[1] / c[0], 3), "r5": round(c[2] / c[0], 3)} for g, c in groups.items()}
               for name, groups in counts.items()}
    print(f"{'variant':<20}" + "".join(f"{g + ' R@1/R@5':>26}" for g in ("all", "semantic", "semantic-hard")))
    for name, groups in summary.items():
        print(f"{name:<20}" + "".join(f"{groups[g]['r1']:>17.3f} / {groups[g]['r5']:.3f}" for g in ("all", "semantic", "semantic-hard")))
    print(f"paper vectors: {len(papers)} papers embedded in {paper_embed_s:.1f} s" +
          (f"; HyDE abstract p50 {sorted(hyde_s)[len(hyde_s) // 2]:.1f} s" if hyde_s else "") +
          (f"; rewrite p50 {sorted(terms_s)[len(terms_s) // 2]:.1f} s" if terms_s else ""))
    out = ROOT / "bench" / "results" / "paraphrase_ideas.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    results[args.config] = {"command": " ".join(["bench/paraphrase_ideas.py", *sys.argv[1:]]), "machine": machine_info(),
                            "summary": summary, "paper_embed_s": round(paper_embed_s, 1),
                            "hyde_p50_s": round(sorted(hyde_s)[len(hyde_s) // 2], 2) if hyde_s else None,
                            "terms_p50_s": round(sorted(terms_s)[len(terms_s) // 2], 2) if terms_s else None,
                            "wall_s": round(time.perf_counter() - t_start, 1)}
    out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
