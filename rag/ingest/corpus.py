"""Corpus readers: saved "trending papers" pages, JSONL, and the arXiv metadata snapshot.

Every reader yields ``Entry`` records (one per appearance of a paper) and ``Skip`` records (a
line that cannot be used, with its file, line and reason); nothing is raised for a bad record,
so one damaged line never stops a 2.7M-line snapshot. ``collect_papers`` deduplicates entries
into ``Paper`` objects that remember every page/date where the paper appeared.

Identity: a paper is its arXiv id when the record has one (``"id": "1706.03762"``; a version
suffix ``v2`` is dropped, so versions update the same paper), else its normalised title. When
one paper has several abstracts, ``entry_rank`` picks one independently of file order: for an
arXiv id the newest ``update_date``, then the longest abstract, then the smallest content hash.

Page format (``data/sample/*.txt``): 4 header lines (``new``, ``Get trending papers...``,
``Subscribe``, ``byAK and the research community``), a date line (``Mar 13``), then
alternating title / abstract lines; blank lines are ignored.

JSONL: one object per line with at least ``title`` and ``abstract``. The arXiv snapshot
(``arxiv-metadata-oai-snapshot.json``) is the same shape with ``id``, ``authors``,
``categories`` and ``update_date``; it is streamed line by line, and each entry knows the byte
offset of its line, so a record can be read again later without re-reading the file
(``read_entry_at``). A UTF-8 byte order mark at the start of a file is accepted.

Example:
    >>> normalize_text("Gains of 23.7\\\\%  and\\n 31\\\\%")
    'Gains of 23.7% and 31%'
    >>> e = [Entry("A Title", "x", "p1", "Mar 1"), Entry("A Title", "x", "p2", "Mar 2")]
    >>> [(p.title, p.pages) for p in collect_papers(e)]
    [('A Title', ['p1 (Mar 1)', 'p2 (Mar 2)'])]
    >>> paper_key("Attention", {"id": "1706.03762v5"}), paper_key("Attention  Is All", {})
    ('arxiv:1706.03762', 'attention is all')
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Union

from rag.errors import CorpusError
from rag.ingest.metadata import record_metadata

log = logging.getLogger(__name__)

PAPER_NAMESPACE = uuid.UUID("6f1c1c52-8a57-4d0e-9a3c-2a7f4f0b9d11")
PAGE_HEADER = ("new", "Get trending papers in your email inbox!", "Subscribe", "byAK and the research community")
DATE_RE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2}(, \d{4})?$")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")
ARXIV_ID_RE = re.compile(r"^(?:arxiv:)?(\d{4}\.\d{4,5}|[a-z][a-z.\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$", re.IGNORECASE)
_TEX_ESCAPE = re.compile(r"\\([%&_#$'{}])")
_TEX_QUOTES = re.compile(r"``|''")
MAX_TITLE_CHARS = 1000
MAX_FIELD_CHARS = 100_000
BOM = b"\xef\xbb\xbf"
CORPUS_SUFFIXES = (".txt", ".jsonl", ".json")


@dataclass(frozen=True)
class Entry:
    """One appearance of a paper in a source file."""

    title: str
    abstract: str
    source: str  # file name
    date: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    line: int = 0  # 1-based line of the record (a page entry: its title line)
    offset: int = 0  # byte offset of that line in the file

    @property
    def key(self) -> str:
        return paper_key(self.title, self.extra)

    @property
    def where(self) -> str:
        return where(self.source, self.date)


@dataclass(frozen=True)
class Skip:
    """A record that was not used: where it is, a short reason id and a sentence for people."""

    path: str
    line: int
    reason: str
    detail: str

    @property
    def message(self) -> str:
        return f"{self.path}:{self.line}: {self.detail}"


Record = Union[Entry, Skip]


@dataclass
class Paper:
    """A unique paper: canonical title and abstract plus where it appeared."""

    title: str
    abstract: str
    pages: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return paper_key(self.title, self.metadata)

    @property
    def paper_id(self) -> str:
        """Deterministic id: uuid5 of the arXiv id ('arxiv:...') or of the normalised title."""
        return paper_id_of(self.key)


def where(source: str, date: str) -> str:
    """How a paper's ``pages`` name one appearance: 'file (date)', or 'file' without a date."""
    return f"{source} ({date})" if date else source


def normalize_text(text: str) -> str:
    """Collapse whitespace and undo TeX escapes (``23\\%`` -> ``23%``)."""
    text = _TEX_ESCAPE.sub(r"\1", text)
    text = _TEX_QUOTES.sub('"', text)
    return " ".join(text.split())


def title_key(title: str) -> str:
    """Key for deduplication: normalised, case-folded title."""
    return normalize_text(title).casefold()


def arxiv_id(extra: dict) -> str | None:
    """The version-less arXiv id of a record's ``id`` field, or None when it is not an arXiv id."""
    raw = extra.get("id")
    m = ARXIV_ID_RE.match(raw.strip()) if isinstance(raw, str) else None
    return m.group(1).lower() if m else None


