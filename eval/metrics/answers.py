"""Answer-text metrics: normalisation, number canonicalisation, fact coverage, token F1.

Pipeline:

1. :func:`normalize_text` -- Unicode NFKC, casefold, unify dashes and quotes,
   split on whitespace, strip punctuation from token *edges* (internal
   punctuation such as decimal points, hyphens and ``28,000`` thousands
   separators stays; a ``%`` right after a number and a minus sign or
   decimal point right before a digit are kept; tokens that are only
   punctuation vanish, except a lone ``%``), re-join with single spaces.
2. :func:`canonical_tokens` -- tokens of the normalised text with numbers
   rewritten to one canonical spelling: thousands separators removed,
   magnitude suffixes/words multiplied out (``k``/``thousand``,
   ``m``/``mn``/``million``, ``b``/``bn``/``billion``, ``t``/``trillion``),
   percentages written as ``<number>%`` (``%`` attached or as its own token,
   ``percent``, ``per cent``), trailing zeros dropped (``85.0`` -> ``85``).
   Magnitude *words* and ``%`` may be separate tokens; the letter
   abbreviations must be attached (``7B``, not ``7 B``).
3. :func:`fact_present` -- the canonical tokens of a fact occur as a
   contiguous run in the canonical tokens of the answer.

Worked example:

>>> normalize_text("The model — “GPT-3” — scores 23.7%.")
'the model gpt-3 scores 23.7%'
>>> canonical_tokens("28k / 28,000 / 28 thousand / 1.5M / 1.5 million / 7B")
['28000', '28000', '28000', '1500000', '1500000', '7000000000']
>>> canonical_tokens("23.7 % vs 23.7 percent vs 23.7 per cent")
['23.7%', 'vs', '23.7%', 'vs', '23.7%']
>>> fact_present("trained on 1.5 million images", "It was Trained on 1,500,000 images.")
True
>>> fact_present("7 billion parameters", "a 70B-parameter model")
False
>>> fact_coverage(["28k tokens", "23.7%"], "Context of 28,000 tokens; accuracy 23.7 percent.")
1.0
>>> round(token_f1("the cat sat", "a cat sat down"), 4)   # articles dropped: P=1, R=2/3
0.8
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

__all__ = [
    "normalize_text",
    "canonical_tokens",
    "fact_present",
    "fact_coverage",
    "token_f1",
    "token_f1_facts",
]

# Dashes / minus signs -> "-"; curly and prime-like quotes -> ASCII quotes.
_CHAR_MAP = str.maketrans(
    {
        **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d"},
        **{c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u00b4\u0060\uff07"},
        **{c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02"},
    }
)

# A number: optional sign, digits with optional comma grouping or a bare
# decimal, optional fraction, optional exponent; then optional attached
# suffix (% or a magnitude abbreviation).
_NUM = re.compile(
    r"^(?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:e[-+]?\d+)?)"
    r"(?P<suffix>%|k|m|mn|b|bn|t)?$"
)
_HAS_DIGIT = re.compile(r"\d")
_MAGNITUDE = {
    "k": Decimal(10) ** 3,
    "thousand": Decimal(10) ** 3,
    "m": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "million": Decimal(10) ** 6,
    "b": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "billion": Decimal(10) ** 9,
    "t": Decimal(10) ** 12,
    "trillion": Decimal(10) ** 12,
}
# Magnitudes accepted as a separate following token (letters only when attached).
_MAGNITUDE_WORDS = {"thousand", "million", "billion", "trillion", "mn", "bn"}
_ARTICLES = {"a", "an", "the"}


def _strip_token(tok: str) -> str:
    """Strip punctuation/symbols from the edges of one token (see module doc)."""
    if not any(c.isalnum() for c in tok):
        return "%" if "%" in tok else ""  # a lone percent sign survives: "23.7 %."
    start, end = 0, len(tok)
    while start < end and not tok[start].isalnum():
        if tok[start] in "-." and start + 1 < end and tok[start + 1].isdigit():
            break
        start += 1
    while end > start and not tok[end - 1].isalnum():
        if tok[end - 1] == "%" and end - 1 > start and tok[end - 2].isdigit():
            break
        end -= 1
    return tok[start:end]


def normalize_text(text: str) -> str:
    """Normalise free text for matching (no number canonicalisation).

    NFKC, casefold, unify Unicode dashes/quotes, collapse whitespace, strip
    punctuation at token edges while keeping decimal points and ``%`` that
    belong to numbers.

    >>> normalize_text("  (Accuracy:  23.7%),  “SOTA”!  ")
    'accuracy 23.7% sota'
    >>> normalize_text("a score of .5 and −0.3 — see p. 12.")
    'a score of .5 and -0.3 see p 12'
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_CHAR_MAP)
    tokens = (_strip_token(t) for t in text.split())
    return " ".join(t for t in tokens if t)


