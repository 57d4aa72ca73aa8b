"""Concurrent requests computed together: a small micro-batcher with a bounded wait.

The app serves every chat turn through one :class:`TurnBatcher`: a server thread that handles a
``/chat`` call or a UI message submits its request and blocks; one worker thread takes the first
request waiting, then whatever else arrives within ``max_wait`` seconds (at most ``max_batch`` in
all), and computes them in one call (:func:`crs.serve.chat.chat_turns`: one recommender scoring
and one generator batch per decoding pass for all of them). Under load the batches fill while the
previous one computes; a lone user waits at most ``max_wait`` more.

A batch whose computation raises is computed again request by request, so one bad request fails
alone and the others are answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from contextlib import nullcontext
from typing import Callable, ContextManager, Generic, Sequence, TypeVar

logger = logging.getLogger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")

MAX_BATCH = 32  # requests computed together at most
MAX_WAIT = 0.005  # seconds the worker waits for more requests after the first


class TurnBatcher(Generic[Request, Result]):
    """``batcher(request)`` returns ``compute([request, ...])``'s result for it, computed in a batch
    with the requests submitted around the same time; ``lock`` is held while a batch computes."""

    def __init__(self, compute: Callable[[Sequence[Request]], list[Result]], max_batch: int = MAX_BATCH,
                 max_wait: float = MAX_WAIT, lock: ContextManager | None = None, name: str = "turn-batcher"):
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0 (got {max_batch}, {max_wait})")
        self.compute, self.max_batch, self.max_wait = compute, max_batch, max_wait
        self.lock = lock if lock is not None else nullcontext()
        self.name = name
        self.batch_sizes: list[int] = []  # the size of every batch computed so far
        self._queue: queue.Queue[tuple[Request, Future] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def __call__(self, request: Request, timeout: float | None = None) -> Result:
        return self.submit(request).result(timeout)

    def submit(self, request: Request) -> Future:
        """Queue ``request``; the future holds its result (or its exception)."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        self._ensure_worker()
        future: Future = Future()
        self._queue.put((request, future))
        return future

    def close(self) -> None:
        """Stop the worker once the requests already queued are answered."""
        self._closed = True
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._worker.start()

    def _collect(self, first: tuple[Request, Future]) -> tuple[list[tuple[Request, Future]], bool]:
        """``first`` and the requests that arrive within ``max_wait`` (up to ``max_batch``); whether
        the batcher was closed meanwhile."""
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:  # what is queued already comes at once, after the deadline too
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch, closing = self._collect(item)
            self._answer(batch)
            if closing:
                return

    def _answer(self, batch: list[tuple[Request, Future]]) -> None:
        live = [(request, future) for request, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        self.batch_sizes.append(len(live))
        try:
            with self.lock:
                results = self.compute([request for request, _ in live])
            if len(results) != len(live):
                raise RuntimeError(f"{self.name}: {len(live)} requests gave {len(results)} results")
        except Exception as error:
            if len(live) == 1:
                logger.exception("%s: a request failed", self.name)
                live[0][1].set_exception(error)
                return
            logger.exception("%s: a batch of %d failed; computing its requests one by one", self.name, len(live))
            for request, future in live:
                try:
                    with self.lock:
                        future.set_result(self.compute([request])[0])
                except Exception as error:
                    future.set_exception(error)
            return
        for (_, future), result in zip(live, results):
            future.set_result(result)

