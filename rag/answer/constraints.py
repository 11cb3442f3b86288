"""A question's own search filters: the years, arXiv categories and authors it states.

"Papers since 2024 on speculative decoding in cs.CL" is a search for "speculative decoding" restricted to
year >= 2024 and category cs.CL (``rag.search.filters``). ``find`` reads each constraint from one named
pattern below and returns the filters with the question rewritten without them (the phrase "since 2024" is
a filter, not a topic the abstracts must mention). Whether the index can apply them (does it store years,
categories, authors? is there such an author?) is the pipeline's check (``Answerer._scope``).

An author is found two ways: after an explicit marker ("papers by", "authored by", "author: X", "X's papers",
"has X proposed"), where the name must exist in the index or the question is refused as filtered to nothing;
and after a plain "by" followed by a capitalised name ("a method by Jane Doe"), which is applied only when
such an author is indexed (it may be an organisation: "proposed by Google").

Example:
    >>> c = find("Which papers since 2024 on speculative decoding are in cs.CL?")
    >>> c.filters, c.text
    ({'year': ['>=2024'], 'category': ['cs.CL']}, 'Which papers on speculative decoding are?')
    >>> c = find("What has Jane Doe proposed for image generation between 2021 and 2023?")
    >>> c.filters, c.loose_authors, c.text
    ({'year': ['2021..2023'], 'author': ['Jane Doe']}, ('Jane Doe',), 'What has the author proposed for image generation?')
    >>> find("How does CLIP do on COCO 2017?").filters
    {}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from rag.search.filters import FIELDS, describe, merge
from rag.text import STOPWORDS

YEAR = r"((?:19[5-9]|20\d)\d)"
# "between 2021 and 2023", "from 2021 to 2023", "2021-2023", "in 2021–2023": a range
YEAR_RANGE_RE = re.compile(rf"\b(?:(?:published|released|appeared)\s+)?(?:(?:between|from|in)\s+)?{YEAR}\s*(?:-|–|to|and|until)\s*{YEAR}\b", re.I)
# "since 2024", "after 2022", "before 2020", "in 2023", "from 2022 onwards", "2024 papers", "as of 2023"
YEAR_BOUND_RE = re.compile(rf"\b(?:(?:published|released|appeared|written|submitted)\s+)?(since|after|from|before|until|up to|through|"
                           rf"in|during)\s+(?:the\s+year\s+)?{YEAR}(?:\s+(?:onwards?|and\s+(?:later|after)))?\b(?!\s*[-–.]\d)",
                           re.I)
YEAR_ADJECTIVE_RE = re.compile(rf"\b{YEAR}\s+(?=(?:papers?|work|articles?|preprints?|publications?)\b)", re.I)
# a bare year right after the word for papers: "conformal prediction papers 2022"
YEAR_AFTER_PAPERS_RE = re.compile(rf"\b(papers?|preprints?|articles?|publications?)\s+{YEAR}\b(?!\s*[-–.]\d)", re.I)
# "in the last 2 years", "over the past three years", "this year", "last year"
YEARS_BACK_RE = re.compile(r"\b(?:in|over|from|during)\s+the\s+(?:last|past)\s+(\d+|two|three|four|five|ten)\s+years?\b|"
                           r"\b(this|last)\s+year(?:'s)?\b", re.I)
WORD_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}
# arXiv categories: cs.CL, stat.ML, eess.AS, math.OC, q-bio.NC, and the whole-archive ones (quant-ph, hep-th, ...)
CATEGORY = (r"(?:cs|stat|math|eess|econ|q-bio|q-fin|physics|astro-ph|cond-mat|nlin)\.[A-Za-z]{2}\b|"
            r"\b(?:quant-ph|hep-th|hep-ph|hep-ex|hep-lat|gr-qc|nucl-th|nucl-ex|math-ph)")
CATEGORY_RE = re.compile(rf"(?:\b(?:in|from|on|under|within)\s+(?:the\s+)?(?:arxiv\s+)?)?\(?\b({CATEGORY})\)?"
                         r"(?:\s+(?:category|categories|section|archive))?", re.I)
NAME_WORD = r"(?:[A-Z][\w'\-]*\.?|van|von|de|der|da|di|la|le)"
NAME = rf"((?:{NAME_WORD}\s+){{0,3}}[A-Z][\w'\-]+)"
LOOSE_NAME = r"((?:[\w'\-]+\.?\s+){0,2}?[\w'\-]+?)"  # any case, after an explicit marker, up to the next clause word
# where a name ends: "et al." (dropped), a clause word, punctuation (a full stop after a word, not after an initial)
NAME_END = (r"(?:\s+et\s+al\b\.?)?(?=\s+(?:on|about|in|for|that|which|who|with|since|from|after|before|between|during|regarding|"
            r"and|or|propose\w*|publish\w*|introduce\w*|present\w*)\b|\s*[?,;:)]|(?<=\w\w)\.|\s*$)")
PAPERS = r"(?:papers?|work|articles?|research|publications?|preprints?)"
# explicit: the name is an author (refused if the index has no such author). After "papers by", "authored by" the
# name may be typed in lower case ("papers by hinton"); after "papers from/of" it must be capitalised ("papers of
# interest" names nobody)
AUTHOR_BY_MARKED_RE = re.compile(rf"\b(?:{PAPERS}\s+(?:written\s+)?by|authored\s+by|written\s+by|co-?authored\s+by)\s+"
                                 rf"{LOOSE_NAME}{NAME_END}", re.I)
AUTHOR_FROM_MARKED_RE = re.compile(rf"\b(?i:{PAPERS}\s+(?:from|of))\s+{NAME}{NAME_END}")
AUTHOR_LABEL_RE = re.compile(rf"\b[Aa]uthors?(?::|\s+is|\s+was)?\s+{NAME}")  # "author: J. Doe speculative decoding"
AUTHOR_POSSESSIVE_RE = re.compile(rf"\b{NAME}'s?\s+(?=(?:[\w-]+\s+){{0,3}}{PAPERS}\b)")  # "Vaswani's (attention) papers"
# loose: applied only when the index knows such an author ("What does Stable Diffusion propose" names a model)
AUTHOR_SUBJECT_RE = re.compile(rf"\b(?:has|have|did|does)\s+{NAME}\s+(?=(?:propose|publish|introduce|present|write|develop|"
                               rf"work|stud|show|find|found)\w*\b)")
AUTHOR_BY_RE = re.compile(rf"\bby\s+{NAME}{NAME_END}")
# two adjacent words (overlapping: "a b c" gives "a b" and "b c"), for names typed without a marker
TWO_WORDS_RE = re.compile(r"(?<![\w'-])(?=([A-Za-z][\w'-]*\.?)\s+([A-Za-z][\w'-]+)(?![\w'-]))")


@dataclass(frozen=True)
class Constraints:
    """What ``find`` read: the filters, the question without them, and which authors were marked explicitly."""

    filters: dict = field(default_factory=dict)  # "year" / "category" / "author" -> list of values (rag.search.filters)
    text: str = ""  # the question with the constraint phrases taken out
    strict_authors: tuple[str, ...] = ()  # authors after an explicit marker: the index must have them
    loose_authors: tuple[str, ...] = ()  # "by Name" and the like, applied because the index has such an author
    unavailable: tuple[str, ...] = ()  # fields the question states but the index does not store ("year"): not applied

    def __bool__(self) -> bool:
        return bool(self.filters)


class Index(Protocol):
    """What ``find`` asks of the index: does it store a field at all, and does it have this author."""

    def has_field(self, name: str) -> bool: ...

    def has_author(self, name: str) -> bool: ...


class StoreIndex:
    """``Index`` over a ``VectorStore``: a field is stored when some point has it; an author when a point matches."""

    def __init__(self, store):
        self.store = store

    def has_field(self, name: str) -> bool:
        return self.store.has_field(FIELDS[name].key)

    def has_author(self, name: str) -> bool:
        return bool(self.store.scroll({"author": name}, [], 1))


@dataclass(frozen=True)
class Scope:
    """The filters a question is searched with: the caller's and the question's own, and how they read."""

    filters: dict | None  # what retrieval gets (None: no filter)
    text: str  # the question as searched (without its constraint phrases)
    label: str = ""  # 'year ≥ 2024, category cs.CL': shown with the sources ("filtered: ...")
    note: str = ""  # a constraint the index could not apply, said to the user
    empty: str = ""  # when the question's filters match no paper: the sentence that says so


def scope(text: str, filters: dict | None, store) -> Scope:
    """The Scope of a question over ``store`` (``find`` with the store's fields and authors)."""
    found = find(text, StoreIndex(store))
    note = (f"The indexed papers have no {' or '.join(UNAVAILABLE_WORDS[n] for n in found.unavailable)} data, "
            f"so the question's {' and '.join(found.unavailable)} constraint was not applied.") if found.unavailable else ""
    if not found:
        return Scope(filters or None, text, describe(filters) if filters else "", note)
    merged = merge(filters, found.filters)
    label = describe(merged)
    empty = ""
    if not store.scroll(merged, [], 1):
        missing = [a for a in found.strict_authors if not StoreIndex(store).has_author(a)]
        why = f"no indexed paper has an author named {', '.join(repr(a) for a in missing)}" if missing else \
            "no indexed paper meets all of it"
        empty = f"No indexed paper matches this question's filter ({label}): {why}."
    return Scope(merged, found.text, label, note, empty)


UNAVAILABLE_WORDS = {"year": "year", "category": "arXiv category", "author": "author"}


def find(text: str, index: Index | None = None, today: date | None = None) -> Constraints:
    """The year, category and author constraints ``text`` states, and ``text`` without them.

    ``index``: a constraint on a field the index does not store is left in the text and named in
    ``unavailable``; a loose author the index does not have is left in the text. None: every constraint applies.
    """
    filters: dict[str, list[str]] = {}
    strict, loose, unavailable = [], [], []

    def usable(name: str) -> bool:
        if index is None or index.has_field(name):
            return True
        if name not in unavailable:
            unavailable.append(name)
        return False

    def add(m: re.Match, name: str, value: str, replacement: str = " ") -> str:
        if not usable(name):
            return m.group(0)
        filters.setdefault(name, [])
        if value not in filters[name]:
            filters[name].append(value)
        return replacement

    def year_range(m: re.Match) -> str:
        lo, hi = sorted((m.group(1), m.group(2)))
        return add(m, "year", f"{lo}..{hi}")

    text_out = YEAR_RANGE_RE.sub(year_range, text)
    text_out = YEAR_BOUND_RE.sub(lambda m: add(m, "year", _bound(m.group(1), int(m.group(2)))), text_out)
    text_out = YEAR_ADJECTIVE_RE.sub(lambda m: add(m, "year", m.group(1)), text_out)
    text_out = YEAR_AFTER_PAPERS_RE.sub(lambda m: add(m, "year", m.group(2), m.group(1)), text_out)
    this_year = (today or date.today()).year
    text_out = YEARS_BACK_RE.sub(lambda m: add(m, "year", _back(m, this_year)), text_out)
    text_out = CATEGORY_RE.sub(lambda m: add(m, "category", _category(m.group(1))), text_out)

    def author(m: re.Match, replacement: str, explicit: bool) -> str:
        name = " ".join(m.group(1).split())
        if not is_name(name):
            return m.group(0)
        if not explicit and name not in strict and index is not None and not (index.has_field("author") and index.has_author(name)):
            return m.group(0)  # "proposed by Google", "does PixelWorld propose": not an author here, so words of the topic
        if explicit and not usable("author"):
            return m.group(0)
        (strict if explicit else loose).append(name)
        return add(m, "author", name, replacement)

    text_out = AUTHOR_BY_MARKED_RE.sub(lambda m: author(m, " " + _marker_noun(m.group(0)), True), text_out)
    text_out = AUTHOR_FROM_MARKED_RE.sub(lambda m: author(m, " " + _marker_noun(m.group(0)), True), text_out)
    text_out = AUTHOR_LABEL_RE.sub(lambda m: author(m, " ", True), text_out)
    text_out = AUTHOR_POSSESSIVE_RE.sub(lambda m: author(m, " ", True), text_out)
    text_out = AUTHOR_SUBJECT_RE.sub(lambda m: author(m, m.group(0).split()[0] + " the author ", False), text_out)
    text_out = AUTHOR_BY_RE.sub(lambda m: author(m, " ", False), text_out)
    if index is not None and not strict and not loose and index.has_field("author"):
        text_out = _unmarked_author(text_out, index, loose, add)
    return Constraints(filters, tidy(text_out) if filters else text, tuple(dict.fromkeys(strict)),
                       tuple(dict.fromkeys(loose)), tuple(unavailable))


def _unmarked_author(text: str, index: Index, loose: list, add) -> str:
    """A terse query that names an author without a marker ("bo li diffusion papers"): two adjacent words that are
    an indexed author's full name or initial and last name (never one word: last names are common words)."""
    for m in TWO_WORDS_RE.finditer(text):
        name = f"{m.group(1)} {m.group(2)}"
        if is_name(name) and index.has_author(name):
            loose.append(name)
            return text[:m.start(1)] + add(m, "author", name) + text[m.end(2):]
    return text


def is_name(text: str) -> bool:
    """A person's name as users type it: no word of it is a common English word ("the team", "your collection").

    >>> is_name("Jane Doe"), is_name("hinton"), is_name("the team"), is_name("interest")
    (True, True, False, True)
    """
    return all(w.casefold().strip(".") not in STOPWORDS for w in text.split())


def tidy(text: str) -> str:
    """Whitespace and punctuation left behind where phrases were taken out.

    >>> tidy("Which papers  on X are ?")
    'Which papers on X are?'
    """
    text = re.sub(r"\s+([?,.;:!])", r"\1", " ".join(text.split()))
    text = re.sub(r"\b(in|on|from|of|by|and)\s*([?.!])$", r"\2", text)
    text = re.sub(r"([,;])\s*([?.!])$", r"\2", text)
    return text.strip(" ,;") or text


def _bound(word: str, year: int) -> str:
    word = word.casefold()
    if word in ("since", "from"):
        return f">={year}"
    if word == "after":
        return f">{year}"
    if word == "before":
        return f"<{year}"
    if word in ("until", "up to", "through"):
        return f"<={year}"
    return str(year)  # in, during


def _back(m: re.Match, this_year: int) -> str:
    if m.group(2):
        return str(this_year if m.group(2).casefold() == "this" else this_year - 1)
    n = int(m.group(1)) if m.group(1).isdigit() else WORD_NUMBERS[m.group(1).casefold()]
    return f">={this_year - n + 1}"


def _category(code: str) -> str:
    """'CS.cl' -> 'cs.CL'; 'Quant-Ph' -> 'quant-ph' (how arXiv writes them)."""
    if "." in code:
        archive, sub = code.split(".", 1)
        return f"{archive.lower()}.{sub.upper()}"
    return code.lower()


def _marker_noun(phrase: str) -> str:
    """What stays of "papers by X": "papers" (the question still asks for papers)."""
    first = phrase.split()[0]
    return first if first.casefold().startswith(("paper", "work", "article", "research", "publication", "preprint")) else ""
