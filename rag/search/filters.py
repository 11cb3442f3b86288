"""Search filters: the fields a search can be restricted to, one language for the CLI, the API and questions.

A filter is a dict ``{field: value}``; a value is a string, a number, or a list of them (any of the values).
Keyword fields match exactly (after ``normalize``: an author is matched by any form of the name that
``rag.ingest.metadata.author_keys`` stores); ``year`` also takes a comparison (``">=2024"``, ``"<2020"``),
a range (``"2021..2023"``) or ``{"gte": 2021, "lte": 2023}``, and its conditions are intersected.
``parse_expression`` reads the CLI's ``FIELD=VALUE`` / ``year>=2024`` form.

Example:
    >>> conditions({"year": [">=2021", "<=2023"], "author": "Ashish Vaswani", "category": "cs.CL"})
    [Condition(key='year', any=(), gte=2021, lte=2023), Condition(key='author_keys', any=('ashish vaswani',), gte=None, lte=None), Condition(key='category_list', any=('cs.CL',), gte=None, lte=None)]
    >>> parse_expression("year>=2024"), parse_expression("author=Jane Doe")
    (('year', '>=2024'), ('author', 'Jane Doe'))
    >>> describe({"year": ">=2024", "category": ["cs.CL", "cs.LG"]})
    'year ≥ 2024, category cs.CL or cs.LG'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from rag.errors import InputError
from rag.text import fold

KEYWORD, INTEGER = "keyword", "integer"
# a comparison in a filter expression or value: ">=2024", "<= 2023", "=2020", "2021..2023"
COMPARISON_RE = re.compile(r"^\s*(>=|<=|>|<|=)?\s*(-?\d+)\s*$")
RANGE_RE = re.compile(r"^\s*(\d+)\s*(?:\.\.|–|-)\s*(\d+)\s*$")
EXPRESSION_RE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<|=)(.*)$", re.DOTALL)


@dataclass(frozen=True)
class FilterField:
    name: str  # what users write
    key: str  # the payload field it filters
    kind: str  # KEYWORD or INTEGER (also the payload index's type)
    help: str
    normalize: Callable[[str], str] = str.strip


FIELDS = {f.name: f for f in (
    FilterField("title", "title", KEYWORD, "the exact title"),
    FilterField("paper_id", "paper_id", KEYWORD, "a paper id (as in search results)"),
    FilterField("date", "dates", KEYWORD, "a page date as saved, e.g. 'Mar 13', or an arXiv record's update_date"),
    FilterField("page", "sources", KEYWORD, "a corpus file name"),
    FilterField("year", "year", INTEGER, "the year of the first version: 2024, >=2024, <2020, 2021..2023"),
    FilterField("category", "category_list", KEYWORD, "an arXiv category among the paper's, e.g. cs.CL"),
    FilterField("primary_category", "primary_category", KEYWORD, "the paper's first arXiv category"),
    FilterField("author", "author_keys", KEYWORD, "an author: full name, last name, or initial and last name", fold),
    FilterField("doi", "doi", KEYWORD, "the DOI"),
)}
INDEXED = {f.key: f.kind for f in FIELDS.values()}  # payload field -> index type, for the stores


@dataclass(frozen=True)
class Condition:
    """One store condition: the payload field matches any of ``any``, or lies in [gte, lte]."""

    key: str
    any: tuple = ()
    gte: int | None = None
    lte: int | None = None


def conditions(filters: dict[str, Any] | None) -> list[Condition]:
    """Validate user filters into store conditions; an InputError says what is wrong and what is allowed."""
    out = []
    for name, value in (filters or {}).items():
        f = FIELDS.get(name)
        if f is None:
            raise InputError(f"unknown filter '{name}': use one of {', '.join(FIELDS)}")
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise InputError(f"filter '{name}' has no value: give one, e.g. {_example(f)}")
        out.append(_integer(f, values) if f.kind == INTEGER else _keyword(f, values))
    return out


def parse_expression(text: str) -> tuple[str, str]:
    """``"year>=2024"`` -> ``("year", ">=2024")``; ``"category=cs.CL"`` -> ``("category", "cs.CL")``."""
    m = EXPRESSION_RE.match(text)
    if not m or not m.group(3).strip():
        raise InputError(f"a filter is FIELD=VALUE or year>=YEAR (fields: {', '.join(FIELDS)}), got {text!r}")
    name, op, value = m.group(1), m.group(2), m.group(3).strip()
    if op != "=" and FIELDS.get(name, FIELDS["title"]).kind != INTEGER:
        raise InputError(f"'{name}' is matched exactly: write {name}=VALUE (only year takes >=, <=, >, <)")
    return name, (value if op == "=" else op + value)


def parse_expressions(items: list[str]) -> dict[str, list[str]]:
    """Repeated CLI ``--filter`` expressions as one filter dict (a field given twice: a list)."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, value = parse_expression(item)
        out.setdefault(name, []).append(value)
    return out


