"""The interface every answer-generating backend implements.

A Generator turns OpenAI-style chat messages into text, streamed piece by piece (about one
token each). Implementations guard their engine with a lock (one generation at a time per
instance) and stay usable when a consumer stops iterating early.

Example:
    >>> class Echo(Generator):
    ...     model_id = "echo"
    ...     def stream(self, messages, *, max_new_tokens=None, temperature=None, json_schema=None, stats=None):
    ...         self.check_schema_support(json_schema)
    ...         yield from messages[-1]["content"].split()
    >>> Echo().complete([{"role": "user", "content": "hello world"}])
    'helloworld'
    >>> Echo().count_tokens("twelve chars")
    3
    >>> Echo().yes_probability([[{"role": "user", "content": "Yes indeed"}], [{"role": "user", "content": "No"}]])
    [1.0, 0.0]
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator

from rag.errors import InputError

ROLES = ("system", "user", "assistant")


class Generator(ABC):
    """A loaded LLM. Subclasses set ``model_id`` and implement ``stream``."""

    model_id: str = "unknown"  # human-readable model name, recorded in eval records
    supports_json_schema: bool = False  # True if stream(json_schema=...) constrains the output

    @abstractmethod
    def stream(
        self,
        messages: list[dict],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict | None = None,
        stats: dict | None = None,
    ) -> Iterator[str]:
        """Yield the answer to ``messages`` as text pieces while it is generated.

        ``json_schema``: when given, the output is constrained to that JSON schema; a backend that
        cannot do this raises NotImplementedError (see ``check_schema_support``). ``stats``: a dict the
        backend fills with what it measured for this request (e.g. llama.cpp's ``prompt_n``).
        Closing the iterator early cancels the generation. A backend may yield "" while it reads the
        prompt (llama.cpp: once per ``n_batch`` tokens), so a caller can stop it before the first token.
        """

    def complete(self, messages: list[dict], **kw) -> str:
        """The whole answer as one string."""
        return "".join(self.stream(messages, **kw))

    def yes_probability(self, prompts: list[list[dict]]) -> list[float]:
        """For each chat prompt (a yes/no question), the probability that the model's answer is yes.

        This default asks for one token and reads it (1.0 yes, 0.0 otherwise): coarse, but every backend has it.
        llama.cpp and transformers override it with the probabilities of the first token (yes against no).
        """
        return [1.0 if self.complete(m, max_new_tokens=2, temperature=0.0).strip().lower().startswith("yes") else 0.0
                for m in prompts]

    def count_tokens(self, text: str) -> int:
        """Approximate token count, for prompt budgeting (backends override with the real tokenizer)."""
        return len(text) // 4

    def close(self) -> None:
        """Free the model. The generator must not be used afterwards."""

    def check_schema_support(self, json_schema: dict | None) -> None:
        if json_schema is not None and not self.supports_json_schema:
            raise NotImplementedError(
                f"{type(self).__name__} cannot constrain output to a JSON schema; use the llamacpp backend"
            )

    def __enter__(self) -> "Generator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def yes_share(logprobs: dict[str, float]) -> float:
    """P(yes) / (P(yes) + P(no)) from the first token's candidates (token text -> log probability; "Yes", " yes"
    and "YES" count alike); 0.5 when neither is among them.

    >>> round(yes_share({"No": -0.48, "Yes": -1.01, "yes": -5.3, "Answer": -7.1}), 3)
    0.374
    """
    mass = {"yes": 0.0, "no": 0.0}
    for token, lp in logprobs.items():
        word = token.strip().lower()
        if word in mass:
            mass[word] += math.exp(lp)
    total = mass["yes"] + mass["no"]
    return mass["yes"] / total if total else 0.5


def validate_messages(messages: list[dict]) -> list[dict]:
    """Check the OpenAI-style message list; returns plain ``{"role", "content"}`` dicts."""
    if not messages:
        raise InputError("no messages to answer")
    out = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise InputError(f"message {i} must be {{'role': one of {ROLES}, 'content': str}}, got {m!r:.200}")
        out.append({"role": role, "content": content})
    return out
