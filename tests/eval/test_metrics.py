"""Hand-computed tests for eval.metrics (pure functions, no I/O, no models)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import eval.metrics as M
from eval.metrics import (
    all_gold_at_k,
    answers,
    bootstrap,
    bootstrap_ci,
    canonical_tokens,
    citation_precision,
    citation_recall,
    citations,
    cites_gold,
    fact_coverage,
    fact_present,
    false_refusal_rate,
    hit_at_k,
    is_refusal,
    latency,
    mean_ci,
    mean_defined,
    ndcg_at_k,
    normalize_text,
    normalize_title,
    percentile,
    recall_at_k,
    reciprocal_rank,
    refusal,
    refusal_accuracy,
    retrieval,
    summarize,
    token_f1,
    token_f1_facts,
)

# --------------------------------------------------------------------- doctests


@pytest.mark.parametrize(
    "module", [M, retrieval, citations, answers, refusal, latency, bootstrap], ids=lambda m: m.__name__
)
def test_module_doctests(module):
    result = doctest.testmod(module, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0


def test_every_public_function_has_docstring():
    for name in M.__all__:
        obj = getattr(M, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


# ----------------------------------------------------------------- titles


def test_normalize_title():
    assert normalize_title("  Attention   Is\tAll You\nNEED ") == "attention is all you need"
    assert normalize_title("Straße") == normalize_title("STRASSE")  # casefold, not lower
    assert normalize_title("") == ""


# ----------------------------------------------------------------- retrieval

R, G = ["A", "B", "C"], ["C", "D"]


def test_recall_at_k():
    assert recall_at_k(R, G, 1) == 0.0
    assert recall_at_k(R, G, 2) == 0.0
    assert recall_at_k(R, G, 3) == 0.5
    assert recall_at_k(R, G, 10) == 0.5
    assert recall_at_k(["C", "x", "D"], G, 3) == 1.0


def test_hit_at_k():
    assert hit_at_k(R, G, 2) == 0.0
    assert hit_at_k(R, G, 3) == 1.0
    assert hit_at_k([], G, 3) == 0.0


def test_reciprocal_rank():
    assert reciprocal_rank(R, G) == pytest.approx(1 / 3)
    assert reciprocal_rank(["D", "C"], G) == 1.0
    assert reciprocal_rank(["x", "y"], G) == 0.0
    assert reciprocal_rank(R, G, k=2) == 0.0
    assert reciprocal_rank(R, G, k=3) == pytest.approx(1 / 3)


def test_ndcg_at_k():
    expected = (1 / math.log2(4)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert ndcg_at_k(R, G, 3) == pytest.approx(expected)
    assert ndcg_at_k(R, G, 2) == 0.0
    assert ndcg_at_k(["C", "D", "A"], G, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["D", "C"], G, 2) == pytest.approx(1.0)
    # ideal DCG uses min(len(gold), k) relevant docs: one gold at rank 1 with k=1 is perfect
    assert ndcg_at_k(["C", "A"], G, 1) == pytest.approx(1.0)
    # single gold at rank 2
    assert ndcg_at_k(["A", "C"], ["C"], 5) == pytest.approx(1 / math.log2(3))


def test_all_gold_at_k():
    assert all_gold_at_k(R, G, 3) == 0.0
    assert all_gold_at_k(["D", "A", "C"], G, 3) == 1.0
    assert all_gold_at_k(["D", "A", "C"], G, 2) == 0.0


def test_retrieval_normalises_and_dedupes():
    # duplicates keep the first rank: c is rank 2 once "A" (== "a") is collapsed
    retrieved = ["a", "A ", "  c", "B"]
    assert recall_at_k(retrieved, ["C"], 2) == 1.0
    assert reciprocal_rank(retrieved, ["C"]) == 0.5
    assert ndcg_at_k(retrieved, ["C"], 2) == pytest.approx(1 / math.log2(3))
    # duplicate gold counts once
    assert recall_at_k(["A"], ["a", "A", "b"], 1) == 0.5
    assert hit_at_k(["Attention  Is All You Need"], ["attention is all you need"], 1) == 1.0


@pytest.mark.parametrize("fn", [recall_at_k, hit_at_k, ndcg_at_k, all_gold_at_k])
def test_retrieval_empty_gold_is_none(fn):
    assert fn(R, [], 3) is None
    assert fn(R, ["", "  "], 3) is None


def test_reciprocal_rank_empty_gold_is_none():
    assert reciprocal_rank(R, []) is None


@pytest.mark.parametrize("k", [0, -1, 1.5])
def test_retrieval_bad_k(k):
    with pytest.raises(ValueError):
        recall_at_k(R, G, k)


# ----------------------------------------------------------------- citations


def test_citation_precision_recall():
    cited, gold = ["A", "B", "B ", "Z"], ["a", "D"]
    assert citation_precision(cited, gold) == pytest.approx(1 / 3)
    assert citation_recall(cited, gold) == 0.5
    assert citation_precision([], gold) is None
    assert citation_recall(cited, []) is None
    assert citation_recall([], gold) == 0.0
    assert citation_precision(cited, []) == 0.0


def test_cites_gold():
    assert cites_gold(["X", "a"], ["A"]) == 1.0
    assert cites_gold(["X"], ["A"]) == 0.0
    assert cites_gold([], ["A"]) == 0.0
    assert cites_gold(["A"], []) is None


# ----------------------------------------------------------------- answers


def test_normalize_text():
    assert normalize_text("  Hello,   World!  ") == "hello world"
    assert normalize_text("state\u2013of\u2014the\u2212art") == "state-of-the-art"
    assert normalize_text("\u201cquoted\u201d model\u2019s") == "quoted model's"
    assert normalize_text("accuracy (23.7%).") == "accuracy 23.7%"
    assert normalize_text("3.14 is pi.") == "3.14 is pi"
    assert normalize_text("loss \u22120.3") == "loss -0.3"
    assert normalize_text("23.7 %") == "23.7 %"
    assert normalize_text("23.7 %).") == "23.7 %"
    assert normalize_text("!!! ... ---") == ""


@pytest.mark.parametrize(
    "variants",
    [
        ["28,000", "28000", "28k", "28K", "28 thousand"],
        ["1.5M", "1,500,000", "1.5 million", "1500000", "1.5 mn"],
        ["23.7%", "23.7 %", "23.7 percent", "23.7 per cent"],
        ["7B", "7b", "7 billion", "7,000,000,000", "7 bn"],
        ["1T", "1 trillion"],
        ["0.5", ".5", "0.50"],
    ],
)
def test_number_equivalences(variants):
    canon = {tuple(canonical_tokens(v)) for v in variants}
    assert len(canon) == 1, canon
    for a in variants:
        for b in variants:
            assert fact_present(a, f"We report {b}."), (a, b)


def test_number_non_equivalences():
    assert not fact_present("7B", "a 70B model")
    assert not fact_present("23.7%", "23.7 points")
    assert not fact_present("1.5M", "1.5 thousand")
    assert not fact_present("28k", "2.8k")
    assert canonical_tokens("gpt-3.5 v2 1,2") == ["gpt-3.5", "v2", "1,2"]


def test_fact_present():
    answer = "BERT-large was pre-trained on 3.3 billion words (BooksCorpus + Wikipedia)."
    assert fact_present("3.3B words", answer)
    assert fact_present("bert-large", answer)
    assert fact_present("BooksCorpus", answer)
    assert not fact_present("3.3B tokens", answer)
    assert not fact_present("words bert-large", answer)  # must be contiguous, in order
    assert not fact_present("wiki", answer)  # whole tokens only
    assert not fact_present("", answer)
    assert not fact_present("...", answer)


def test_fact_coverage():
    answer = "It reaches 23.7 percent accuracy with 28k training examples."
    assert fact_coverage(["23.7%", "28,000 training examples", "7B"], answer) == pytest.approx(2 / 3)
    assert fact_coverage(["23.7%"], answer) == 1.0
    assert fact_coverage([], answer) is None


def test_token_f1():
    # articles dropped: pred {cat, sat}, ref {cat, sat, down} -> P=1, R=2/3, F1=0.8
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("Cat sat.", "cat SAT") == 1.0
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "cat") == 0.0
    assert token_f1("the", "cat") == 0.0
    # repeated tokens counted with multiplicity: common=1, P=1/2, R=1 -> 2/3
    assert token_f1("cat cat", "cat") == pytest.approx(2 / 3)
    assert token_f1("28k tokens", "28,000 tokens") == 1.0


def test_token_f1_facts():
    facts = ["7B parameters", "2T tokens"]
    assert token_f1_facts(facts, "7 billion parameters, 2 trillion tokens") == 1.0
    # pred {7000000000, parameters}; ref 4 tokens -> P=1, R=1/2, F1=2/3
    assert token_f1_facts(facts, "7B parameters") == pytest.approx(2 / 3)
    assert token_f1_facts([], "anything") is None


# ----------------------------------------------------------------- refusal

PHRASE = "I could not find this in the indexed papers."


def test_is_refusal():
    assert is_refusal(PHRASE)
    assert is_refusal("i could NOT find this in the indexed papers")
    assert is_refusal("Sorry \u2014 \u201cI could not find this in the indexed papers.\u201d")
    assert is_refusal("I  could not find\nthis in the indexed papers!")
    assert not is_refusal("I could not find this in the indexed paper")
    assert not is_refusal("The paper reports 23.7% accuracy [1].")
    assert not is_refusal("")
    assert not is_refusal(None)
    assert is_refusal("No answer available.", refusal_phrase="no answer available")
    with pytest.raises(ValueError):
        is_refusal("x", refusal_phrase="...")


RECORDS = [
    {"type": "unanswerable", "refused": True},
    {"type": "unanswerable", "refused": True},
    {"type": "unanswerable", "refused": False},
    {"type": "factoid", "refused": False},
    {"type": "multi_hop", "refused": True},
    {"type": "factoid", "refused": False},
    {"type": "numeric", "refused": False},
    {"type": "factoid", "refused": True},
]


def test_refusal_accuracy():
    assert refusal_accuracy(RECORDS) == pytest.approx(2 / 3)
    assert refusal_accuracy([r for r in RECORDS if r["type"] != "unanswerable"]) is None
    assert refusal_accuracy([]) is None
    assert refusal_accuracy(iter(RECORDS)) == pytest.approx(2 / 3)  # any iterable


def test_false_refusal_rate():
    assert false_refusal_rate(RECORDS) == pytest.approx(2 / 5)
    assert false_refusal_rate([r for r in RECORDS if r["type"] == "unanswerable"]) is None
    assert false_refusal_rate([]) is None


def test_refusal_custom_types():
    recs = [{"type": "oos", "refused": True}, {"type": "unanswerable", "refused": False}]
    assert refusal_accuracy(recs, unanswerable_types={"oos"}) == 1.0
    assert false_refusal_rate(recs, unanswerable_types={"oos"}) == 0.0


# ----------------------------------------------------------------- latency


def test_percentile():
    vals = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(vals, 0) == 1.0
    assert percentile(vals, 100) == 10.0
    assert percentile(vals, 50) == 3.0
    assert percentile(vals, 95) == pytest.approx(8.8)
    assert percentile([10.0, 20.0], 25) == 12.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([], 50) is None
    assert percentile([None, 2.0], 50) == 2.0
    for p in (-1, 101):
        with pytest.raises(ValueError):
            percentile(vals, p)


def test_summarize():
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert set(s) == {"n", "mean", "p50", "p95", "max"}
    assert s["n"] == 5
    assert s["mean"] == 4.0
    assert s["p50"] == 3.0
    assert s["p95"] == pytest.approx(8.8)
    assert s["max"] == 10.0
    assert summarize([]) == {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}
    assert summarize([None, 2.0])["n"] == 1


# ----------------------------------------------------------------- bootstrap


def test_bootstrap_deterministic():
    vals = [0.0, 1.0, 1.0, 0.0, 1.0, 0.5, 0.25]
    assert bootstrap_ci(vals, seed=3) == bootstrap_ci(vals, seed=3)
    assert mean_ci(vals) == bootstrap_ci(vals)
    # a different seed gives (almost surely) a different interval
    assert bootstrap_ci(list(range(50)), seed=0) != bootstrap_ci(list(range(50)), seed=1)


def test_bootstrap_bounds():
    rng = np.random.default_rng(42)
    vals = rng.random(200).tolist()
    point, low, high = bootstrap_ci(vals)
    assert point == pytest.approx(float(np.mean(vals)))
    assert low <= point <= high
    assert 0.0 <= low < high <= 1.0
    # SE of the mean of U(0,1) with n=200 is ~0.0204: the 95% CI half-width is ~0.04
    assert 0.02 < high - low < 0.12
    # wider interval for smaller alpha
    _, low99, high99 = bootstrap_ci(vals, alpha=0.01)
    assert low99 <= low and high99 >= high


def test_bootstrap_constant_and_none():
    p, lo, hi = bootstrap_ci([0.7, 0.7, 0.7])
    assert lo == hi == p == pytest.approx(0.7)
    p, lo, hi = bootstrap_ci([0.1] * 7)
    assert lo == hi == p
    assert bootstrap_ci([1.0, None, 1.0]) == (1.0, 1.0, 1.0)
    assert bootstrap_ci([]) == (None, None, None)
    assert bootstrap_ci([None, None]) == (None, None, None)
    assert mean_ci([]) == (None, None, None)


def test_bootstrap_custom_stat_and_validation():
    point, low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 100.0], stat=np.median)
    assert point == 3.0
    assert low <= 3.0 <= high
    assert high <= 100.0
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], alpha=0.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], n_resamples=0)


def test_bootstrap_returns_python_floats():
    out = bootstrap_ci([0.0, 1.0])
    assert all(type(x) is float for x in out)


def test_mean_defined():
    assert mean_defined([1.0, None, 0.0]) == 0.5
    assert mean_defined([]) is None
    assert mean_defined([None]) is None


def test_citation_support_judges_each_cited_statement():
    from eval.metrics.support import citation_support

    abstract = {1: "CMM-Math: A Dataset. CMM-Math contains over 28,000 samples. It covers 12 grades."}
    # markers after the full stop (the extractive baseline's style) cite the sentence before them
    assert citation_support("CMM-Math contains over 28,000 samples. [1] It covers 12 grades. [1]", abstract) == 1.0
    # a list answer: the count in its header is no claim; each line is judged against its own paper
    assert citation_support("2 indexed papers match:\n- CMM-Math: A Dataset [1]\n- Other Paper [1]", abstract) == 0.5
    # an invented number is not supported, whatever the marker
    assert citation_support("CMM-Math contains 50,000 samples [1].", abstract) == 0.0
