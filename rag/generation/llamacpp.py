"""llama.cpp backend (xllamacpp, in-process): GGUF models on CPU (or GPU offload), JSON-schema output.

Example:
    >>> from rag.config import GenerationSettings
    >>> gen = LlamaCppGenerator(GenerationSettings(model="smollm2-135m-instruct-q4_1", n_ctx=2048), cache)  # doctest: +SKIP
    >>> for piece in gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8):  # doctest: +SKIP
    ...     print(piece, end="")
    >>> gen.complete(msgs, json_schema={"type": "object", "properties": {"a": {"type": "string"}}})  # doctest: +SKIP
    '{"a": "..."}'

xllamacpp streams through a callback that runs inside ``handle_chat_completions``; a worker thread
runs that call and a queue turns the callbacks into an iterator. Returning True from the callback
stops generation, which is how an early-closed iterator (a cancelled request) frees its slot; with
``return_progress`` the server also calls back after every ``n_batch`` prompt tokens, so a request
cancelled while its prompt is being read stops within one step instead of after the whole prompt.

``generation.parallel`` slots generate at once with continuous batching (each slot has ``n_ctx``
tokens of context); more requests wait for a free slot. A generation that sends nothing for
``request_timeout_s`` is stopped with a GenerationError instead of blocking its caller.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rag.config import GenerationSettings
from rag.errors import GenerationError, MissingExtraError
from rag.generation.base import Generator, validate_messages, yes_share
from rag.models import PYPI_MODELS, resolve_gguf

log = logging.getLogger(__name__)
_DONE = object()


def _error_message(chunk: dict) -> str | None:
    """The error text of a server reply, or None for a normal chunk."""
    if "error" in chunk:
        err = chunk["error"]
        return err.get("message", json.dumps(err)) if isinstance(err, dict) else str(err)
    if "choices" not in chunk and "message" in chunk and ("code" in chunk or "type" in chunk):
        return str(chunk["message"])
    return None


class LlamaCppGenerator(Generator):
    """A GGUF model served in-process by llama.cpp; thread-safe, ``settings.parallel`` generations at once."""

    supports_json_schema = True

    def __init__(self, settings: GenerationSettings, cache_dir: Path):
        try:
            import xllamacpp as xlc
        except ImportError as e:
            raise MissingExtraError(f"the llamacpp backend needs xllamacpp: re-run scripts/setup.sh ({e})") from None
        self.settings = settings
        self.path = resolve_gguf(settings.model, Path(cache_dir))
        self.model_id = settings.model if settings.model in PYPI_MODELS else self.path.name
        threads = settings.n_threads or os.cpu_count() or 1
        p = xlc.CommonParams()
        p.model.path = str(self.path)
        p.n_ctx = settings.n_ctx * settings.parallel  # llama.cpp splits the context between the slots
        p.n_parallel = settings.parallel
        p.cont_batching = True
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        if settings.n_batch:
            p.n_batch = p.n_ubatch = settings.n_batch
        p.n_gpu_layers = 999 if settings.n_gpu_layers < 0 else settings.n_gpu_layers
        p.sampling.seed = settings.seed
        p.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1  # -1 silences llama.cpp's stderr log
        # The in-process server also listens on 127.0.0.1:<random port>; a random key keeps it private.
        self._api_key = secrets.token_urlsafe(24)
        p.api_keys = [self._api_key]
        log.info("loading %s with llama.cpp (n_ctx=%d, threads=%d)", self.path.name, settings.n_ctx, threads)
        try:
            self._server = xlc.Server(p)
        except Exception as e:
            raise GenerationError(
                f"llama.cpp could not load {self.path}: {e}. Check the file, or lower n_ctx / n_gpu_layers"
            ) from None
        self._lock = threading.Lock()  # guards _server and the count of running generations
        self._slots = threading.BoundedSemaphore(settings.parallel)
        self._running = 0
        self._idle = threading.Condition(self._lock)

    def stream(
        self,
        messages: list[dict],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict | None = None,
        stats: dict | None = None,
    ) -> Iterator[str]:
        self.check_schema_support(json_schema)
        request = {
            "messages": validate_messages(messages),
            "max_tokens": max_new_tokens or self.settings.max_new_tokens,
            "temperature": self.settings.temperature if temperature is None else temperature,
            "seed": self.settings.seed,
            "cache_prompt": self.settings.cache_prompt,
            "stream": True,
            "return_progress": True,  # a chunk per n_batch prompt tokens: a point where a cancelled request stops
        }
        if json_schema is not None:
            request["response_format"] = {"type": "json_schema", "json_schema": {"schema": json_schema}}
        return self._stream(request, stats if stats is not None else {})

    def yes_probability(self, prompts: list[list[dict]]) -> list[float]:
        """P(yes) of each prompt's first token, from llama.cpp's top log probabilities (one token generated each)."""
        out = []
        for messages in prompts:
            request = {"messages": validate_messages(messages), "max_tokens": 1, "temperature": 0.0, "seed": self.settings.seed,
                       "cache_prompt": self.settings.cache_prompt, "stream": True, "logprobs": True, "top_logprobs": 10}
            first: dict[str, float] = {}
            for chunk in self._stream(request, {}, raw=True):
                for choice in chunk.get("choices", ()):
                    for tok in (choice.get("logprobs") or {}).get("content") or ():
                        if not first:
                            first = {t["token"]: t["logprob"] for t in tok.get("top_logprobs", ())}
            out.append(yes_share(first))
        return out

    def _stream(self, request: dict, stats: dict, raw: bool = False) -> Iterator:
        with self._slots:
            with self._lock:
                server = self._server
                if server is None:
                    raise GenerationError("this generator was closed; build a new one")
                self._running += 1
            try:
                yield from self._generate(server, request, stats, raw)
            finally:
                with self._lock:
                    self._running -= 1
                    self._idle.notify_all()

    def _generate(self, server, request: dict, stats: dict, raw: bool = False) -> Iterator:
        """The text pieces of the reply (``raw``: the server's chunks themselves)."""
        chunks: queue.Queue = queue.Queue()
        stop = threading.Event()

        def on_chunk(chunk: dict) -> bool:  # called by llama.cpp; True = stop generating
            if stop.is_set():
                return True
            chunks.put(chunk)
            return False

        def work() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as e:  # invalid requests raise (e.g. ValueError)
                chunks.put(e)
            finally:
                chunks.put(_DONE)

        worker = threading.Thread(target=work, name="llamacpp-generate", daemon=True)
        worker.start()
        try:
            while (chunk := self._next(chunks)) is not _DONE:
                if isinstance(chunk, Exception):
                    raise GenerationError(f"llama.cpp rejected the request: {chunk}")
                if (msg := _error_message(chunk)) is not None:
                    raise GenerationError(f"llama.cpp error: {msg}")
                if raw:
                    yield chunk
                    continue
                if "prompt_progress" in chunk:  # one step of reading the prompt: the caller may close us here
                    stats["prompt_steps"] = stats.get("prompt_steps", 0) + 1
                    yield ""
                if "timings" in chunk:
                    stats.update(chunk["timings"])
                for choice in chunk.get("choices", ()):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece
        finally:
            stop.set()  # consumer stopped early or an error: the next callback cancels the request
            worker.join(timeout=self.settings.request_timeout_s)

    def _next(self, chunks: queue.Queue):
        try:
            return chunks.get(timeout=self.settings.request_timeout_s)
        except queue.Empty:
            raise GenerationError(f"llama.cpp sent nothing for {self.settings.request_timeout_s:.0f} s; the request "
                                  "was stopped (generation.request_timeout_s)") from None

    def count_tokens(self, text: str) -> int:
        """Exact count from the model's tokenizer (server /tokenize); len(text)//4 if that fails."""
        server = self._server
        if server is None:
            return super().count_tokens(text)
        try:
            req = urllib.request.Request(
                server.listening_address.rstrip("/") + "/tokenize",
                data=json.dumps({"content": text}).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._api_key}"},
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                return len(json.loads(r.read())["tokens"])
        except Exception as e:  # never fail prompt budgeting over this
            log.debug("tokenize failed (%s); estimating", e)
            return super().count_tokens(text)

    def close(self) -> None:
        """Stop taking requests, let running ones finish (or time out), then free the model."""
        with self._lock:
            server, self._server = self._server, None
            self._idle.wait_for(lambda: self._running == 0, timeout=self.settings.request_timeout_s)
        del server  # the C++ destructor stops the server loop and frees the model
