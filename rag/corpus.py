"""Corpus readers: saved "trending papers" pages, JSONL, and the arXiv metadata snapshot.

Every reader yields ``Entry`` records (one per appearance of a paper); ``collect_papers``
deduplicates them by normalised title into ``Paper`` objects that remember every
page/date where the paper appeared.

Page format (``data/sample/*.txt``): 4 header lines (``new``, ``Get trending papers...``,
``Subscribe``, ``byAK and the research community``), a date line (``Mar 13``), then
alternating title / abstract lines; blank lines are ignored.

JSONL: one object per line with at least ``title`` and ``abstract``. The arXiv snapshot
(``arxiv-metadata-oai-snapshot.json``) is the same shape with ``id``, ``authors``,
``categories`` and ``update_date``; it is streamed line by line.

Example:
    >>> normalize_text("Gains of 23.7\\\\%  and\\n 31\\\\%")
    'Gains of 23.7% and 31%'
    >>> e = [Entry("A Title", "x", "p1", "Mar 1"), Entry("a title", "x", "p2", "Mar 2")]
    >>> [(p.title, p.pages) for p in collect_papers(e)]
    [('A Title', ['p1 (Mar 1)', 'p2 (Mar 2)'])]
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from rag.errors import CorpusError

log = logging.getLogger(__name__)

PAPER_NAMESPACE = uuid.UUID("6f1c1c52-8a57-4d0e-9a3c-2a7f4f0b9d11")
PAGE_HEADER = ("new", "Get trending papers in your email inbox!", "Subscribe", "byAK and the research community")
DATE_RE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2}(, \d{4})?$")
_TEX_ESCAPE = re.compile(r"\\([%&_#$'{}])")
_TEX_QUOTES = re.compile(r"``|''")
MAX_FIELD_CHARS = 100_000


@dataclass(frozen=True)
class Entry:
    """One appearance of a paper in a source file."""

    title: str
    abstract: str
    source: str  # file name (a page) or file:line
    date: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Paper:
    """A unique paper: canonical title and abstract plus where it appeared."""

    title: str
    abstract: str
    pages: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @property
    def paper_id(self) -> str:
        """Deterministic id: uuid5 of the normalised title."""
        return str(uuid.uuid5(PAPER_NAMESPACE, title_key(self.title)))


def normalize_text(text: str) -> str:
    """Collapse whitespace and undo TeX escapes (``23\\%`` -> ``23%``)."""
    text = _TEX_ESCAPE.sub(r"\1", text)
    text = _TEX_QUOTES.sub('"', text)
    return " ".join(text.split())


def title_key(title: str) -> str:
    """Key for deduplication: normalised, case-folded title."""
    return normalize_text(title).casefold()


def read_pages(path: Path) -> Iterator[Entry]:
    """Read one saved trending-papers page."""
    raw_lines = _read_text(path).splitlines()
    lines = [(n, ln.strip()) for n, ln in enumerate(raw_lines, 1) if ln.strip()]
    header = tuple(ln for _, ln in lines[: len(PAGE_HEADER)])
    if header != PAGE_HEADER:
        raise CorpusError(f"{path}:1: not a trending-papers page (expected the header lines {PAGE_HEADER!r})")
    if len(lines) <= len(PAGE_HEADER) or not DATE_RE.match(lines[len(PAGE_HEADER)][1]):
        n = lines[len(PAGE_HEADER)][0] if len(lines) > len(PAGE_HEADER) else len(raw_lines) + 1
        raise CorpusError(f"{path}:{n}: expected a date line such as 'Mar 13' after the header")
    date = lines[len(PAGE_HEADER)][1]
    body = lines[len(PAGE_HEADER) + 1 :]
    if len(body) % 2:
        raise CorpusError(f"{path}:{body[-1][0]}: title without an abstract (titles and abstracts must alternate)")
    for (tn, title), (an, abstract) in zip(body[::2], body[1::2]):
        _check_pair(path, tn, title, an, abstract)
        yield Entry(normalize_text(title), normalize_text(abstract), path.name, date)


def read_jsonl(path: Path) -> Iterator[Entry]:
    """Read JSON lines: ``{"title", "abstract", ...}``; arXiv snapshot fields are kept as metadata."""
    with _open_bytes(path) as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorpusError(f"{path}:{n}: not UTF-8 text (byte {e.start + 1} of the line); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{n}: invalid JSON ({e.msg}); each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise CorpusError(f"{path}:{n}: expected a JSON object with 'title' and 'abstract'")
            title, abstract = obj.get("title"), obj.get("abstract")
            if not isinstance(title, str) or not isinstance(abstract, str):
                raise CorpusError(f"{path}:{n}: missing string fields 'title' and 'abstract'")
            _check_pair(path, n, title.strip(), n, abstract.strip())
            extra = {k: obj[k] for k in ("id", "authors", "categories", "doi", "url") if isinstance(obj.get(k), str)}
            date = obj.get("update_date") or obj.get("date") or ""
            yield Entry(normalize_text(title), normalize_text(abstract), f"{path.name}:{n}", str(date), extra)


def read_path(path: str | Path) -> Iterator[Entry]:
    """Read a file (format by suffix: .txt page, .jsonl/.json JSON lines) or every such file in a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".txt", ".jsonl", ".json") and p.is_file())
        if not files:
            raise CorpusError(f"{path}: no .txt, .jsonl or .json files in this folder")
        for p in files:
            yield from read_path(p)
        return
    if not path.is_file():
        raise CorpusError(f"{path}: no such file or folder")
    if path.suffix == ".txt":
        yield from read_pages(path)
    elif path.suffix in (".jsonl", ".json"):
        yield from read_jsonl(path)
    else:
        raise CorpusError(f"{path}: unknown format (use .txt trending pages, or .jsonl / .json JSON lines)")