def _canon_number(num: str, scale: Decimal = Decimal(1)) -> str | None:
    """Canonical string for a numeric literal times ``scale``; None if not a number."""
    if not _HAS_DIGIT.search(num):
        return None
    try:
        value = Decimal(num.replace(",", "")) * scale
    except InvalidOperation:
        return None
    if value == 0:
        return "0"
    out = format(value.normalize(), "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return out


def canonical_tokens(text: str) -> list[str]:
    """Tokens of :func:`normalize_text` ``(text)`` with numbers canonicalised.

    Thousands separators are removed, magnitudes multiplied out and
    percentages spelt ``<number>%``; a magnitude or percent *word* that
    follows a number is merged into it.

    >>> canonical_tokens("1.5M vs 1,500,000 vs 1.5 million")
    ['1500000', 'vs', '1500000', 'vs', '1500000']
    >>> canonical_tokens("85.0 F1, +2 points, 1e-3 lr")
    ['85', 'f1', '2', 'points', '0.001', 'lr']
    """
    toks = normalize_text(text).split()
    out: list[str] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        m = _NUM.match(tok)
        canon = None
        if m and _HAS_DIGIT.search(m.group("num")):
            num, suffix = m.group("num"), m.group("suffix")
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            nxt2 = toks[i + 2] if i + 2 < len(toks) else None
            if suffix == "%":
                canon = _canon_number(num)
                canon = None if canon is None else canon + "%"
            elif suffix:
                canon = _canon_number(num, _MAGNITUDE[suffix])
            elif nxt in _MAGNITUDE_WORDS:
                canon = _canon_number(num, _MAGNITUDE[nxt])
                i += canon is not None
            elif nxt in ("%", "percent", "pct"):
                canon = _canon_number(num)
                if canon is not None:
                    canon += "%"
                    i += 1
            elif nxt == "per" and nxt2 == "cent":
                canon = _canon_number(num)
                if canon is not None:
                    canon += "%"
                    i += 2
            else:
                canon = _canon_number(num)
        out.append(canon if canon is not None else tok)
        i += 1
    return out


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """True if ``needle`` is a non-empty contiguous run inside ``haystack``."""
    n = len(needle)
    if n == 0 or n > len(haystack):
        return False
    first = needle[0]
    return any(
        haystack[i] == first and list(haystack[i : i + n]) == list(needle)
        for i in range(len(haystack) - n + 1)
    )


def fact_present(fact: str, answer: str) -> bool:
    """Whether ``fact`` appears in ``answer`` as a contiguous canonical token run.

    Both sides go through :func:`canonical_tokens`, so ``28k`` matches
    ``28,000``.  Matching is on whole tokens (``"7b"`` does not match
    ``"70b"``).  A fact that normalises to nothing is never present.

    >>> fact_present("28 thousand", "about 28k examples")
    True
    >>> fact_present("F1 of 90", "an F1 score of 90")
    False
    """
    return _contains(canonical_tokens(answer), canonical_tokens(fact))


def fact_coverage(facts: Sequence[str], answer: str) -> float | None:
    """Share of ``facts`` present in ``answer`` (``None`` when there are no facts).

    >>> fact_coverage(["7B", "2.3 BLEU"], "A 7 billion model gains 2.1 BLEU.")
    0.5
    >>> fact_coverage([], "anything") is None
    True
    """
    if not facts:
        return None
    answer_toks = canonical_tokens(answer)
    hits = sum(_contains(answer_toks, canonical_tokens(f)) for f in facts)
    return hits / len(facts)


def _f1_tokens(text: str) -> list[str]:
    """Canonical tokens without English articles (SQuAD convention)."""
    return [t for t in canonical_tokens(text) if t not in _ARTICLES]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-tokens F1 between ``prediction`` and ``reference``.

    Tokens are :func:`canonical_tokens` with the articles a/an/the removed.
    If either side has no tokens the score is 1.0 when both are empty and
    0.0 otherwise.

    >>> token_f1("28k tokens", "28,000 tokens")
    1.0
    >>> token_f1("", "")
    1.0
    """
    pred, ref = _f1_tokens(prediction), _f1_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1_facts(facts: Sequence[str], answer: str) -> float | None:
    """Token F1 of ``answer`` against the gold ``facts`` joined by spaces.

    Returns ``None`` when there are no facts.

    >>> token_f1_facts(["7B parameters", "2T tokens"], "7 billion parameters, 2 trillion tokens")
    1.0
    >>> token_f1_facts([], "x") is None
    True
    """
    if not facts:
        return None
    return token_f1(answer, " ".join(facts))
