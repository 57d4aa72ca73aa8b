"""Concurrent requests computed together: a small micro-batcher with a bounded wait.

The app serves every chat turn through one :class:`TurnBatcher`: a server thread that handles a
``/chat`` call or a UI message submits its request and blocks; one worker thread takes the first
request waiting, then whatever else arrives within ``max_wait`` seconds (at most ``max_batch`` in
all), and computes them in one call (:func:`crs.serve.chat.chat_turns`: one recommender scoring
and one generator batch per decoding pass for all of them). Under load the batches fill while the
previous one computes; a lone user waits at most ``max_wait`` more.

Under steady load the turns do not arrive together: the users whose turns were answered in one
batch send their next ones over the next hundred milliseconds or so (their clients and the server's
HTTP handling share the CPU with the models). Cut at ``max_wait``, such a wave split into a batch of
one or two and one of the rest, and every wave then paid a lone batch's fixed cost (about a
quarter of a 19-turn batch's time on 2 cores, measured with ``benchmarks.load``). So the worker
expects as many requests as were in flight at once in the last ``window`` seconds, and after the
first keeps gathering until that many have come or ``max_gather`` seconds have passed. A lone user
(never more than one turn in flight) waits ``max_wait`` as before.

A batch whose computation raises is computed again request by request, so one bad request fails
alone and the others are answered.
"""

from __future__ import annotations

import collections
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
MAX_GATHER = 0.15  # seconds it may wait in all when more requests were in flight together lately
WINDOW = 2.0  # seconds over which the requests in flight together are remembered


class TurnBatcher(Generic[Request, Result]):
    """``batcher(request)`` returns ``compute([request, ...])``'s result for it, computed in a batch
    with the requests submitted around the same time; ``lock`` is held while a batch computes."""

    def __init__(self, compute: Callable[[Sequence[Request]], list[Result]], max_batch: int = MAX_BATCH,
                 max_wait: float = MAX_WAIT, lock: ContextManager | None = None, name: str = "turn-batcher",
                 max_gather: float = MAX_GATHER, window: float = WINDOW):
        if max_batch < 1 or max_wait < 0 or max_gather < 0 or window < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait, max_gather, window >= 0 (got {max_batch}, {max_wait}, "
                             f"{max_gather}, {window})")
        self.compute, self.max_batch, self.max_wait = compute, max_batch, max_wait
        self.max_gather, self.window = max(max_gather, max_wait), window
        self._in_flight = 0  # submitted and not yet answered
        self._peaks: collections.deque[tuple[float, int]] = collections.deque()  # (time, requests in flight) at each submit
        self._count_lock = threading.Lock()
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
        with self._count_lock:
            self._in_flight += 1
            self._peaks.append((time.monotonic(), self._in_flight))
        self._queue.put((request, future))
        return future

    def _settle(self, future: Future, result: object = None, error: BaseException | None = None) -> None:
        """Count ``future``'s request out of those in flight, then give it its result or error (in
        that order: a user woken by the result may submit the next turn at once, and must not find
        this one still counted)."""
        with self._count_lock:
            self._in_flight -= 1
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def expected(self) -> int:
        """How many requests a batch may expect: the most that were in flight at once (submitted, not
        yet answered) in the last ``window`` seconds, at most ``max_batch``."""
        with self._count_lock:
            horizon = time.monotonic() - self.window
            while self._peaks and self._peaks[0][0] < horizon:
                self._peaks.popleft()
            return min(self.max_batch, max((count for _, count in self._peaks), default=1))

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
        """``first`` and the requests that arrive within ``max_wait`` (up to ``max_batch``), or, while
        fewer than :meth:`expected` have come, within ``max_gather``; whether the batcher was closed
        meanwhile."""
        started = time.monotonic()
        batch, expected = [first], self.expected()
        while len(batch) < self.max_batch:
            deadline = started + (self.max_gather if len(batch) < expected else self.max_wait)
            try:  # what is queued already comes at once, after the deadline too
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            expected = max(expected, self.expected())  # a burst that is still arriving counts too
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
        with self._count_lock:
            self._in_flight -= len(batch) - len(live)  # cancelled while they waited
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
                self._settle(live[0][1], error=error)
                return
            logger.exception("%s: a batch of %d failed; computing its requests one by one", self.name, len(live))
            for request, future in live:
                try:
                    with self.lock:
                        result = self.compute([request])[0]
                except Exception as error:
                    self._settle(future, error=error)
                else:
                    self._settle(future, result)
            return
        for (_, future), result in zip(live, results):
            self._settle(future, result)

