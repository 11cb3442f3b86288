"""The HTTP API beside the chat UI, on the same server and port: OpenAI-compatible chat, and ingest.

    GET  /v1/models                 -> {"object": "list", "data": [{"id": "paper-rag", ...}]}
    POST /v1/chat/completions       {"messages": [...], "stream": false|true}
    POST /v1/search                 {"query": "...", "k": 5, "mode": "hybrid", "filters": {...}, "all_chunks": false}
    POST /v1/ingest                 {"paths": ["papers.jsonl", ...]}  -> the job (server-local paths)
    GET  /v1/ingest/{job}           -> the job: state, stage, done/total, report

The ingest routes also need ``X-Ingest-Token``: the token the server wrote into ``<data_dir>/serve.json``
(owner-readable), so only someone who can read the data dir can make the server read files.

Chat completions follow OpenAI's format, so ``openai``, open-webui or LibreChat can talk to it.
The message content is the checked answer with its ``[n]`` markers, then a blank line and the
reference list (``[1] Title``). Everything structured is in the extra field ``rag`` of the response
(and of the last stream chunk): ``Answer.to_dict()`` -- kind, citations with quotes and offsets,
sources, timings. With ``stream: true`` the events are server-sent: the first chunk carries
``rag.sources`` (retrieval results, before any text), chunks while waiting in line carry
``rag.queue_position``, then the text arrives sentence by sentence (already checked), then the
references, a final chunk with ``finish_reason: "stop"`` and ``rag``, and ``data: [DONE]``.
System messages are ignored (the server's own rules apply); earlier user/assistant turns are the
conversation. A full queue answers 429 with ``Retry-After``; a dropped client cancels its answer.

With ``serving.api_key`` set (or ``RAG_API_KEY``), every ``/v1`` call needs ``Authorization: Bearer <key>``.
FastAPI is imported at module level (it resolves the routes' annotations there): import this module
only to serve (the ``ui`` extra).
"""

import asyncio
import json
import logging
import os
import secrets
import threading
import time
import uuid

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rag.answer import Answer, Sources
from rag.errors import Cancelled, InputError, RagError
from serving.answer_queue import Busy
from serving.runner import AnswerRun, Waiting

log = logging.getLogger(__name__)
MODEL_ID = "paper-rag"


def references(answer: Answer) -> str:
    """The reference list appended to the message content ("" when nothing is cited)."""
    return f"\n\n{answer.format_references()}" if answer.citations else ""


def _messages(body: dict) -> list[dict]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InputError("'messages' must be a non-empty list of {role, content}")
    out = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise InputError("each message needs a role: system, user or assistant")
        content = m.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise InputError("message content must be text")
        if m["role"] != "system":
            out.append({"role": m["role"], "content": content, **({"papers": m["papers"]} if isinstance(m.get("papers"), list) else {})})
    if not out or out[-1]["role"] != "user":
        raise InputError("the last message must be the user's question")
    return out


def _chunk(cid: str, created: int, delta: dict, finish: str | None = None, rag: dict | None = None) -> str:
    c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if rag is not None:
        c["rag"] = rag
    return f"data: {json.dumps(c, ensure_ascii=False)}\n\n"


