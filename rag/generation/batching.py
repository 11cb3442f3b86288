"""Batching concurrent requests into one ``generate`` call (the transformers backend, for GPUs).

On a GPU, decoding one sequence leaves most of the chip idle; decoding several at once costs little
more per step. ``Batcher`` collects the requests that arrive within ``wait_s`` of each other (up to
``max_batch``), left-pads them into one batch, and runs a single greedy/sampled ``generate``. A
streamer splits each step's tokens by row, so every request still streams its own text. A row
stops when its caller closes its iterator (cancel), at its own ``max_new_tokens``, or at EOS.

Example (any causal LM and tokenizer):
    >>> b = Batcher(model, tokenizer, max_batch=4)                       # doctest: +SKIP
    >>> "".join(b.submit("<prompt text>", max_new_tokens=20, temperature=0.0))  # doctest: +SKIP
    'Paris ...'
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag.errors import GenerationError

_END = object()


@dataclass
class _Request:
    text: str
    max_new_tokens: int
    temperature: float
    out: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    sent: str = ""
    done: bool = False


class Batcher:
    def __init__(self, model, tokenizer, max_batch: int, wait_s: float = 0.02, seed: int = 0):
        self.model, self.tokenizer, self.max_batch, self.wait_s, self.seed = model, tokenizer, max_batch, wait_s, seed
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="hf-batcher", daemon=True)
        self._thread.start()
        self.batches: list[int] = []  # sizes of the batches run (for tests and benchmarks)

    def submit(self, text: str, max_new_tokens: int, temperature: float) -> Iterator[str]:
        req = _Request(text, max_new_tokens, temperature)
        self._queue.put(req)
        try:
            while (piece := req.out.get()) is not _END:
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            req.cancelled.set()  # early close: the row stops at the next step

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    # -- worker ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            end = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, end - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                if nxt.temperature != first.temperature:  # one sampling setting per batch
                    self._queue.put(nxt)
                    break
                batch.append(nxt)
            batch = [r for r in batch if not r.cancelled.is_set()]
            if batch:
                self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        from rag.generation.kernels import attention_kernels

        tok = self.tokenizer
        self.batches.append(len(batch))
        try:
            side = tok.padding_side
            tok.padding_side = "left"
            try:
                inputs = tok([r.text for r in batch], return_tensors="pt", padding=True, add_special_tokens=False)
            finally:
                tok.padding_side = side
            inputs = inputs.to(self.model.device)
            eos = tok.eos_token_id

            class _Rows(StoppingCriteria):  # per-row stop: cancelled or past its own limit
                def __call__(self, input_ids, scores, **kw):
                    return torch.tensor([r.cancelled.is_set() or r.done for r in batch], device=input_ids.device)

            streamer = _RowStreamer(batch, tok, eos)
            temp = batch[0].temperature
            sampling = {"do_sample": True, "temperature": temp} if temp > 0 else {"do_sample": False}
            if temp > 0:
                torch.manual_seed(self.seed)
            with torch.inference_mode(), attention_kernels(self.model.device.type):
                self.model.generate(**inputs, streamer=streamer, max_new_tokens=max(r.max_new_tokens for r in batch),
                                    pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
                                    stopping_criteria=StoppingCriteriaList([_Rows()]), **sampling)
        except BaseException as e:  # every waiting caller gets the error
            err = e if not isinstance(e, Exception) else GenerationError(f"batched generation failed: {type(e).__name__}: {e}")
            for r in batch:
                r.out.put(err)
        finally:
            for r in batch:
                r.out.put(_END)


class _RowStreamer:
    """Receives each step's tokens (one per row) from ``generate`` and streams each row's new text."""

    def __init__(self, batch: list[_Request], tokenizer, eos: int | None):
        self.batch, self.tok, self.eos = batch, tokenizer, eos
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # the first call is the prompt
            self._prompt_seen = True
            return
        for r, t in zip(self.batch, value.reshape(-1).tolist()):
            if r.done or r.cancelled.is_set():
                continue
            if t == self.eos:
                r.done = True
                continue
            r.tokens.append(t)
            text = self.tok.decode(r.tokens, skip_special_tokens=True)
            if not text.endswith("\ufffd") and len(text) > len(r.sent):  # hold back half a UTF-8 character
                r.out.put(text[len(r.sent):])
                r.sent = text
            if len(r.tokens) >= r.max_new_tokens:
                r.done = True

    def end(self) -> None:
        pass
