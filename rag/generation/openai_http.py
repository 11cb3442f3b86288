"""OpenAI-compatible HTTP backend: the answer step runs on a server (vLLM, llama.cpp's server, TGI, ...).

This is how generation scales past one process: point ``generation.base_url`` at a server that
speaks ``POST /v1/chat/completions`` with ``stream: true``. JSON-schema output is asked for with
``response_format: {"type": "json_schema", ...}`` (llama.cpp's server and vLLM honour it); set
``generation.json_schema: false`` for a server that does not, and the pipeline falls back to text.

Example:
    >>> from rag.config import GenerationSettings
    >>> s = GenerationSettings(backend="openai", base_url="http://127.0.0.1:8080/v1", model="qwen2.5-0.5b")
    >>> gen = OpenAIGenerator(s)  # doctest: +SKIP
    >>> gen.complete([{"role": "user", "content": "Say hi"}], max_new_tokens=8)  # doctest: +SKIP
    'Hi!'
    >>> sse_data(b'data: {"a": 1}'), sse_data(b'data: [DONE]'), sse_data(b': ping')
    ({'a': 1}, 'done', None)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator

from rag.config import GenerationSettings
from rag.errors import ConfigError, GenerationError
from rag.generation.base import Generator, validate_messages

log = logging.getLogger(__name__)


def sse_data(line: bytes):
    """One server-sent-events line: the decoded JSON of a ``data:`` line, "done" for ``[DONE]``, else None."""
    line = line.strip()
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return "done"
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        return None


class OpenAIGenerator(Generator):
    """Chat completions from an OpenAI-compatible server; thread-safe (the server does the batching)."""

    def __init__(self, settings: GenerationSettings):
        import httpx

        if not settings.base_url:
            raise ConfigError("generation.backend 'openai' needs generation.base_url, e.g. http://127.0.0.1:8080/v1")
        self.settings = settings
        self.model_id = settings.model
        self.supports_json_schema = settings.json_schema
        self.base_url = settings.base_url.rstrip("/")
        key = settings.api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers,
                                    timeout=httpx.Timeout(settings.request_timeout_s, connect=10.0))

    def stream(self, messages: list[dict], *, max_new_tokens: int | None = None, temperature: float | None = None,
               json_schema: dict | None = None, stats: dict | None = None) -> Iterator[str]:
        self.check_schema_support(json_schema)
        body = {
            "model": self.settings.model,
            "messages": validate_messages(messages),
            "max_tokens": max_new_tokens or self.settings.max_new_tokens,
            "temperature": self.settings.temperature if temperature is None else temperature,
            "seed": self.settings.seed,
            "stream": True,
        }
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": json_schema}}
        return self._stream(body, stats if stats is not None else {})

    def _stream(self, body: dict, stats: dict) -> Iterator[str]:
        import httpx

        try:
            with self._client.stream("POST", "/chat/completions", json=body) as r:
                if r.status_code != 200:
                    raise GenerationError(f"the generation server at {self.base_url} answered {r.status_code}: "
                                          f"{r.read().decode(errors='replace')[:300]}")
                for line in r.iter_lines():
                    chunk = sse_data(line.encode() if isinstance(line, str) else line)
                    if chunk is None:
                        continue
                    if chunk == "done":
                        break
                    if "error" in chunk:
                        raise GenerationError(f"the generation server failed: {chunk['error']}")
                    if chunk.get("timings"):  # llama.cpp's server reports these
                        stats.update(chunk["timings"])
                    for choice in chunk.get("choices", ()):
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            yield piece
        except httpx.HTTPError as e:
            raise GenerationError(f"cannot reach the generation server at {self.base_url}: {e}. Is it running? "
                                  "(generation.base_url)") from None

    def close(self) -> None:
        self._client.close()
