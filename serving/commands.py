"""Subcommands beyond ingest/search, each importing its heavy parts only when run."""

from __future__ import annotations


def add_subcommands(sub, common) -> None:
    """Register answer, UI and eval subcommands on the `rag` parser."""
