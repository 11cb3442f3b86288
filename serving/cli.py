"""The ``rag`` command line: each command module registers its subcommand with a handler.

    rag ingest [PATHS...]              index files/folders (default: the bundled sample corpus); --dry-run, --strict
    rag search QUERY [-k 5] [--json]   hybrid search, one hit per paper                      (serving.cmd_index)
    rag ask QUESTION [--json]          a cited answer with quotes                            (serving.cmd_ask)
    rag chat                           a terminal conversation with follow-ups               (serving.cmd_ask)
    rag serve                          the chat UI and the OpenAI-compatible API             (serving.cmd_serve)
    rag eval ...                       offline evaluation (see `rag eval -h`)                (eval.eval_cmd)

Common options (``rag.cli_options``): --config (preset name or YAML), --data-dir (or RAG_DATA_DIR),
--set key=value (any setting, dotted: --set retrieval.k=8), -v.
Errors print one line saying what to do, and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rag.errors import RagError


def build_parser() -> argparse.ArgumentParser:
    from eval import eval_cmd
    from serving import cmd_ask, cmd_index, cmd_serve

    parser = argparse.ArgumentParser(prog="rag", description="Cited answers about research papers, from the papers themselves.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (cmd_index, cmd_ask, cmd_serve, eval_cmd):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args) or 0
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
