"""Chunking: split each abstract with llama-index's SentenceSplitter; every chunk knows its paper.

The embedded text starts with the paper title, so a chunk from the middle of an abstract
still matches questions that name the paper.

Example:
    >>> from rag.ingest.corpus import Paper
    >>> from rag.config import ChunkSettings
    >>> chunks = chunk_papers([Paper("Tiny", "One sentence. Two sentences.", ["p (Mar 1)"])], ChunkSettings())
    >>> chunks[0].embed_text
    'Tiny\\nOne sentence. Two sentences.'
    >>> chunks[0].point_id == chunk_papers([Paper("Tiny", "One sentence. Two sentences.")], ChunkSettings())[0].point_id
    True
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

from rag.config import ChunkSettings
from rag.ingest.corpus import PAPER_NAMESPACE, Paper
from rag.errors import ModelNotFoundError


@dataclass(frozen=True)
class Chunk:
    paper: Paper
    index: int  # position of the chunk in its abstract
    count: int  # chunks in this abstract
    text: str  # the passage itself

    @property
    def embed_text(self) -> str:
        """What is embedded and BM25-indexed: title + passage."""
        return f"{self.paper.title}\n{self.text}"

    @property
    def point_id(self) -> str:
        """uuid5 of (paper, chunk index, content): same content, same id, so re-ingest adds nothing."""
        return str(uuid.uuid5(PAPER_NAMESPACE, f"{self.paper.paper_id}/{self.index}/{self.embed_text}"))

    def payload(self, paper_fields: dict | None = None) -> dict:
        """The point's payload: the paper-level fields (``paper_payload``, pass them in to compute
        them once per paper) plus this chunk's text and position."""
        return {**(paper_fields or paper_payload(self.paper)), "text": self.text, "chunk": self.index, "chunks": self.count}


def paper_payload(p: Paper) -> dict:
    """Fields every chunk of a paper carries; ``payload_hash`` changes when any of them does, so a
    new page or date is written into the stored points without embedding anything again."""
    fields = {
        "paper_id": p.paper_id,
        "title": p.title,
        "pages": list(p.pages),
        "sources": sorted({source_file(pg) for pg in p.pages}),
        "dates": sorted({pg.rsplit("(", 1)[-1].rstrip(")") for pg in p.pages if pg.endswith(")")}),
        **{k: v for k, v in p.metadata.items() if k not in ("title", "text", "chunk", "chunks", "paper_id", "payload_hash")},
    }
    fields["payload_hash"] = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return fields


def source_file(page: str) -> str:
    """File name of a page entry: 'x.txt (Mar 13)' -> 'x.txt', 'a.jsonl:12' -> 'a.jsonl'."""
    name = page.rsplit(" (", 1)[0] if page.endswith(")") else page
    return re.sub(r":\d+$", "", name)


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int):
    import os

    from llama_index.core.node_parser import SentenceSplitter

    try:
        return SentenceSplitter(chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 2))
    except OSError as e:  # tiktoken fetching cl100k_base: llama-index's bundled copy is only used when the variable is unset
        raise ModelNotFoundError(
            f"the chunker's tokenizer (tiktoken cl100k_base) could not be loaded ({type(e).__name__}): "
            f"TIKTOKEN_CACHE_DIR={os.environ.get('TIKTOKEN_CACHE_DIR', '(unset)')} has no copy of it and the network "
            "is unreachable; unset TIKTOKEN_CACHE_DIR to use the copy bundled with llama-index, or put the file there"
        ) from e


def split_text(text: str, settings: ChunkSettings) -> list[str]:
    return [t for t in _splitter(settings.chunk_size, settings.chunk_overlap).split_text(text) if t.strip()] or [text]


def chunk_paper(paper: Paper, settings: ChunkSettings) -> list[Chunk]:
    parts = split_text(paper.abstract, settings)
    return [Chunk(paper, i, len(parts), t) for i, t in enumerate(parts)]


def chunk_papers(papers: list[Paper], settings: ChunkSettings) -> list[Chunk]:
    return [c for p in papers for c in chunk_paper(p, settings)]
