"""`rag ingest [PATHS...]` (index files; through a running `rag serve` when one holds the data dir)
and `rag search QUERY` (hybrid search, one hit per paper; also through a running `rag serve`).

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser().add_subparsers(); register(sub)
    >>> sorted(sub.choices)
    ['ingest', 'search']
"""

from __future__ import annotations

import json
import sys

from rag.cli_options import add_common, load_app, parse_filters, settings_from


def register(sub) -> None:
    p = sub.add_parser("ingest", help="index corpus files (trending pages .txt, .jsonl, arXiv snapshot)")
    p.add_argument("paths", nargs="*", help="files or folders (default: the bundled sample corpus)")
    p.add_argument("--dry-run", action="store_true",
                   help="parse, deduplicate and count new/updated/unchanged/skipped papers; embed and write nothing")
    p.add_argument("--strict", action="store_true", help="stop at the first bad record (default: skip it and report it)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_common(p)
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("search", help="hybrid search over the index")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="number of hits (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "sparse"], default=None)
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="repeatable: year>=2024 (or year=2021..2023), category=cs.CL, primary_category=cs.CL, author='Jane Doe', "
                        "title=..., date='Mar 13', page=FILE, paper_id=..., doi=...")
    p.add_argument("--all-chunks", action="store_true", help="allow several hits per paper")
    p.add_argument("--json", action="store_true", help="print a JSON list of hits")
    add_common(p)
    p.set_defaults(handler=cmd_search)


def cmd_ingest(args) -> int:
    from serving.ingest_jobs import ingest_via_server, running_server

    settings = settings_from(args)
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
    from serving.ingest_jobs import running_server, search_via_server

    filters = parse_filters(args.filter)
    server = running_server(settings_from(args).data_dir)
    if server is not None:  # `rag serve` holds the index: ask it
        hits = search_via_server(server, args.query, k=args.k, filters=filters, mode=args.mode, all_chunks=args.all_chunks)
    else:
        with load_app(args) as app:
            hits = [h.to_dict() for h in app.search(args.query, k=args.k, filters=filters, mode=args.mode,
                                                    one_per_paper=False if args.all_chunks else None)]
    if args.json:
        print(json.dumps(hits, indent=2))
        return 0
    if not hits:
        print("no hits: is the index empty? run `rag ingest` first")
    for i, h in enumerate(hits, 1):
        print(f"{i}. [{h['score']:.4f}] {h['title']}\n   {h['text'][:200]}{'...' if len(h['text']) > 200 else ''}")
    return 0
