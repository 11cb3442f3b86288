"""One answer for the UI or the HTTP API: through the fair queue, in a worker thread, cancellable.

    run = AnswerRun(app, queue, messages)        # raises Busy when the line is full
    for event in run.events():                    # Waiting | Sources | str | Answer | Tick
        ...
    run.cancel()                                  # from any thread: leave the line, or stop the model

``events`` yields ``Waiting(position, eta_s)`` while in line, then the answer stream of
``App.chat_stream`` (``Sources``, checked text pieces, the ``Answer``), with a ``Tick`` every
``poll_s`` seconds in between: a point where a caller that was cancelled (Gradio closes a generator
only where it yields) can stop. Leaving the loop early, ``cancel()``, or ``timeout_s`` passing all
stop the model within a token and free its slot.

Example (fakes):
    >>> import rag, tempfile
    >>> from rag.testing import FakeEmbedder, FakeGenerator
    >>> from serving.answer_queue import AnswerQueue
    >>> app = rag.load(data_dir=tempfile.mkdtemp(), embedder=FakeEmbedder(), generator=FakeGenerator())
    >>> _ = app.ingest(["data/sample"], progress=False)
    >>> run = AnswerRun(app, AnswerQueue(slots=1), [{"role": "user", "content": "Which benchmark evaluates Chinese multimodal math?"}])
    >>> [type(e).__name__ for e in run.events() if not isinstance(e, Tick)][-1]
    'Answer'
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from rag.errors import Cancelled, GenerationError
from serving.answer_queue import AnswerQueue

_END = object()


@dataclass
class Waiting:
    position: int  # place in the line, from 1
    eta_s: float


@dataclass
class Tick:
    elapsed_s: float


class AnswerRun:
    def __init__(self, app, answer_queue: AnswerQueue, messages: list[dict], k: int | None = None,
                 filters: dict | None = None, timeout_s: float = 300.0):
        self.app, self.messages, self.k, self.filters, self.timeout_s = app, messages, k, filters, timeout_s
        self.ticket = answer_queue.enter()
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        self.ticket.cancel()

    def events(self, poll_s: float = 0.5) -> Iterator:
        try:
            while not self.ticket.wait(timeout=poll_s):
                yield Waiting(self.ticket.position(), self.ticket.eta_s())
            yield from self._answer(poll_s)
        finally:
            self._stop()

    def _answer(self, poll_s: float) -> Iterator:
        items: queue.Queue = queue.Queue()
        cancel = self.ticket.cancelled

        def work() -> None:
            try:
                for item in self.app.chat_stream(self.messages, k=self.k, filters=self.filters, cancel=cancel):
                    items.put(item)
            except BaseException as e:  # re-raised in the caller's thread
                items.put(e)
            finally:
                items.put(_END)

        self._thread = threading.Thread(target=work, name="answer", daemon=True)
        start = time.monotonic()
        self._thread.start()
        while True:
            try:
                item = items.get(timeout=poll_s)
            except queue.Empty:
                elapsed = time.monotonic() - start
                if elapsed > self.timeout_s:
                    self.cancel()
                    raise GenerationError(f"the answer took longer than {self.timeout_s:.0f} s and was stopped "
                                          "(serving.request_timeout_s)") from None
                if cancel.is_set():
                    raise Cancelled("the request was cancelled")
                yield Tick(elapsed)
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _stop(self) -> None:
        """Whatever ended the loop: stop the model (if still running) and give the slot back."""
        if self._thread is not None and self._thread.is_alive():
            self.ticket.cancel()
            self._thread.join(timeout=5)
        self.ticket.done()
