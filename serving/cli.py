"""The ``rag`` command line.

    rag ingest [PATHS...]              index files/folders (default: the bundled sample corpus); --dry-run, --strict
    rag search QUERY [-k 5] [--json]   hybrid search, one hit per paper
    rag ask QUESTION [--json]          a cited answer from the local LLM
    rag chat                           a terminal conversation with follow-ups
    rag serve                          the Gradio chat UI on http://127.0.0.1:7860
    rag eval ...                       offline evaluation (see `rag eval -h`)

Global options: --config (preset name or YAML), --data-dir (or RAG_DATA_DIR),
--set key=value (any setting, dotted: --set retrieval.k=8), -v.
Errors print one line saying what to do, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import yaml

from rag.errors import RagError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("RAG_CONFIG", "cpu"), help="preset (cpu, gpu) or YAML file (default: cpu)")
    p.add_argument("--data-dir", default=None, help="index and state folder (default: $RAG_DATA_DIR or ./rag_data)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set retrieval.k=8 (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress and timings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers about research papers, from the papers themselves.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index corpus files (trending pages .txt, .jsonl, arXiv snapshot)")
    p.add_argument("paths", nargs="*", help="files or folders (default: the bundled sample corpus)")
    p.add_argument("--dry-run", action="store_true",
                   help="parse, deduplicate and count new/updated/unchanged/skipped papers; embed and write nothing")
    p.add_argument("--strict", action="store_true", help="stop at the first bad record (default: skip it and report it)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(p)

    p = sub.add_parser("search", help="hybrid search over the index")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="number of hits (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "sparse"], default=None)
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE", help="title=..., date='Mar 13', page=FILE, paper_id=...")
    p.add_argument("--all-chunks", action="store_true", help="allow several hits per paper")
    p.add_argument("--json", action="store_true", help="print a JSON list of hits")
    _common(p)

    from serving import commands

    commands.add_subcommands(sub, _common)
    return parser


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise RagError(f"--set needs KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value else value
    return out


def parse_filters(items: list[str]) -> dict:
    filters: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise RagError(f"--filter needs FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        filters.setdefault(key.strip(), []).append(value)
    return filters


def settings_overrides(args) -> dict:
    """The --set and --data-dir options as settings overrides."""
    overrides = parse_overrides(args.overrides)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    return overrides


def load_app(args):
    import rag

    return rag.load(args.config, **settings_overrides(args))


def cmd_ingest(args) -> int:
    import rag
    from serving.ingest_jobs import ingest_via_server, running_server

    settings = rag.Settings.load(args.config, **settings_overrides(args))
    server = None if args.dry_run else running_server(settings.data_dir)
    if server is not None:  # `rag serve` holds this data dir: it is the one writer, hand it the files
        print(f"a server is running on {settings.data_dir} ({server['url']}): ingesting through it", file=sys.stderr)
        paths = args.paths or [str(p) for p in settings.corpus]
        job = ingest_via_server(server, paths, on_progress=lambda j: print(
            f"  {j['stage'] or j['state']}: {j['done']:,}/{j['total']:,}", file=sys.stderr) if j["total"] else None)
        report = job["report"]
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"{report['papers']} papers: {report['added']} added, {report['updated']} updated, {report['unchanged']} "
                  f"unchanged; {report['chunks_written']} chunks written, {report['points_total']} in the index "
                  f"(served by {server['url']}, answering from them now)")
        return 0
    with load_app(args) as app:
        report = app.ingest(args.paths or None, progress=True, dry_run=args.dry_run, strict=args.strict)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{report.summary()}\nindex: {app.settings.data_dir} (collection {report.collection})")
    return 0


def cmd_search(args) -> int:
    with load_app(args) as app:
        hits = app.search(args.query, k=args.k, filters=parse_filters(args.filter), mode=args.mode,
                          one_per_paper=False if args.all_chunks else None)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
        return 0
    if not hits:
        print("no hits: is the index empty? run `rag ingest` first")
    for i, h in enumerate(hits, 1):
        print(f"{i}. [{h.score:.4f}] {h.title}\n   {h.text[:200]}{'...' if len(h.text) > 200 else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler = globals().get(f"cmd_{args.command}") or args.handler
    try:
        return handler(args) or 0
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