def paper_key(title: str, extra: dict) -> str:
    """Identity of a paper: 'arxiv:<id>' when the record has an arXiv id, else the title key."""
    aid = arxiv_id(extra)
    return f"arxiv:{aid}" if aid else title_key(title)


def paper_id_of(key: str) -> str:
    return str(uuid.uuid5(PAPER_NAMESPACE, key))


def text_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def content_hash(title: str, abstract: str) -> str:
    """Hash of what a paper's chunks embed: title + abstract (not pages, dates or metadata)."""
    return text_hash(title, abstract)


def entry_rank(key: str, date: str, abstract_len: int, chash: str) -> tuple:
    """Sort key among the entries of one paper: the smallest gives the paper its title and abstract.

    An arXiv paper takes its newest version (ISO ``update_date``); then the longest abstract; then
    the smallest content hash, so the choice never depends on the order files are read in.
    """
    newest = 0
    if key.startswith("arxiv:") and ISO_DATE_RE.match(date):
        newest = -int(date[:10].replace("-", ""))
    return (newest, -abstract_len, chash)


def _rank(e: Entry) -> tuple:
    return entry_rank(e.key, e.date, len(e.abstract), content_hash(e.title, e.abstract))


# -- readers ------------------------------------------------------------------------------


def _check_pair(path: Path, tn: int, title: str, an: int, abstract: str) -> Skip | None:
    if not title:
        return Skip(str(path), tn, "empty_title", "empty title")
    if not abstract:
        return Skip(str(path), an, "empty_abstract", f"empty abstract for {title[:80]!r}")
    if len(title) > MAX_TITLE_CHARS:
        return Skip(str(path), tn, "title_too_long",
                    f"title is {len(title)} characters; is this an abstract (titles and abstracts out of step)?")
    if len(abstract) > MAX_FIELD_CHARS:
        return Skip(str(path), an, "abstract_too_long", f"abstract is {len(abstract)} characters (limit {MAX_FIELD_CHARS})")
    return None


def _lines(data: bytes, start: int = 0, line: int = 0) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw line) for each line of ``data`` from ``start``; a leading BOM is dropped."""
    pos = start
    if pos == 0 and data.startswith(BOM):
        pos = len(BOM)
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        line += 1
        yield line, pos, data[pos:end]
        pos = end


def read_pages(path: Path) -> Iterator[Record]:
    """Read one saved trending-papers page."""
    path = Path(path)
    data = _read_bytes(path)
    lines = []
    for n, off, raw in _lines(data):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            yield Skip(str(path), n, "not_utf8", "not UTF-8 text; save the file as UTF-8 (the whole page is skipped)")
            return
        if text:
            lines.append((n, off, text))
    header = tuple(ln for _, _, ln in lines[: len(PAGE_HEADER)])
    if header != PAGE_HEADER:
        yield Skip(str(path), 1, "not_a_page", f"not a trending-papers page (expected the header lines {PAGE_HEADER!r})")
        return
    if len(lines) <= len(PAGE_HEADER) or not DATE_RE.match(lines[len(PAGE_HEADER)][2]):
        n = lines[len(PAGE_HEADER)][0] if len(lines) > len(PAGE_HEADER) else data.count(b"\n") + 1
        yield Skip(str(path), n, "no_date", "expected a date line such as 'Mar 13' after the header")
        return
    date = lines[len(PAGE_HEADER)][2]
    body = lines[len(PAGE_HEADER) + 1 :]
    for (tn, toff, title), (an, _, abstract) in zip(body[::2], body[1::2]):
        skip = _check_pair(path, tn, title, an, abstract)
        yield skip or Entry(normalize_text(title), normalize_text(abstract), path.name, date, {}, tn, toff)
    if len(body) % 2:
        yield Skip(str(path), body[-1][0], "title_without_abstract", "title without an abstract (titles and abstracts must alternate)")


def parse_json_record(path: Path, n: int, offset: int, raw: bytes) -> Record | None:
    """One JSON line -> Entry, Skip, or None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Skip(str(path), n, "not_utf8", f"not UTF-8 text (byte {e.start + 1} of the line); save the file as UTF-8")
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return Skip(str(path), n, "invalid_json", f"invalid JSON ({e.msg}); each line must be one JSON object")
    if not isinstance(obj, dict):
        return Skip(str(path), n, "not_object", "expected a JSON object with 'title' and 'abstract'")
    title, abstract = obj.get("title"), obj.get("abstract")
    if not isinstance(title, str) or not isinstance(abstract, str):
        return Skip(str(path), n, "missing_fields", "missing string fields 'title' and 'abstract'")
    title, abstract = normalize_text(title), normalize_text(abstract)
    skip = _check_pair(path, n, title, n, abstract)
    if skip:
        return skip
    extra = record_metadata(obj)
    date = obj.get("update_date") or obj.get("date") or ""
    return Entry(title, abstract, path.name, str(date), extra, n, offset)


