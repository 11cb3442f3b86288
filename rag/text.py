"""Sentences with their character offsets, and the words and claims in them.

Evidence and citations work on sentences: an abstract is split into sentences that remember
where they stand (``start``/``end`` offsets into the abstract, so the UI can highlight a quote),
and a sentence's claims are its numbers and names, which a supporting quote must contain.

Example:
    >>> [(s.text, s.start) for s in split_sentences("We use e.g. CLIP. It gets 23.7% on MMMU (vs. 20%).")]
    [('We use e.g. CLIP.', 0), ('It gets 23.7% on MMMU (vs. 20%).', 18)]
    >>> numbers("over 28,000 samples, 1.5M pairs and 3K tasks")
    ['28000', '1500000', '3000']
    >>> names("How does CMM-Math (a 4M-sample set?) compare with GPT-4o and 7B models on MathVista?")
    ['CMM-Math', '4M-sample', 'GPT-4o', 'MathVista']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
import unicodedata
from decimal import Decimal, InvalidOperation

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace and an
# upper-case letter, digit or opening quote/bracket. Abbreviations below never end a sentence.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|et al|etc|vs|cf|Fig|Figs|Eq|Eqs|Sec|No|approx|resp|incl|Dr|Prof|Inc|Ltd|St)|\b[A-Z])\.$")
_WORD = re.compile(r"\d+(?:[.,]\d+)*%?|[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
_NUM = re.compile(r"(?<![A-Za-z0-9.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(%|[kKmMbB]\b|thousand\b|million\b|billion\b)?")
_MAG = {"k": 10**3, "thousand": 10**3, "m": 10**6, "million": 10**6, "b": 10**9, "billion": 10**9}
_NAME = re.compile(r"\b(?:[A-Za-z]*[A-Z][A-Za-z]*[0-9A-Z][A-Za-z0-9]*|[A-Z][a-z]+[A-Z][A-Za-z0-9]*|[A-Za-z]+[0-9]+[A-Za-z0-9]*"
                   r"|[0-9]+[A-Z][A-Za-z0-9]*)(?:[-.][A-Za-z0-9]+)*\b")
# TeX accents in names: \"u, \'e, \~n; the letter stays, the accent goes
TEX_ACCENT_RE = re.compile(r"\\[\"'`^~=.uvHc]\s*\{?([A-Za-z])\}?")
_QUANTITY = re.compile(r"^[0-9.,]+[KMBT]$")  # 7B, 28K: numbers, not names

STOPWORDS = frozenset(
    "a an the and or of to in on for with by from as at is are was were be been being it its this that these those "
    "which who what when where how why does do did has have had can could will would should may might not no "
    "than then there their they them we our you your he she his her also such into over about using used use "
    "based via between both each more most other some any all paper papers work works study studies propose "
    "proposed proposes introduce introduced introduces present presents presented show shows shown new "
    "i me my please tell explain describe give list which whose whom".split()
)


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offset of the first character in the source text
    end: int  # offset after the last character

    def __str__(self) -> str:
        return self.text


def split_sentences(text: str) -> list[Sentence]:
    """Split text into sentences; ``text[s.start:s.end] == s.text`` for each."""
    out: list[Sentence] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        cut = m.start() + (len(m.group(0)) - len(m.group(0).lstrip("\"')]")))  # keep a closing quote/bracket
        piece = text[start:cut]
        if _ABBREV.search(piece.rstrip("\"')]")):
            continue
        _add(out, text, start, cut)
        start = m.end()
    _add(out, text, start, len(text))
    return out


def _add(out: list[Sentence], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Sentence(text[start:end], start, end))


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def flat(text: str) -> str:
    """Lower case, letters and digits only: how names are matched ("Qwen2 VL" matches "Qwen2-VL").

    >>> flat("Qwen2-VL (7B)")
    'qwen2vl7b'
    """
    return _NON_ALNUM.sub("", text.lower())


def words(text: str) -> list[str]:
    """Lower-cased words, hyphenated compounds and numbers kept whole (``clap-style``, ``28,000``).

    >>> words("CLAP-style, 28,000 samples (2.5%)")
    ['clap-style', '28,000', 'samples', '2.5%']
    """
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Words that carry meaning: no stopwords; hyphenated compounds also give their parts.

    >>> content_words("a CLAP-style model for the audio")
    ['clap-style', 'clap', 'style', 'model', 'audio']
    """
    out = []
    for w in words(text):
        if w in STOPWORDS or (len(w) < 3 and not w[0].isdigit()):
            continue
        out.append(w)
        if "-" in w:
            out.extend(p for p in w.split("-") if len(p) > 2 and p not in STOPWORDS)
    return out


def numbers(text: str) -> list[str]:
    """Numbers in canonical form: thousands separators dropped, k/M/B and words multiplied out, % kept."""
    return [canonical for canonical, _ in number_mentions(text)]


def number_mentions(text: str) -> list[tuple[str, str]]:
    """(canonical form, text as written) of each number in ``text``.

    >>> number_mentions("only 5,000 samples (2.5%)")
    [('5000', '5,000'), ('2.5%', '2.5%')]
    """
    out = []
    for m in _NUM.finditer(text):
        try:
            value = Decimal(m.group(1).replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
            continue
        unit = (m.group(2) or "").lower()
        if unit in _MAG:
            value *= _MAG[unit]
        s = format(value.normalize(), "f")
        out.append((s + ("%" if unit == "%" else ""), m.group(0).strip()))
    return out


_PROPER = re.compile(r"(?<![.!?:]\s)(?<!^)(?<![-\w])[A-Z][a-z]{2,}\b(?!-)")


def proper_nouns(text: str) -> list[str]:
    """Capitalised words that do not start a sentence ("University", "Berkeley"): names of places and things.

    >>> proper_nouns("MM-Vet authors are at the University of California, Berkeley. They use GPT-4.")
    ['University', 'California', 'Berkeley']
    """
    return list(dict.fromkeys(w for w in _PROPER.findall(text) if w.lower() not in STOPWORDS))


def names(text: str) -> list[str]:
    """Tokens that look like names: acronyms, CamelCase, letters mixed with digits (GPT-4o, CMM-Math, MMMU)."""
    seen: dict[str, None] = {}
    for m in _NAME.finditer(text):
        seen.setdefault(m.group(0).rstrip(".-"), None)
    return [n for n in seen if len(n) > 1 and not _QUANTITY.match(n)]


def fold(text: str) -> str:
    """Case-folded, accent-free, TeX-free, punctuation as spaces: how names are compared.

    >>> fold("M\\\\\\"uller, J.-P."), fold("Zoë  O'Neil")
    ('muller j p', 'zoe o neil')
    """
    text = TEX_ACCENT_RE.sub(r"\1", text).replace("{", "").replace("}", "")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())