def create_api(app, answer_queue, settings, ingest_jobs, ingest_token: str):
    """A FastAPI router with the routes above, using ``answer_queue`` (shared with the UI)."""
    router = APIRouter(prefix="/v1")
    key = settings.api_key or os.environ.get("RAG_API_KEY")

    def auth(request: Request) -> None:
        if key and request.headers.get("authorization", "") != f"Bearer {key}":
            raise HTTPException(401, detail={"error": {"message": "missing or wrong API key (Authorization: Bearer ...)",
                                                       "type": "invalid_api_key"}})

    def ingest_auth(request: Request) -> None:
        auth(request)
        if not secrets.compare_digest(request.headers.get("x-ingest-token", ""), ingest_token):
            raise HTTPException(403, detail={"error": {"message": "ingest needs X-Ingest-Token from <data_dir>/serve.json",
                                                       "type": "forbidden"}})

    def error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)

    @router.get("/models", dependencies=[Depends(auth)])
    def models():
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "paper-rag"}]}

    @router.post("/chat/completions", dependencies=[Depends(auth)])
    async def chat(request: Request):
        try:
            body = await request.json()
            messages = _messages(body if isinstance(body, dict) else {})
            run = AnswerRun(app, answer_queue, messages, timeout_s=settings.request_timeout_s)
        except Busy as e:
            return error(429, str(e), "busy", {"Retry-After": str(int(e.retry_after_s) + 1)})
        except (RagError, ValueError) as e:
            return error(400, str(e), "invalid_request_error")
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = threading.Event()

        def work() -> None:
            try:
                for ev in run.events():
                    loop.call_soon_threadsafe(events.put_nowait, ev)
            except BaseException as e:  # delivered to the response
                loop.call_soon_threadsafe(events.put_nowait, e)
            finally:
                done.set()
                loop.call_soon_threadsafe(events.put_nowait, None)

        threading.Thread(target=work, name="api-answer", daemon=True).start()

        if body.get("stream"):
            async def sse():
                try:
                    yield _chunk(cid, created, {"role": "assistant", "content": ""})
                    while (ev := await events.get()) is not None:
                        if isinstance(ev, BaseException):
                            kind = "cancelled" if isinstance(ev, Cancelled) else "error"
                            msg = str(ev) if isinstance(ev, RagError) else f"internal error ({type(ev).__name__})"
                            yield f"data: {json.dumps({'error': {'message': msg, 'type': kind}})}\n\n"
                            break
                        if isinstance(ev, Waiting):
                            yield _chunk(cid, created, {}, rag={"queue_position": ev.position, "eta_s": round(ev.eta_s, 1)})
                        elif isinstance(ev, Sources):
                            yield _chunk(cid, created, {}, rag={"sources": [h.to_dict() for h in ev.hits], "filtered": ev.filtered})
                        elif isinstance(ev, str):
                            yield _chunk(cid, created, {"content": ev})
                        elif isinstance(ev, Answer):
                            if ev.citations:
                                yield _chunk(cid, created, {"content": references(ev)})
                            yield _chunk(cid, created, {}, finish="stop", rag=ev.to_dict())
                    yield "data: [DONE]\n\n"
                finally:  # the client went away (or we are done): stop the answer, free the slot
                    run.cancel()

            return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

        answer = None
        try:
            while True:
                try:
                    ev = await asyncio.wait_for(events.get(), timeout=0.5)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        run.cancel()
                        return error(499, "the client closed the request", "cancelled")
                    continue
                if ev is None:
                    break
                if isinstance(ev, BaseException):
                    if isinstance(ev, RagError):
                        return error(400 if isinstance(ev, InputError) else 503, str(ev), type(ev).__name__)
                    log.error("answer failed: %r", ev)
                    return error(500, f"internal error ({type(ev).__name__})", "internal_error")
                if isinstance(ev, Answer):
                    answer = ev
        finally:
            if not done.is_set():
                run.cancel()
        if answer is None:
            return error(500, "no answer was produced", "internal_error")
        content = answer.text + references(answer)
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": answer.timings.get("prompt_tokens", 0),
                      "completion_tokens": answer.timings.get("completion_tokens", 0),
                      "total_tokens": answer.timings.get("prompt_tokens", 0) + answer.timings.get("completion_tokens", 0)},
            "rag": answer.to_dict(),
        }

    @router.post("/search", dependencies=[Depends(auth)])
    def search(body: dict):  # a plain def: FastAPI runs it in its thread pool
        try:
            query, k = body.get("query"), body.get("k", 5)
            if not isinstance(query, str) or not isinstance(k, int) or isinstance(k, bool):
                raise InputError("'query' must be text and 'k' a whole number")
            filters = body.get("filters") or None
            if filters is not None and not isinstance(filters, dict):
                raise InputError("'filters' must be an object such as {\"date\": \"Mar 13\"}")
            hits = app.search(query, k=k, filters=filters, mode=body.get("mode"),
                              one_per_paper=False if body.get("all_chunks") else None)
            return {"object": "list", "data": [h.to_dict() for h in hits]}
        except (RagError, ValueError) as e:
            return error(400, str(e), "invalid_request_error")

    @router.post("/ingest", dependencies=[Depends(ingest_auth)])
    async def ingest(request: Request):
        try:
            body = await request.json()
            paths = body.get("paths") if isinstance(body, dict) else None
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise InputError("'paths' must be a list of file or folder paths on the server")
            return ingest_jobs.submit(paths).to_dict()
        except (RagError, ValueError) as e:
            return error(400, str(e), "invalid_request_error")

    @router.get("/ingest/{job_id}", dependencies=[Depends(ingest_auth)])
    def ingest_job(job_id: str):
        try:
            return ingest_jobs.get(job_id).to_dict()
        except RagError as e:
            return error(404, str(e), "not_found")

    return router
