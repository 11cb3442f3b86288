"""Ideas for list questions' inclusion rule, measured on the dev lists without the LLM: none is shipped.

``rag.answer.lists.include`` keeps a candidate paper when its match is at least ``answer.policy.list_relative`` x the best one's
(and its best sentence at least ``list_min_best``), up to ``list_max_papers``. What goes wrong on dev is precision:
topic neighbours of the right papers ("a benchmark for multimodal models" for "a benchmark ... across
many languages"). Variants, each scored by set precision / recall per question (macro means):

* ``shipped``: the rule as it is.
* ``max N``: at most N papers instead of ``list_max_papers``.
* ``gap G``: the shipped list, cut before the first drop of G or more between consecutive matches.
* ``aspects W``: the criterion is cut into aspects ("introduce a benchmark", "testing multimodal models",
  "many languages"); each paper gains W x its weakest aspect (its title + abstract's cosine to the aspect,
  relative to the best candidate's), so a paper that misses one aspect of the criterion falls.

    .venv/bin/python bench/list_ideas.py --data-dir IDX

Prints a table (all dev lists; dev-113..122 and dev-279..298, the lists without names; dev-299..306, the
lists that name a dataset or model) and writes ``bench/results/list_ideas.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402
from bench.common import machine_info  # noqa: E402
from rag.answer import evidence, lists  # noqa: E402
from rag.answer.question import Question  # noqa: E402
from rag.config import AnswerPolicy  # noqa: E402

POLICY = AnswerPolicy()  # the shipped list numbers (the variants below change one thing at a time)

NAMED_FROM = 299  # dev-299 .. dev-306: lists that name a dataset or model
_ASPECT = re.compile(r"\s*(?:[,;:()]|\s-\s|\u2014|\b(?:i\.e\.|e\.g\.|or|while|whereas|so that|where|which|that|by|using|"
                     r"via|with|without|instead of|rather than|not just|and|across|for|in|on|of|over)\b)\s*", re.I)


def aspects(criterion: str) -> list[str]:
    """The parts of a list criterion with two words or more.

    >>> aspects("introduce a benchmark for testing multimodal models across many languages")
    ['introduce a benchmark', 'testing multimodal models', 'many languages']
    """
    return [a.strip() for a in _ASPECT.split(criterion) if a and len(re.findall(r"[A-Za-z0-9]+", a)) >= 2]


def candidates(app, scorer, question: str, gold: set[str]) -> list[dict]:
    """Every candidate paper of a list question with what the rules need: match, best sentence, aspect cosines."""
    policy = app.settings.answer.policy
    crit = Question(question, kind="list").criterion
    hits = app.retrieve(question, k=policy.list_retrieve).hits
    papers, sims = lists.scored(scorer, crit, evidence.load_sources(app.locked_store, hits))
    texts = [f"{p.title} {p.abstract}".lower() for p in papers]
    names = lists.specific_names(crit, texts, policy.list_specific_share)
    docs = [f"{p.title}. {p.abstract}" for p in papers]
    per_aspect = [scorer.similarities(docs, scorer.embed_query(a)) for a in aspects(crit.text)]
    return [{"title": p.title, "rank": p.rank, "best": p.best, "gold": p.title in gold,
             "match": lists.match(p, sim, policy, any(lists.mentions(t, n) for n in names)),
             "aspects": [col[i] for col in per_aspect]}
            for i, (p, sim, t) in enumerate(zip(papers, sims, texts))]


def included(rows: list[dict], bonus=None, max_papers: int | None = None, gap: float | None = None) -> list[dict]:
    """The shipped rule (``lists.cut`` of the rows' matches, default policy) with an optional extra term, cap or gap cut."""
    if not rows or max(r["best"] for r in rows) < POLICY.list_min_best:
        return []
    policy = POLICY if max_papers is None else POLICY.model_copy(update={"list_max_papers": max_papers})
    matches = sorted(((r["match"] + (bonus(r, rows) if bonus else 0.0), SimpleNamespace(**r)) for r in rows),
                     key=lambda mr: (-mr[0], mr[1].rank))
    score = {r.title: m for m, r in matches}
    kept = [r.__dict__ for r in lists.cut(matches, policy)]
    if gap is not None:
        for i in range(1, len(kept)):
            if score[kept[i - 1]["title"]] - score[kept[i]["title"]] >= gap:
                return kept[:i]
    return kept


def weakest_aspect(weight: float):
    def bonus(row, rows):
        if len(row["aspects"]) < 2:
            return 0.0
        tops = [max(r["aspects"][i] for r in rows) for i in range(len(row["aspects"]))]
        return weight * min(v / t if t > 0 else 0.0 for v, t in zip(row["aspects"], tops))
    return bonus


def scores(questions: list[dict], rule) -> dict:
    p = r = 0.0
    for q in questions:
        kept = rule(q["rows"])
        tp = sum(x["gold"] for x in kept)
        p += tp / len(kept) if kept else 0.0
        r += tp / q["n_gold"]
    n = len(questions)
    return {"n": n, "precision": round(p / n, 3), "recall": round(r / n, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--questions", default=str(ROOT / "eval/questions/dev.jsonl"))
    args = ap.parse_args()
    t_start = time.perf_counter()
    app = rag.load(args.config, data_dir=args.data_dir)
    if app.count() == 0:
        app.ingest(progress=False)
    scorer = app.answerer.scorer
    qs = [json.loads(line) for line in open(args.questions) if line.strip()]
    data = [{"id": q["id"], "n_gold": len(q["gold_titles"]),
             "rows": candidates(app, scorer, q["question"], set(q["gold_titles"]))} for q in qs if q["type"] == "list"]
    groups = {"all": data, "unnamed": [q for q in data if int(q["id"].split("-")[1]) < NAMED_FROM],
              "named": [q for q in data if int(q["id"].split("-")[1]) >= NAMED_FROM]}
    rules = {"shipped": included}
    rules |= {f"max {m}": (lambda rows, m=m: included(rows, max_papers=m)) for m in (6, 8, 10)}
    rules |= {f"gap {g}": (lambda rows, g=g: included(rows, gap=g)) for g in (0.05, 0.1, 0.15, 0.2)}
    rules |= {f"aspects {w}": (lambda rows, w=w: included(rows, bonus=weakest_aspect(w))) for w in (0.2, 0.5, 1.0)}
    summary = {name: {g: scores(qs_, rule) for g, qs_ in groups.items()} for name, rule in rules.items()}
    print(f"{'rule':<14}" + "".join(f"{f'{g} (n={len(v)}) P / R':>26}" for g, v in groups.items()))
    for name, row in summary.items():
        print(f"{name:<14}" + "".join(f"{row[g]['precision']:>17.3f} / {row[g]['recall']:.3f}" for g in groups))
    out = ROOT / "bench" / "results" / "list_ideas.json"
    out.write_text(json.dumps({"command": " ".join(["bench/list_ideas.py", *sys.argv[1:]]), "machine": machine_info(),
                               "config": args.config, "summary": summary,
                               "wall_s": round(time.perf_counter() - t_start, 1)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
