"""Evaluate one question: retrieval, the system's answer, and the baselines, as a record of metrics.

    eval_question(app, q, retrieval_only=False, baselines=("bm25", "closed_book", "extractive")) -> record

* **retrieval**: hybrid search (``app.retrieve(query, k=10)``) scored with recall@1/5/10, MRR, nDCG@10
  and all-gold@5 (multi questions); ``bm25``: the same in sparse mode. A follow-up's query is both
  turns joined (the second alone is ambiguous).
* **answer**: ``app.ask(question)``; a follow-up goes through ``app.chat`` with the first turn, its
  answer and that answer's cited papers as history. Metrics (``answer_metrics``):
  cites gold / citation precision / citation recall (for ``list`` questions these are set
  precision and recall), fact coverage of the answer *as shown* (text plus the quotes of the cited
  papers, ``Answer.format()``) and of the text alone, token F1, refusal accuracy (unanswerable),
  false refusal (answerable), ``handled`` (off-topic, emergency and injection requests get the
  right kind of reply and cite nothing), language match (non-English questions), and citation
  support by the independent judge (``eval.metrics.support``).
* **extractive** baseline: no LLM, the 3 best sentences of the top retrieved paper; scored alike.
* **closed_book** baseline: the LLM alone; facts and refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eval.metrics import (
    all_gold_at_k,
    citation_precision,
    citation_recall,
    cites_gold,
    fact_coverage,
    is_refusal,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    token_f1_facts,
)
from eval.metrics.refusal import refusal_flags
from eval.metrics.support import citation_support
from eval.questions import DECLINED, retrieval_query

RETRIEVAL_K = 10
RETRIEVAL_METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "all_gold@5")
ANSWER_METRICS = ("cites_gold", "citation_precision", "citation_recall", "fact_coverage", "fact_coverage_text",
                  "token_f1", "citation_support", "refusal_accuracy", "false_refusal_rate", "handled",
                  "language_match", "answer_sources_recall")
BASELINE_METRICS = ("cites_gold", "fact_coverage", "token_f1", "citation_support", "refusal_accuracy", "false_refusal_rate")
EXPECTED_KIND = {"off_topic": ("off_topic",), "emergency": ("emergency",), "injection": ("injection", "refusal", "off_topic")}


def retrieval_metrics(retrieved: Sequence[str], gold: Sequence[str], qtype: str) -> dict:
    """Per-question retrieval metrics (``None`` where undefined, e.g. no gold titles)."""
    return {
        "recall@1": recall_at_k(retrieved, gold, 1),
        "recall@5": recall_at_k(retrieved, gold, 5),
        "recall@10": recall_at_k(retrieved, gold, 10),
        "mrr": reciprocal_rank(retrieved, gold, k=RETRIEVAL_K),
        "ndcg@10": ndcg_at_k(retrieved, gold, 10),
        "all_gold@5": all_gold_at_k(retrieved, gold, 5) if qtype == "multi" else None,
    }


def language_match(language: str | None, text: str) -> float | None:
    """1.0 when ``text`` is in ``language`` (langid), for non-English questions; else None."""
    if not language or language == "en":
        return None
    from rag.answer.intent import language_identifier

    return float(language_identifier().classify(text)[0] == language)


def answer_metrics(answer: Mapping, q: Mapping) -> dict:
    """Per-question metrics of an answer (``Answer.to_dict()`` plus ``shown``, its ``format()``)."""
    qtype = q["type"]
    gold, facts = list(q.get("gold_titles", [])), list(q.get("answer_facts", []))
    refused = bool(answer["refused"]) or is_refusal(answer["answer"])
    cited = [c["title"] for c in answer["citations"]]
    answerable = qtype not in DECLINED
    sources = {c["number"]: f"{c['title']}. {c['text']}" for c in answer["citations"]}
    shown = "" if refused else answer.get("shown", answer["answer"])
    return {
        "cites_gold": cites_gold(cited, gold) if answerable else None,
        "citation_precision": citation_precision(cited, gold) if answerable else None,
        "citation_recall": citation_recall(cited, gold) if answerable else None,
        "fact_coverage": fact_coverage(facts, shown),
        "fact_coverage_text": fact_coverage(facts, "" if refused else answer["answer"]),
        "token_f1": token_f1_facts(facts, shown),
        # judged on the English text for translated answers: the cited abstracts are in English
        "citation_support": None if refused else citation_support(answer.get("original_text") or answer["answer"], sources, facts),
        **refusal_flags(refused, qtype),
        "handled": (float(answer.get("kind") in EXPECTED_KIND[qtype] and not cited) if qtype in EXPECTED_KIND else None),
        "language_match": language_match(q.get("language"), answer["answer"]) if not refused else None,
        "answer_sources_recall": recall_at_k([h["title"] for h in answer["sources"]], gold,
                                             max(len(answer["sources"]), 1)) if answerable else None,
    }


def baseline_metrics(answer: Mapping, q: Mapping) -> dict:
    m = answer_metrics(answer, q)
    return {k: m[k] for k in BASELINE_METRICS}


def _answer_dict(answer) -> dict:
    d = answer.to_dict()
    d["shown"] = answer.format()
    return d


def _titles(hits) -> list[str]:
    return [h.title for h in hits]


def eval_question(app, q: Mapping, *, retrieval_only: bool = False,
                  baselines: Sequence[str] = ("bm25", "closed_book", "extractive")) -> dict:
    """Evaluate one question; the record (without run-level fields). Raises on failure."""
    qtype = q["type"]
    gold = list(q.get("gold_titles", []))
    query = retrieval_query(q)
    rec: dict = {"retrieval_query": query}
    hybrid = app.retrieve(query, k=RETRIEVAL_K, mode="hybrid")
    rec["retrieved"] = _titles(hybrid.hits)
    rec["metrics"] = retrieval_metrics(rec["retrieved"], gold, qtype)
    ms = hybrid.embed_ms + hybrid.search_ms
    rec["timings"] = {"retrieval_ms": ms, "eval_retrieval_ms": ms, "embed_ms": hybrid.embed_ms, "search_ms": hybrid.search_ms}
    if "bm25" in baselines:
        sparse = app.retrieve(query, k=RETRIEVAL_K, mode="sparse")
        rec["retrieved_bm25"] = _titles(sparse.hits)
        rec["bm25_metrics"] = retrieval_metrics(rec["retrieved_bm25"], gold, qtype)
    if retrieval_only:
        return rec

    if qtype == "followup":
        t1, t2 = q["turns"]
        first = app.ask(t1)
        rec["first_answer"] = first.text
        answer = app.chat([{"role": "user", "content": t1},
                           {"role": "assistant", "content": first.text, "papers": [c.paper_id for c in first.citations]},
                           {"role": "user", "content": t2}])
    else:
        answer = app.ask(q["question"])
    a = _answer_dict(answer)
    rec.update(
        answer=a["answer"], shown=a["shown"], kind=a["kind"], refused=bool(a["refused"]) or is_refusal(a["answer"]),
        refusal_reason=a["refusal_reason"], citations=[c["title"] for c in a["citations"]],
        quotes=[[qt["text"] for qt in c["quotes"]] for c in a["citations"]], sources=[h["title"] for h in a["sources"]],
        standalone_question=a["standalone_question"], model=a["model"], signals=a["signals"],
        dropped_sentences=a["dropped_sentences"],
    )
    # the answer's own retrieval latency replaces the eval's when present (it is what users see)
    rec["timings"].update({k: v for k, v in answer.timings.items() if isinstance(v, (int, float))})
    rec["metrics"].update(answer_metrics(a, q))

    question = query if qtype == "followup" else q["question"]
    if "extractive" in baselines:
        ex = _answer_dict(app.extractive(question))
        rec["extractive"] = {"answer": ex["answer"], "citations": [c["title"] for c in ex["citations"]],
                             "metrics": baseline_metrics(ex, q)}
    if "closed_book" in baselines:
        cb = _answer_dict(app.ask(question, closed_book=True))
        rec["closed_book"] = {"question": question, "answer": cb["answer"], "refused": cb["refused"],
                              "timings": {k: v for k, v in cb["timings"].items() if isinstance(v, (int, float))},
                              "metrics": baseline_metrics(cb, q)}
    return rec
