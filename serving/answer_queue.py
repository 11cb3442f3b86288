"""A fair, bounded queue in front of the answer slots, shared by the chat UI and the HTTP API.

Requests are served first come, first served by ``slots`` workers. At most ``max_waiting`` may
wait; one more gets ``Busy`` with an estimate of the wait ("try again in ~N s"), never an unbounded
pile-up. A waiting request can see its position and be cancelled (Stop, New chat, a closed tab,
a dropped HTTP client), which takes it out of the line at once.

Example:
    >>> q = AnswerQueue(slots=1, max_waiting=1)
    >>> first = q.enter()
    >>> first.wait(timeout=1)
    True
    >>> second = q.enter()
    >>> second.position()
    1
    >>> q.enter()
    Traceback (most recent call last):
    ...
    serving.answer_queue.Busy: the server is busy (1 answering, 1 waiting); try again in ~40 s
    >>> first.done(); second.wait(timeout=1)
    True
    >>> second.done(); q.stats()["running"]
    0
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque

from rag.errors import Cancelled, RagError

DEFAULT_SERVICE_S = 20.0  # assumed answer time until one has been measured


class Busy(RagError):
    """The queue is full; the message says when to try again."""

    def __init__(self, running: int, waiting: int, retry_after_s: float):
        self.retry_after_s = retry_after_s
        super().__init__(f"the server is busy ({running} answering, {waiting} waiting); try again in ~{retry_after_s:.0f} s")


class Ticket:
    """One request's place in the line."""

    def __init__(self, queue: "AnswerQueue", number: int):
        self.queue = queue
        self.number = number
        self.cancelled = threading.Event()
        self.started: float | None = None
        self._finished = False

    def position(self) -> int:
        """Place in the line of waiting requests, from 1 (0: answering, or no longer waiting)."""
        return self.queue._position(self)

    def eta_s(self) -> float:
        """Rough seconds until this request starts."""
        return self.queue._eta(self.position())

    def wait(self, timeout: float | None = None, poll_s: float = 0.1) -> bool:
        """Block until a slot is free (True), the timeout passes (False) or the ticket is cancelled (Cancelled)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.cancelled.is_set():
                self.queue._leave(self)
                raise Cancelled("the request was cancelled")
            if self.queue._try_start(self):
                return True
            if end is not None and time.monotonic() >= end:
                return False
            with self.queue._cond:
                self.queue._cond.wait(poll_s if end is None else max(0.0, min(poll_s, end - time.monotonic())))

    def cancel(self) -> None:
        """Give up: leave the line, or (if answering) let the worker see ``cancelled`` and stop."""
        self.cancelled.set()
        with self.queue._cond:
            self.queue._cond.notify_all()

    def done(self) -> None:
        """The answer is finished (or failed): free the slot. Safe to call twice."""
        self.queue._finish(self)

    def __enter__(self) -> "Ticket":
        return self

    def __exit__(self, *exc) -> None:
        self.done()


class AnswerQueue:
    def __init__(self, slots: int = 1, max_waiting: int = 16):
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._running: set[int] = set()
        self._numbers = itertools.count(1)
        self._service: deque[float] = deque(maxlen=20)  # recent answer times, for the wait estimate

    def enter(self) -> Ticket:
        """Join the line, or raise Busy when ``max_waiting`` requests already wait."""
        with self._cond:
            if len(self._running) >= self.slots and len(self._waiting) >= self.max_waiting:
                raise Busy(len(self._running), len(self._waiting), self._eta(len(self._waiting) + 1))
            t = Ticket(self, next(self._numbers))
            self._waiting.append(t)
            return t

    def stats(self) -> dict:
        with self._cond:
            return {"running": len(self._running), "waiting": len(self._waiting), "slots": self.slots,
                    "max_waiting": self.max_waiting, "mean_service_s": self._mean_service()}

    # -- internals -----------------------------------------------------------------------
    def _mean_service(self) -> float:
        return sum(self._service) / len(self._service) if self._service else DEFAULT_SERVICE_S

    def _eta(self, position: int) -> float:
        """Seconds until the request at ``position`` in the line starts (a rough mean; 0 = answering)."""
        return self._mean_service() * position / self.slots

    def _position(self, t: Ticket) -> int:
        with self._cond:
            try:
                return list(self._waiting).index(t) + 1
            except ValueError:
                return 0

    def _try_start(self, t: Ticket) -> bool:
        with self._cond:
            if t.number in self._running:
                return True
            if self._waiting and self._waiting[0] is t and len(self._running) < self.slots:
                self._waiting.popleft()
                self._running.add(t.number)
                t.started = time.monotonic()
                return True
            return False

    def _leave(self, t: Ticket) -> None:
        with self._cond:
            if t in self._waiting:
                self._waiting.remove(t)
            self._cond.notify_all()

    def _finish(self, t: Ticket) -> None:
        with self._cond:
            if t._finished:
                return
            t._finished = True
            if t.number in self._running:
                self._running.discard(t.number)
                if t.started is not None and not t.cancelled.is_set():
                    self._service.append(time.monotonic() - t.started)
            elif t in self._waiting:
                self._waiting.remove(t)
            self._cond.notify_all()
