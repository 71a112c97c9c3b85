"""A coalescing work queue with per-key backoff, in the manner of client-go's workqueue.

Guarantees (tested in tests/operator/test_workqueue.py):
- a key is never processed by two workers at once, so passes of one ChatCluster never
  interleave;
- adding a key that is already waiting does nothing (bursts of child events coalesce into
  one pass); adding a key that is being processed runs it once more afterwards;
- a failed pass is retried after an exponential backoff (``base`` doubling up to ``cap``),
  never dropped, and never crashes a worker; a success resets the backoff;
- ``resync`` re-adds every key from ``keys()`` periodically (the drift-repair bound).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        process: Callable[[K], None],
        *,
        keys: Callable[[], Iterable[K]],
        resync_seconds: float,
        workers: int = 2,
        backoff_base: float = 1.0,
        backoff_cap: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._process = process
        self._keys = keys
        self._resync = resync_seconds
        self._workers = workers
        self._base = backoff_base
        self._cap = backoff_cap if backoff_cap is not None else resync_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._running: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- producers ---------------------------------------------------------------------
    def add(self, key: K, delay: float = 0.0) -> None:
        with self._cond:
            due = self._clock() + delay
            if key in self._due and self._due[key] <= due:
                return  # already waiting, and sooner
            if key in self._running and delay == 0.0:
                self._dirty.add(key)
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify()

    def failures(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def backoff(self, failures: int) -> float:
        return float(min(self._cap, self._base * 2 ** max(0, failures - 1)))

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"reconcile-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        resync = threading.Thread(target=self._resync_loop, name="resync", daemon=True)
        resync.start()
        self._threads.append(resync)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def resync_now(self) -> None:
        try:
            keys = list(self._keys())
        except Exception as exc:  # the API may be down: report and try again next period
            log.error("listing ChatClusters for the resync failed: %s", exc)
            return
        for key in keys:
            self.add(key)

    # -- internals ---------------------------------------------------------------------
    def _resync_loop(self) -> None:
        while not self._stop.wait(self._resync):
            self.resync_now()

    def _next(self) -> K | None:
        with self._cond:
            while not self._stop.is_set():
                now = self._clock()
                while self._heap:
                    due, _, key = self._heap[0]
                    if self._due.get(key) != due:
                        heapq.heappop(self._heap)  # superseded by an earlier add
                        continue
                    if due > now:
                        break
                    heapq.heappop(self._heap)
                    del self._due[key]
                    if key in self._running:
                        self._dirty.add(key)
                        continue
                    self._running.add(key)
                    return key
                wait = (self._heap[0][0] - now) if self._heap else None
                self._cond.wait(wait)
            return None

    def _work(self) -> None:
        while (key := self._next()) is not None:
            failed = False
            try:
                self._process(key)
            except Exception:  # a worker must survive anything; the pass is retried
                log.exception("reconcile of %s failed; will retry", key)
                failed = True
            with self._cond:
                self._running.discard(key)
                if failed:
                    count = self._failures[key] = self._failures.get(key, 0) + 1
                else:
                    self._failures.pop(key, None)
                rerun = key in self._dirty
                self._dirty.discard(key)
            if failed:
                self.add(key, self.backoff(count))
            elif rerun:
                self.add(key)
