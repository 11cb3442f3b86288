"""Paper metadata from a JSON record (the arXiv snapshot's shape): what filters and answers can use.

The record's own strings are kept as they are (``id``, ``authors``, ``categories``, ``doi``, ``url``,
``journal-ref``), and the searchable forms are derived once, here:

- ``author_names``: the authors, one name each (from ``authors_parsed`` when the record has it, else
  the ``authors`` string split at commas and "and"); ``author_keys``: every form a user may type
  for them (full name, last name, initial + last name), case-folded, accents and TeX removed.
- ``category_list`` (all categories) and ``primary_category`` (the first one).
- ``year``: the year of the first version (an arXiv id's YYMM, else the first version's date,
  else the record's date); ``versions``: how many versions.

Example:
    >>> m = record_metadata({"id": "2401.01234v2", "authors": "A. Smith, Jos\\\\'e Mu\\\\~noz and Bo Li",
    ...                      "categories": "cs.CL cs.LG", "versions": [{"version": "v1"}, {"version": "v2"}]})
    >>> m["author_names"], m["primary_category"], m["year"], m["versions"]
    (['A. Smith', 'Jose Munoz', 'Bo Li'], 'cs.CL', 2024, 2)
    >>> sorted(m["author_keys"])[:4]
    ['a smith', 'b li', 'bo li', 'j munoz']
"""

from __future__ import annotations

import re

from rag.text import TEX_ACCENT_RE, fold

# the record's own string fields, kept verbatim
KEPT_FIELDS = ("id", "authors", "categories", "doi", "url", "journal-ref")
# the fields this module derives; a paper without the source field has none of them
DERIVED_FIELDS = ("author_names", "author_keys", "category_list", "primary_category", "year", "versions")
METADATA_FIELDS = KEPT_FIELDS + DERIVED_FIELDS

NEW_ARXIV_ID_RE = re.compile(r"^(?:arxiv:)?(\d{2})(\d{2})\.\d{4,5}(?:v\d+)?$", re.IGNORECASE)  # 2401.01234: Jan 2024
OLD_ARXIV_ID_RE = re.compile(r"^(?:arxiv:)?[a-z][a-z.\-]*(?:\.[A-Z]{2})?/(\d{2})(\d{2})\d{3}(?:v\d+)?$", re.IGNORECASE)  # hep-th/9901001
YEAR_RE = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
AUTHOR_SPLIT_RE = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
AUTHOR_NOTE_RE = re.compile(r"\([^)]*\)")  # "A. Smith (MIT)": affiliations in brackets


def record_metadata(obj: dict) -> dict:
    """The metadata fields of one JSON record (see the module docstring); fields the record lacks are absent."""
    out = {k: obj[k] for k in KEPT_FIELDS if isinstance(obj.get(k), str) and obj[k].strip()}
    names = _names(obj)
    if names:
        out["author_names"] = names
        out["author_keys"] = sorted({k for n in names for k in author_keys(n)})
    cats = obj.get("categories")
    if isinstance(cats, str) and cats.split():
        out["category_list"] = cats.split()
        out["primary_category"] = cats.split()[0]
    year = first_year(obj)
    if year:
        out["year"] = year
    versions = obj.get("versions")
    if isinstance(versions, list) and versions:
        out["versions"] = len(versions)
    return out


def author_keys(name: str) -> set[str]:
    """The forms of one author's name a user may type: full, last name, first initial + last name.

    >>> sorted(author_keys("Ashish Vaswani"))
    ['a vaswani', 'ashish vaswani', 'vaswani']
    """
    words = fold(name).split()
    if not words:
        return set()
    keys = {" ".join(words), words[-1]}
    if len(words) > 1:
        keys.add(f"{words[0][0]} {words[-1]}")
    return keys


def first_year(obj: dict) -> int | None:
    """The year of a record's first version: its arXiv id, else its first version's date, else its date."""
    ident = obj.get("id")
    if isinstance(ident, str):
        m = NEW_ARXIV_ID_RE.match(ident.strip()) or OLD_ARXIV_ID_RE.match(ident.strip())
        if m:
            yy = int(m.group(1))
            return (1900 if yy >= 90 else 2000) + yy
    versions = obj.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        m = YEAR_RE.search(str(versions[0].get("created", "")))
        if m:
            return int(m.group(1))
    for key in ("year", "published", "update_date", "date"):
        m = YEAR_RE.search(str(obj.get(key) or ""))
        if m:
            return int(m.group(1))
    return None


def _names(obj: dict) -> list[str]:
    """One name per author: ``authors_parsed`` ([last, first, suffix]) when it lists them all, else ``authors`` split."""
    from_string = []
    authors = obj.get("authors")
    if isinstance(authors, str):
        text = AUTHOR_NOTE_RE.sub(" ", TEX_ACCENT_RE.sub(r"\1", authors).replace("{", "").replace("}", ""))
        from_string = [" ".join(n.split()) for n in AUTHOR_SPLIT_RE.split(" ".join(text.split())) if n.strip()]
    parsed = obj.get("authors_parsed")
    if isinstance(parsed, list) and parsed and all(isinstance(a, list) and a for a in parsed) and len(parsed) >= len(from_string):
        names = [" ".join(str(p) for p in (a[1:2] + a[0:1] + a[2:3]) if p) for a in parsed]
        return [TEX_ACCENT_RE.sub(r"\1", n).replace("{", "").replace("}", "") for n in names if n.strip()]
    return from_string