def merge(*filters: dict[str, Any] | None) -> dict[str, Any]:
    """Filters that must all hold: a field in several becomes the list of its values (years intersect)."""
    out: dict[str, list] = {}
    for f in filters:
        for name, value in (f or {}).items():
            out.setdefault(name, []).extend(value if isinstance(value, (list, tuple)) else [value])
    return out


def describe(filters: dict[str, Any] | None) -> str:
    """How a filter reads to people: 'year ≥ 2024, category cs.CL or cs.LG' ('' for none)."""
    parts = []
    for c, name in zip(conditions(filters), (filters or {})):
        if c.any:
            parts.append(f"{name} {' or '.join(str(v) for v in _shown(filters[name]))}")
        elif c.gte is not None and c.gte == c.lte:
            parts.append(f"{name} {c.gte}")
        else:
            bounds = ([f"≥ {c.gte}"] if c.gte is not None else []) + ([f"≤ {c.lte}"] if c.lte is not None else [])
            parts.append(f"{name} {' and '.join(bounds)}")
    return ", ".join(parts)


def _shown(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _keyword(f: FilterField, values: list) -> Condition:
    if not all(isinstance(v, str) and f.normalize(v) for v in values):
        raise InputError(f"filter '{f.name}' needs text values, e.g. {_example(f)}")
    return Condition(f.key, tuple(f.normalize(v) for v in values))


def _integer(f: FilterField, values: list) -> Condition:
    """Equalities are any-of; comparisons and ranges intersect (and with the equalities)."""
    exact, gte, lte = [], None, None
    for v in values:
        lo, hi = _bounds(f, v)
        if lo is not None and lo == hi and not isinstance(v, dict) and not (isinstance(v, str) and RANGE_RE.match(v)):
            exact.append(lo)
            continue
        gte = lo if gte is None or (lo is not None and lo > gte) else gte
        lte = hi if lte is None or (hi is not None and hi < lte) else lte
    if exact and (gte is not None or lte is not None):
        exact = [v for v in exact if (gte is None or v >= gte) and (lte is None or v <= lte)]
        if not exact:
            raise InputError(f"filter '{f.name}': no value satisfies all of {values!r}")
    if exact:
        return Condition(f.key, tuple(exact)) if len(exact) > 1 else Condition(f.key, (), exact[0], exact[0])
    if gte is not None and lte is not None and gte > lte:
        raise InputError(f"filter '{f.name}': the range {values!r} is empty (from {gte} to {lte})")
    return Condition(f.key, (), gte, lte)


def _bounds(f: FilterField, v) -> tuple[int | None, int | None]:
    if isinstance(v, bool):
        raise InputError(f"filter '{f.name}' needs a number, e.g. {_example(f)}")
    if isinstance(v, int):
        return v, v
    if isinstance(v, dict) and v and set(v) <= {"gte", "gt", "lte", "lt"} and all(isinstance(x, int) for x in v.values()):
        lo = v["gte"] if "gte" in v else (v["gt"] + 1 if "gt" in v else None)
        hi = v["lte"] if "lte" in v else (v["lt"] - 1 if "lt" in v else None)
        return lo, hi
    if isinstance(v, str):
        r = RANGE_RE.match(v)
        if r:
            return int(r.group(1)), int(r.group(2))
        m = COMPARISON_RE.match(v)
        if m:
            n, op = int(m.group(2)), m.group(1) or "="
            return {"=": (n, n), ">=": (n, None), ">": (n + 1, None), "<=": (None, n), "<": (None, n - 1)}[op]
    raise InputError(f"filter '{f.name}' needs a number, a comparison or a range, e.g. {_example(f)}; got {v!r}")


def _example(f: FilterField) -> str:
    return {"year": "'>=2024' or '2021..2023'", "category": "'cs.CL'", "author": "'Ashish Vaswani'"}.get(f.name, f"'{f.name} value'")
