"""What ingest remembers between runs, on disk (SQLite), so memory does not grow with the corpus.

* ``files``: one row per input file: size, mtime, sha256 once read to the end, and how far it was
  read (byte offset and line of the last record committed). A re-run skips a file whose size and
  mtime (or, if only the mtime moved, content hash) are unchanged, without parsing it; a file whose
  reading was interrupted is resumed at that offset; a changed file is read again from the start,
  replacing its entries.
* ``entries``: one row per record read (file, line, byte offset, paper key, content hash, abstract
  length, date, metadata hash). Texts are not stored: a paper's text is read again from its file
  at its offset when it is written to the index.
* ``dirty``: paper keys whose entries changed in this run and must be resolved again.
* ``papers``: per paper key, the content hash and metadata hash last written to the index, and
  ``pending`` ('new', 'update' or 'payload') until the index holds its current version.

Resolving a paper (``resolve``) picks its best entry with ``rag.ingest.corpus.entry_rank`` and collects its
pages from all its entries, exactly as ``collect_papers`` does in memory. Every step commits in
small transactions, so a run killed at any point resumes where it stopped. A dry run does all of
it in one transaction that is rolled back.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from rag.ingest.corpus import Entry, content_hash, entry_rank, text_hash, where
from rag.errors import StoreError

SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, path TEXT UNIQUE, size INT, mtime_ns INT, sha256 TEXT,
                                 done INT DEFAULT 0, next_offset INT DEFAULT 0, next_line INT DEFAULT 0);
CREATE TABLE IF NOT EXISTS entries(file_id INT, line INT, offset INT, key TEXT, chash TEXT, alen INT, date TEXT,
                                   xhash TEXT, PRIMARY KEY(file_id, line)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_key ON entries(key);
CREATE TABLE IF NOT EXISTS dirty(key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS papers(key TEXT PRIMARY KEY, chash TEXT, mhash TEXT, chunks INT DEFAULT 0, pending TEXT) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS papers_pending ON papers(pending) WHERE pending IS NOT NULL;
"""


@dataclass
class FileRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    done: bool
    next_offset: int
    next_line: int


@dataclass
class Resolved:
    """A paper as its entries describe it: the best entry's location and hashes, and all its pages."""

    key: str
    path: str
    offset: int
    line: int
    date: str
    chash: str
    mhash: str
    pages: list[str]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def extra_hash(extra: dict) -> str:
    return text_hash(json.dumps(extra, sort_keys=True))


