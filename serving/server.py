"""The server: the chat UI and the HTTP API on one port, sharing one answer queue and one index.

    create_server(app, settings) -> FastAPI app (UI at /, API at /v1, health at /healthz)
    serve(app, settings)          -> run it with uvicorn until Ctrl+C (127.0.0.1 by default, never a share link)

While it runs, ``<data_dir>/serve.json`` says where it listens, so that ``rag ingest`` on the same
data dir hands its files to this server (the one writer of the index) instead of failing on the lock.

Example:
    >>> import rag                                           # doctest: +SKIP
    >>> app = rag.load("cpu")                                # doctest: +SKIP
    >>> serve(app, app.settings.serving)                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

from rag.config import ServingSettings
from rag.errors import RagError
from serving.answer_queue import AnswerQueue
from serving.ingest_jobs import SERVE_INFO, IngestJobs
from serving.render import CSS

log = logging.getLogger(__name__)


def facets(app) -> tuple[list[str], list[str]]:
    """(dates, files) in the index, for the UI's filters (Qdrant facets over every point)."""
    try:
        return sorted(v for v, _ in app.store.facet("dates")), sorted(v for v, _ in app.store.facet("sources"))
    except RagError:  # the UI works without filters
        log.warning("could not read dates/files from the index", exc_info=True)
        return [], []


def theme():
    """Gradio's default look with system fonts only (no font files fetched from anywhere)."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


def auth_from(settings: ServingSettings) -> tuple[str, str] | None:
    user = settings.username or os.environ.get("RAG_UI_USERNAME")
    password = settings.password or os.environ.get("RAG_UI_PASSWORD")
    if user and password:
        return (user, password)
    if user or password:
        raise RagError("UI auth needs both a username and a password (serving.username/password or RAG_UI_USERNAME/RAG_UI_PASSWORD)")
    return None


def create_server(app, settings: ServingSettings | None = None, ui_facets: tuple[list[str], list[str]] | None = None):
    """The FastAPI app with the UI at / and the API at /v1 (see ``serving.api``)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr
    from fastapi import FastAPI

    from serving.api import create_api
    from serving.ui import create_ui

    settings = settings or app.settings.serving
    answer_queue = AnswerQueue(slots=settings.concurrency, max_waiting=settings.max_waiting)
    jobs = IngestJobs(app)
    ingest_token = secrets.token_urlsafe(24)  # only who can read <data_dir>/serve.json may hand files to ingest
    server = FastAPI(title="paper-rag", docs_url=None, redoc_url=None, openapi_url=None)
    server.state.answer_queue, server.state.ingest_jobs, server.state.ingest_token = answer_queue, jobs, ingest_token
    server.include_router(create_api(app, answer_queue, settings, jobs, ingest_token))

    @server.get("/healthz")
    def health():
        return {"ok": True, "queue": answer_queue.stats()}

    demo = create_ui(app, answer_queue, jobs, settings, ui_facets if ui_facets is not None else facets(app))
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=None)
    return gr.mount_gradio_app(server, demo, path="/", auth=auth_from(settings), theme=theme(), css=CSS, ssr_mode=False,
                               mcp_server=False, show_error=False, enable_monitoring=False, pwa=False,
                               footer_links=["api"])


@contextmanager
def announced(app, settings: ServingSettings, ingest_token: str):
    """Write ``serve.json`` (where this server listens, its ingest token; readable by the owner only) while serving."""
    path = Path(app.settings.data_dir) / SERVE_INFO
    info = {"url": f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}",
            "pid": os.getpid(), "ingest_token": ingest_token, "api_key": settings.api_key or os.environ.get("RAG_API_KEY") or ""}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.chmod(0o600)
    os.replace(tmp, path)
    try:
        yield info
    finally:
        path.unlink(missing_ok=True)


class Running:
    """A server started in a background thread (tests, benchmarks, notebooks): ``.url``, then ``.close()``."""

    def __init__(self, app, settings: ServingSettings, announce: bool = False):
        import threading
        import time

        import uvicorn

        self.app = create_server(app, settings)
        self.url = f"http://{settings.host}:{settings.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host=settings.host, port=settings.port, log_level="warning",
                                                     timeout_graceful_shutdown=2))
        self._announce = announced(app, settings, self.app.state.ingest_token) if announce else None
        if self._announce is not None:
            self._announce.__enter__()
        self._thread = threading.Thread(target=self._server.run, name="rag-server", daemon=True)
        self._thread.start()
        end = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise RagError(f"the server did not start on {self.url} (port in use?)")
            time.sleep(0.05)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._announce is not None:
            self._announce.__exit__(None, None, None)

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(app, settings: ServingSettings | None = None) -> None:
    """Serve until interrupted."""
    import uvicorn

    settings = settings or app.settings.serving
    server = create_server(app, settings)
    with announced(app, settings, server.state.ingest_token):
        uvicorn.run(server, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
