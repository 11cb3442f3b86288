"""Ingest: corpus files -> papers -> chunks -> the store, resumable and streaming.

* ``corpus``: reading trending pages, JSONL and the arXiv snapshot into ``Paper`` records (bad records skipped with a reason);
* ``chunking``: a paper's abstract into token chunks with their payload;
* ``state``: the ingest state (which files, papers and chunks are done), so a killed run resumes;
* ``run``: the streaming loop that embeds and writes batches (``ingest_files``).
"""

from rag.ingest.run import IngestReport, ingest_files, ingest_papers

__all__ = ["IngestReport", "ingest_files", "ingest_papers"]