class IngestState:
    """The SQLite state of one collection. ``dry_run``: nothing is ever committed."""

    def __init__(self, path: Path | str, dry_run: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.dry_run = dry_run
        self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-16000")  # 16 MB page cache; big transactions spill to disk
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.executescript(SCHEMA)
        version = self.get_meta("schema")
        if version not in (None, SCHEMA_VERSION):
            raise StoreError(f"ingest state {self.path} has schema {version}, this version writes {SCHEMA_VERSION}: "
                             "delete that file (the next ingest reads every input again, embedding only what the index lacks)")
        self.db.execute("BEGIN")
        self.set_meta("schema", SCHEMA_VERSION)
        self._names: dict[int, str] = {}

    # -- transactions -----------------------------------------------------------------
    def commit(self) -> None:
        """Make everything so far durable (a dry run keeps one open transaction instead)."""
        if not self.dry_run:
            self.db.execute("COMMIT")
            self.db.execute("BEGIN")

    def end(self) -> None:
        """End a run: commit it, or for a dry run roll everything back."""
        self.db.execute("ROLLBACK" if self.dry_run else "COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        if self.db is not None:
            self.end()
            self.db.close()
            self.db = None

    def get_meta(self, k: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return row[0] if row else None

    def set_meta(self, k: str, v: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(k, v) VALUES (?, ?)", (k, v))

    # -- files ------------------------------------------------------------------------
    def file(self, path: Path) -> FileRow | None:
        row = self.db.execute("SELECT id, path, size, mtime_ns, sha256, done, next_offset, next_line FROM files WHERE path=?",
                              (str(path),)).fetchone()
        return FileRow(*row) if row else None

    def check_file(self, path: Path) -> tuple[str, FileRow | None]:
        """'unchanged', 'resume' (a partly read file, unchanged since) or 'read' (new or changed)."""
        st = path.stat()
        row = self.file(path)
        if row is None:
            return "read", None
        same_stat = (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns)
        if row.done:
            if same_stat:
                return "unchanged", row
            if row.size == st.st_size and row.sha256 == file_sha256(path):
                self.db.execute("UPDATE files SET mtime_ns=? WHERE id=?", (st.st_mtime_ns, row.id))
                return "unchanged", row
        elif same_stat and row.next_offset and path.suffix != ".txt":
            return "resume", row
        return "read", row

    def start_file(self, path: Path, row: FileRow | None) -> int:
        """Begin reading ``path`` from the start: its old entries are dropped and their papers marked dirty."""
        st = path.stat()
        if row is None:
            cur = self.db.execute("INSERT INTO files(path, size, mtime_ns) VALUES (?, ?, ?)", (str(path), st.st_size, st.st_mtime_ns))
            return cur.lastrowid
        self.db.execute("INSERT OR IGNORE INTO dirty(key) SELECT key FROM entries WHERE file_id=?", (row.id,))
        self.db.execute("DELETE FROM entries WHERE file_id=?", (row.id,))
        self.db.execute("UPDATE files SET size=?, mtime_ns=?, sha256=NULL, done=0, next_offset=0, next_line=0 WHERE id=?",
                        (st.st_size, st.st_mtime_ns, row.id))
        return row.id

    def add_entries(self, file_id: int, entries: list[Entry]) -> None:
        """Record entries (idempotent by file and line) and remember where reading got to."""
        if not entries:
            return
        rows = [(file_id, e.line, e.offset, e.key, content_hash(e.title, e.abstract), len(e.abstract), e.date, extra_hash(e.extra))
                for e in entries]
        self.db.executemany("INSERT OR REPLACE INTO entries(file_id, line, offset, key, chash, alen, date, xhash) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.executemany("INSERT OR IGNORE INTO dirty(key) VALUES (?)", [(r[3],) for r in rows])
        last = entries[-1]  # resume re-reads this record (harmless: same file and line)
        self.db.execute("UPDATE files SET next_offset=?, next_line=? WHERE id=?", (last.offset, last.line - 1, file_id))

    def finish_file(self, file_id: int, path: Path) -> None:
        self.db.execute("UPDATE files SET done=1, sha256=? WHERE id=?", (file_sha256(path), file_id))

    def papers_in(self, file_ids: list[int]) -> int:
        """Distinct papers with an entry in these files."""
        if not file_ids:
            return 0
        marks = ",".join("?" * len(file_ids))
        return self.db.execute(f"SELECT COUNT(DISTINCT key) FROM entries WHERE file_id IN ({marks})", file_ids).fetchone()[0]

    # -- papers -----------------------------------------------------------------------
    def _name(self, file_id: int) -> str:
        name = self._names.get(file_id)
        if name is None:
            name = self._names[file_id] = self.db.execute("SELECT path FROM files WHERE id=?", (file_id,)).fetchone()[0]
        return name

    def resolve(self, key: str) -> Resolved | None:
        """The paper ``key`` as its current entries describe it (None: no entry left)."""
        rows = self.db.execute("SELECT file_id, line, offset, chash, alen, date, xhash FROM entries WHERE key=?", (key,)).fetchall()
        if not rows:
            return None
        best = min(rows, key=lambda r: (entry_rank(key, r[5], r[4], r[3]), self._name(r[0]), r[1]))
        pages = sorted({where(os.path.basename(self._name(r[0])), r[5]) for r in rows})
        mhash = text_hash(json.dumps(pages), best[6])
        return Resolved(key, self._name(best[0]), best[2], best[1], best[5], best[3], mhash, pages)

    def resolve_dirty(self, batch: int = 2000) -> dict[str, int]:
        """Compare every dirty paper with what the index holds; set ``pending``. Returns counts by kind."""
        counts = {"new": 0, "update": 0, "payload": 0, "unchanged": 0, "gone": 0}
        after = ""
        while True:
            keys = [k for (k,) in self.db.execute("SELECT key FROM dirty WHERE key > ? ORDER BY key LIMIT ?", (after, batch))]
            if not keys:
                break
            for key in keys:
                r = self.resolve(key)
                row = self.db.execute("SELECT chash, mhash FROM papers WHERE key=?", (key,)).fetchone()
                if r is None:  # no input names this paper any more: it stays in the index as it is
                    counts["gone"] += 1
                    kind = None
                elif row is None or row[0] is None:
                    kind = "new"
                elif row[0] != r.chash:
                    kind = "update"
                elif row[1] != r.mhash:
                    kind = "payload"
                else:
                    kind = None
                    counts["unchanged"] += 1
                if kind:
                    counts[kind] += 1
                if row is None:
                    if kind:
                        self.db.execute("INSERT INTO papers(key, pending) VALUES (?, ?)", (key, kind))
                else:
                    self.db.execute("UPDATE papers SET pending=? WHERE key=?", (kind, key))
            marks = ",".join("?" * len(keys))
            self.db.execute(f"DELETE FROM dirty WHERE key IN ({marks})", keys)
            after = keys[-1]
            self.commit()
        return counts

    def pending(self, after: str = "", limit: int = 64) -> list[str]:
        return [k for (k,) in self.db.execute("SELECT key FROM papers WHERE pending IS NOT NULL AND key > ? ORDER BY key LIMIT ?",
                                              (after, limit))]

    def count_pending(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM papers WHERE pending IS NOT NULL").fetchone()[0]

    def mark_written(self, rows: list[tuple[str, str, str, int]]) -> None:
        """(key, content hash, metadata hash, chunks) of papers the index now holds."""
        self.db.executemany("UPDATE papers SET chash=?, mhash=?, chunks=?, pending=NULL WHERE key=?",
                            [(c, m, n, k) for k, c, m, n in rows])

    def stored_papers(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM papers WHERE chash IS NOT NULL").fetchone()[0]

    def stored_chunks(self) -> int:
        return self.db.execute("SELECT COALESCE(SUM(chunks), 0) FROM papers WHERE chash IS NOT NULL").fetchone()[0]

    def forget_index(self) -> int:
        """The index was emptied behind our back: every paper with entries becomes pending again."""
        n = self.stored_papers()
        self.db.execute("UPDATE papers SET chash=NULL, mhash=NULL, chunks=0, pending='new' "
                        "WHERE key IN (SELECT DISTINCT key FROM entries)")
        self.db.execute("DELETE FROM papers WHERE pending IS NULL")
        return n
