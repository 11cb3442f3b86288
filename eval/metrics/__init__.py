"""Pure evaluation metrics for the paper-RAG QA harness.

Every function here is a small pure function: no I/O, no models, no global
state.  Per-question metrics return ``None`` when they are undefined for that
question (e.g. retrieval metrics on a question with no gold papers) so callers
can drop those questions from means.

Paper titles are always compared after :func:`normalize_title`:

>>> normalize_title("  Attention   Is\\tAll You NEED ")
'attention is all you need'
>>> from eval.metrics import recall_at_k, fact_present, bootstrap_ci
>>> recall_at_k(["A", "B", "C"], ["c", "D"], k=3)
0.5
>>> fact_present("28k tokens", "It uses 28,000 tokens.")
True
>>> bootstrap_ci([1.0, 1.0, 1.0])
(1.0, 1.0, 1.0)

Submodules:

* :mod:`eval.metrics.retrieval` -- recall@k, hit@k, reciprocal rank, nDCG@k, all-gold@k
* :mod:`eval.metrics.citations` -- citation precision, recall, cites-gold
* :mod:`eval.metrics.support` -- citation support by an independent judge
* :mod:`eval.metrics.answers` -- text/number normalisation, fact coverage, token F1
* :mod:`eval.metrics.refusal` -- refusal detection, refusal accuracy, false refusals
* :mod:`eval.metrics.latency` -- percentiles and latency summaries
* :mod:`eval.metrics.bootstrap` -- bootstrap confidence intervals
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")


def normalize_title(title: str) -> str:
    """Canonical form of a paper title for comparison.

    Casefolds, collapses any run of whitespace to a single space and strips
    leading/trailing whitespace.  Punctuation is left untouched.

    >>> normalize_title("BERT:  Pre-training of\\nDeep Bidirectional Transformers ")
    'bert: pre-training of deep bidirectional transformers'
    """
    return _WS.sub(" ", title.casefold()).strip()


# Re-exports (imported after normalize_title is defined: the submodules use it).
from eval.metrics.retrieval import (  # noqa: E402
    all_gold_at_k,
    hit_at_k,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
)
from eval.metrics.citations import (  # noqa: E402
    citation_precision,
    citation_recall,
    cites_gold,
)
from eval.metrics.answers import (  # noqa: E402
    canonical_tokens,
    fact_coverage,
    fact_present,
    normalize_text,
    token_f1,
    token_f1_facts,
)
from eval.metrics.refusal import (  # noqa: E402
    DEFAULT_REFUSAL_PHRASE,
    false_refusal_rate,
    is_refusal,
    refusal_accuracy,
)
from eval.metrics.latency import percentile, summarize  # noqa: E402
from eval.metrics.bootstrap import bootstrap_ci, mean_ci, mean_defined  # noqa: E402

__all__ = [
    "normalize_title",
    "recall_at_k",
    "hit_at_k",
    "reciprocal_rank",
    "ndcg_at_k",
    "all_gold_at_k",
    "citation_precision",
    "citation_recall",
    "cites_gold",
    "normalize_text",
    "canonical_tokens",
    "fact_present",
    "fact_coverage",
    "token_f1",
    "token_f1_facts",
    "DEFAULT_REFUSAL_PHRASE",
    "is_refusal",
    "refusal_accuracy",
    "false_refusal_rate",
    "percentile",
    "summarize",
    "bootstrap_ci",
    "mean_ci",
    "mean_defined",
]