def read_jsonl(path: Path, start: int = 0, start_line: int = 0) -> Iterator[Record]:
    """Read JSON lines ``{"title", "abstract", ...}`` from byte ``start`` (line ``start_line`` done);
    arXiv snapshot fields are kept as metadata. Streams: memory does not grow with the file."""
    path = Path(path)
    with _open_bytes(path) as f:
        f.seek(start)
        pos, n = start, start_line
        for raw in f:
            n += 1
            if pos == 0 and raw.startswith(BOM):
                raw, pos = raw[len(BOM):], len(BOM)
            rec = parse_json_record(path, n, pos, raw)
            pos += len(raw)
            if rec is not None:
                yield rec


def read_file(path: Path, start: int = 0, start_line: int = 0) -> Iterator[Record]:
    """Records of one corpus file (format by suffix); JSON lines can start at a byte offset."""
    path = Path(path)
    if path.suffix == ".txt":
        if start:
            raise ValueError("pages are always read whole")
        return read_pages(path)
    if path.suffix in (".jsonl", ".json"):
        return read_jsonl(path, start, start_line)
    raise CorpusError(f"{path}: unknown format (use .txt trending pages, or .jsonl / .json JSON lines)")


def read_entry_at(path: Path, offset: int, line: int) -> Record | None:
    """The record that starts at byte ``offset`` (line ``line``) of ``path``, read again."""
    path = Path(path)
    with _open_bytes(path) as f:
        f.seek(offset)
        if path.suffix != ".txt":
            return parse_json_record(path, line, offset, f.readline())
        title_raw = f.readline()
        n, abstract_raw = line, b""
        while not abstract_raw.strip():
            abstract_raw = f.readline()
            n += 1
            if not abstract_raw:
                return None
    try:
        title, abstract = title_raw.decode("utf-8").strip(), abstract_raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Skip(str(path), line, "not_utf8", "not UTF-8 text")
    skip = _check_pair(path, line, title, n, abstract)
    return skip or Entry(normalize_text(title), normalize_text(abstract), path.name, "", {}, line, offset)


def input_files(paths: Iterable[str | Path]) -> list[Path]:
    """The corpus files named by ``paths`` (folders: their .txt/.jsonl/.json files, sorted).

    Raises CorpusError for a missing path, an unknown suffix or a folder without corpus files:
    those are mistakes in the command, not damaged records.
    """
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in CORPUS_SUFFIXES and p.is_file())
            if not files:
                raise CorpusError(f"{path}: no .txt, .jsonl or .json files in this folder")
            out.extend(files)
        elif not path.is_file():
            raise CorpusError(f"{path}: no such file or folder")
        elif path.suffix not in CORPUS_SUFFIXES:
            raise CorpusError(f"{path}: unknown format (use .txt trending pages, or .jsonl / .json JSON lines)")
        else:
            out.append(path)
    return out


def read_path(path: str | Path) -> Iterator[Record]:
    """Read a file (format by suffix: .txt page, .jsonl/.json JSON lines) or every such file in a folder."""
    for p in input_files([path]):
        yield from read_file(p)


# -- in-memory dedup (small corpora, tests, benchmarks) -----------------------------------


def collect_papers(entries: Iterable[Entry]) -> list[Paper]:
    """Deduplicate entries by ``paper_key``, keeping first-seen order of papers.

    A paper's title, abstract and metadata come from its best entry (``entry_rank``), so the result
    does not depend on file order; a conflict is logged. Pages are sorted.
    """
    best: dict[str, Entry] = {}
    pages: dict[str, set[str]] = {}
    for e in entries:
        key = e.key
        pages.setdefault(key, set()).add(e.where)
        b = best.get(key)
        if b is None:
            best[key] = e
            continue
        if e.abstract != b.abstract:
            log.warning("two abstracts for %r (%s); keeping the %s one", e.title, e.where, "new" if _rank(e) < _rank(b) else "first")
        if _rank(e) < _rank(b):
            best[key] = e
    return [Paper(e.title, e.abstract, sorted(pages[k]), dict(e.extra)) for k, e in best.items()]


def load_papers(paths: Iterable[str | Path], strict: bool = True) -> list[Paper]:
    """Parse every path completely and deduplicate, in memory.

    ``strict`` (default): the first bad record raises CorpusError naming file and line; otherwise
    bad records are logged and skipped. The streaming ingest (``rag.ingest``) does not use this.
    """
    entries: list[Entry] = []
    for p in paths:
        for rec in read_path(p):
            if isinstance(rec, Skip):
                if strict:
                    raise CorpusError(rec.message)
                log.warning("skipped %s", rec.message)
            else:
                entries.append(rec)
    return collect_papers(entries)


def _open_bytes(path: Path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read: {e.strerror}") from None


def _read_bytes(path: Path) -> bytes:
    with _open_bytes(path) as f:
        return f.read()
