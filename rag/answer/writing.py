"""The model writes: its output streamed, parsed and checked sentence by sentence, and translations.

``generate`` runs the generator and yields the visible text as it arrives (the answer string of the JSON
``{found, answer}`` on llama.cpp); ``checked`` feeds each finished sentence to the citation check
(``rag.answer.citations.Attributor``) and yields only the sentences that passed, so only checked text is
ever shown; ``translate`` asks the model for a faithful translation, keeping ``[n]`` markers.

Example:
    >>> from rag.testing import FakeGenerator
    >>> timings = {}
    >>> translate(FakeGenerator(), "BERT has 340M parameters [1].", "Spanish", keep_markers=True)  # the fake returns it as is
    'BERT has 340M parameters [1].'
    >>> pieces = generate(FakeGenerator(), [{"role": "user", "content": "Hola"}], False, timings)
    >>> "".join(pieces), sorted(timings)[:2]
    ('Hola', ['completion_tokens', 'generation_s'])
"""

from __future__ import annotations

import re
import threading
import time

from rag.answer.citations import Attributor
from rag.answer.output import AnswerStream, parse_output
from rag.answer.policy import says_refusal
from rag.answer.prompting import ANSWER_SCHEMA, translate_messages
from rag.errors import Cancelled
from rag.text import split_sentences

TRANSLATE_TOKENS = 300  # a translated answer or question; longer ones are cut


def generate(generator, messages: list[dict], json_mode: bool, timings: dict, max_new_tokens: int | None = None,
             cancel: threading.Event | None = None):
    """Yield visible text pieces; return the raw output. Fills ttft_s, tokens_per_s, completion_tokens, prompt_tokens.
    ``cancel`` set: the model's stream is closed (its slot freed) and Cancelled raised."""
    if cancel is not None and cancel.is_set():  # cancelled while the evidence was chosen: never start the model
        raise Cancelled("the request was cancelled")
    t, stats = time.perf_counter(), {}
    first, pieces, raw = None, 0, []
    extractor = AnswerStream() if json_mode else None
    stream = generator.stream(messages, max_new_tokens=max_new_tokens, json_schema=ANSWER_SCHEMA if json_mode else None,
                              stats=stats)
    for piece in stream:
        if cancel is not None and cancel.is_set():
            stream.close()
            raise Cancelled("the request was cancelled")
        if not piece:  # the model is still reading the prompt
            continue
        if first is None:
            first = time.perf_counter()
        pieces += 1
        raw.append(piece)
        visible = extractor.feed(piece) if extractor else piece
        if visible and not (extractor and extractor.found is False):  # an answer written under found=false is never shown
            yield visible
    end = time.perf_counter()
    first = first or end
    timings.update(ttft_s=first - t, generation_s=end - t, completion_tokens=pieces,
                   tokens_per_s=(pieces - 1) / (end - first) if pieces > 1 and end > first else 0.0)
    if stats.get("prompt_n"):
        timings["prompt_tokens"] = stats["prompt_n"]
    return "".join(raw)


def checked(gen, att: Attributor, json_mode: bool, stream: bool, timings: dict, refusal_text: str):
    """Feed the model's sentences (from ``generate``) to ``att`` as each one is complete; yield the cited ones
    (when ``stream``). Returns whether the model said it found the answer (``found`` and no refusal phrase)."""
    t, buf, emitted = time.perf_counter(), "", False
    while True:
        try:
            buf += next(gen)
        except StopIteration as stop:
            raw = stop.value
            break
        sentences = split_sentences(buf)
        for sent in sentences[:-1]:  # the last one may still grow
            cited = att.add(sent.text)
            if cited and stream:
                if not emitted:
                    timings["first_text_s"] = time.perf_counter() - t
                yield (" " if emitted else "") + cited
                emitted = True
        if len(sentences) > 1:
            buf = buf[sentences[-1].start:]
    found, text = parse_output(raw, json_mode)
    if not found or says_refusal(text, refusal_text):
        return False
    for sent in split_sentences(buf):
        cited = att.add(sent.text)
        if cited and stream:
            timings.setdefault("first_text_s", time.perf_counter() - t)
            yield (" " if emitted else "") + cited
            emitted = True
    return True


def translate(generator, text: str, language: str, keep_markers: bool = False) -> str:
    """``text`` in ``language`` (an English name); ``keep_markers``: any ``[n]`` the model lost is put back at the end."""
    out = " ".join(generator.complete(translate_messages(text, language), max_new_tokens=TRANSLATE_TOKENS,
                                      temperature=0.0).split())
    if not out:
        return text
    if keep_markers:
        missing = [m for m in dict.fromkeys(re.findall(r"\[\d+\]", text)) if m not in out]
        if missing:
            out = f"{out} {''.join(missing)}"
    return out