def collect_papers(entries: Iterable[Entry]) -> list[Paper]:
    """Deduplicate entries by normalised title, keeping first-seen order.

    When one title has different abstracts, the longest wins (ties: lexicographically
    smallest), so the result does not depend on file order; the conflict is logged.
    """
    papers: dict[str, Paper] = {}
    for e in entries:
        key = title_key(e.title)
        where = f"{e.source} ({e.date})" if e.date else e.source
        p = papers.get(key)
        if p is None:
            papers[key] = Paper(e.title, e.abstract, [where], dict(e.extra))
            continue
        if where not in p.pages:
            p.pages.append(where)
        if e.abstract != p.abstract:
            best = min((p.abstract, e.abstract), key=lambda a: (-len(a), a))
            log.warning("two abstracts for %r (%s); keeping the %s one", e.title, where, "new" if best == e.abstract else "first")
            p.abstract = best
        for k, v in e.extra.items():
            p.metadata.setdefault(k, v)
    return list(papers.values())


def load_papers(paths: Iterable[str | Path]) -> list[Paper]:
    """Parse every path completely (raising on the first malformed line) and deduplicate."""
    entries: list[Entry] = []
    for p in paths:
        entries.extend(read_path(p))
    return collect_papers(entries)


def _check_pair(path: Path, tn: int, title: str, an: int, abstract: str) -> None:
    if not title:
        raise CorpusError(f"{path}:{tn}: empty title")
    if not abstract:
        raise CorpusError(f"{path}:{an}: empty abstract for {title!r}")
    if len(title) > 1000:
        raise CorpusError(f"{path}:{tn}: title is {len(title)} characters; is this an abstract (titles and abstracts out of step)?")
    if len(abstract) > MAX_FIELD_CHARS:
        raise CorpusError(f"{path}:{an}: abstract is {len(abstract)} characters (limit {MAX_FIELD_CHARS})")


def _open_bytes(path: Path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read: {e.strerror}") from None


def _read_text(path: Path) -> str:
    with _open_bytes(path) as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None
