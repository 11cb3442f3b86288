"""Ingest (and search) while serving: the server is the one writer of its data dir, so new files go through it.

``rag ingest FILES`` on a data dir that a running ``rag serve`` holds sends the paths to the server
(``POST /v1/ingest``, see ``serving.api``) and follows the job; the chat's upload box does the same
in process. Jobs run one after another in a background thread; queries keep being answered while
they run, and answer from the new papers as soon as each batch is written.

Example (fakes):
    >>> import rag, tempfile, time
    >>> from rag.testing import FakeEmbedder
    >>> app = rag.load(data_dir=tempfile.mkdtemp(), embedder=FakeEmbedder())
    >>> jobs = IngestJobs(app)
    >>> job = jobs.submit(["data/sample"])
    >>> jobs.wait(job.id, timeout=120).state, job.report["papers"]
    ('done', 342)
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.errors import InputError, RagError

log = logging.getLogger(__name__)
SERVE_INFO = "serve.json"  # written into the data dir by `rag serve`: where its ingest endpoint is


@dataclass
class Job:
    id: str
    paths: list[str]
    state: str = "queued"  # queued | running | done | failed
    stage: str = ""
    done: int = 0
    total: int = 0
    error: str = ""
    report: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)


class IngestJobs:
    """A queue of ingest jobs for one App, run one at a time in a background thread."""

    def __init__(self, app, keep: int = 100):
        self.app = app
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._keep = keep
        self._worker: threading.Thread | None = None

    def submit(self, paths: list[str]) -> Job:
        """Queue files or folders to ingest; checked now, so a bad path is an error at once."""
        if not paths:
            raise InputError("nothing to ingest: give one or more files or folders")
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise InputError(f"no such file or folder: {', '.join(missing[:3])}")
        job = Job(str(next(self._ids)), [str(Path(p).resolve()) for p in paths])
        with self._cond:
            self._jobs[job.id] = job
            self._order.append(job.id)
            while len(self._order) > self._keep:
                self._jobs.pop(self._order.pop(0), None)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="ingest-jobs", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        return job

    def get(self, job_id: str) -> Job:
        with self._cond:
            if job_id not in self._jobs:
                raise InputError(f"no ingest job {job_id}")
            return self._jobs[job_id]

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs[job_id].state in ("queued", "running"):
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left if left is not None else 1.0)
            return self._jobs[job_id]

    def _next(self) -> Job | None:
        with self._cond:
            return next((self._jobs[i] for i in self._order if i in self._jobs and self._jobs[i].state == "queued"), None)

    def _run(self) -> None:
        while (job := self._next()) is not None:
            self._set(job, state="running")

            def progress(desc: str, done: int, total: int, job=job) -> None:
                self._set(job, stage=desc, done=done, total=total)

            try:
                report = self.app.ingest(job.paths, progress=progress)
                self._set(job, state="done", report=report.to_dict())
            except RagError as e:
                self._set(job, state="failed", error=str(e))
            except Exception as e:  # noqa: BLE001 - a job failure must not kill the worker
                log.exception("ingest job %s failed", job.id)
                self._set(job, state="failed", error=f"{type(e).__name__}: {e}")

    def _set(self, job: Job, **changes) -> None:
        with self._cond:
            for k, v in changes.items():
                setattr(job, k, v)
            self._cond.notify_all()


def running_server(data_dir) -> dict | None:
    """The ``serve.json`` of a live ``rag serve`` on ``data_dir`` (None when there is none)."""
    import json

    import httpx

    path = Path(data_dir) / SERVE_INFO
    try:
        info = json.loads(path.read_text())
        r = httpx.get(f"{info['url']}/healthz", timeout=3)
        return info if r.status_code == 200 else None
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None


def ingest_via_server(info: dict, paths: list[str], on_progress=None, poll_s: float = 1.0) -> dict:
    """Hand ``paths`` to the running server's ingest jobs and wait; returns the finished job."""
    import httpx

    headers = {"X-Ingest-Token": info["ingest_token"]}
    if info.get("api_key"):
        headers["Authorization"] = f"Bearer {info['api_key']}"
    with httpx.Client(base_url=info["url"], headers=headers, timeout=30) as c:
        r = c.post("/v1/ingest", json={"paths": [str(Path(p).resolve()) for p in paths]})
        if r.status_code != 200:
            raise InputError(f"the server at {info['url']} refused the ingest: {r.json().get('error', {}).get('message', r.text)}")
        job = r.json()
        while job["state"] in ("queued", "running"):
            time.sleep(poll_s)
            job = c.get(f"/v1/ingest/{job['id']}").json()
            if on_progress is not None:
                on_progress(job)
    if job["state"] == "failed":
        raise RagError(f"ingest on the server failed: {job['error']}")
    return job


def search_via_server(info: dict, query: str, k: int = 5, filters: dict | None = None, mode: str | None = None,
                      all_chunks: bool = False) -> list[dict]:
    """``rag search`` while ``rag serve`` holds the index: the server's ``POST /v1/search``; hits as dicts."""
    import httpx

    headers = {"Authorization": f"Bearer {info['api_key']}"} if info.get("api_key") else {}
    body = {"query": query, "k": k, "filters": filters or None, "mode": mode, "all_chunks": all_chunks}
    r = httpx.post(f"{info['url']}/v1/search", json=body, headers=headers, timeout=60)
    if r.status_code != 200:
        raise InputError(f"the server at {info['url']} refused the search: {r.json().get('error', {}).get('message', r.text)}")
    return r.json()["data"]
