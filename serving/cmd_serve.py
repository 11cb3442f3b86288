"""`rag serve`: the chat UI and the HTTP API on http://127.0.0.1:7860 (ingests the sample corpus first
if the index is empty). ``serving.concurrency`` answers are generated at once (llama.cpp slots)."""

from __future__ import annotations

import logging

from rag.cli_options import add_common, load_app

log = logging.getLogger("rag.serve")


def register(sub) -> None:
    """Register ``rag serve [--host HOST] [--port PORT] [--concurrency N]`` on the `rag` subparsers."""
    p = sub.add_parser("serve", help="the chat UI and the OpenAI-compatible API (http://127.0.0.1:7860 by default)")
    p.add_argument("--host", default=None, help="address to bind (default: serving.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: serving.port, 7860)")
    p.add_argument("--concurrency", type=int, default=None, help="answers generated at once (default: serving.concurrency)")
    add_common(p)
    p.set_defaults(handler=cmd_serve)


def serving_settings(app, host: str | None = None, port: int | None = None, concurrency: int | None = None):
    """The app's ServingSettings with the command-line overrides applied (validated)."""
    from rag.config import ServingSettings

    s = app.settings.serving.model_dump()
    s.update({k: v for k, v in {"host": host, "port": port, "concurrency": concurrency}.items() if v is not None})
    try:
        return ServingSettings.model_validate(s)
    except Exception as e:  # pydantic ValidationError -> a one-line user error
        from rag.errors import ConfigError

        raise ConfigError(f"invalid serve option: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None


def prepare(app) -> None:
    """Ingest the default corpus into an empty index, then load the models so the first answer is not slow."""
    if app.count() == 0:
        log.warning("the index in %s is empty: ingesting the sample corpus first (a few minutes on CPU)", app.settings.data_dir)
        report = app.ingest(progress=False)
        log.warning("ingest: %s", report.summary())
    log.info("warm-up (s): %s", {k: round(v, 2) for k, v in app.warm_up().items()})


def cmd_serve(args) -> int:
    from serving.server import serve

    app = load_app(args)
    try:
        settings = serving_settings(app, args.host, args.port, getattr(args, "concurrency", None))
        app.settings.generation.parallel = settings.concurrency  # one llama.cpp slot per concurrent answer
        prepare(app)
        log.warning("serving on http://%s:%d (UI; API at /v1; Ctrl+C to stop)", settings.host, settings.port)
        serve(app, settings)
    finally:
        app.close()
    return 0
