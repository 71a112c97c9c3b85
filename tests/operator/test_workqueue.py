"""The work queue's guarantees (operator/chat_operator/workqueue.py), driven directly."""

from __future__ import annotations

import threading
import time

from chat_operator.workqueue import WorkQueue

BOUND = 5.0


def wait(check: object, timeout: float = BOUND) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_a_key_is_never_processed_twice_at_once_and_adds_while_running_rerun() -> None:
    running: set[str] = set()
    overlaps: list[str] = []
    calls: list[str] = []
    gate = threading.Event()
    lock = threading.Lock()

    def process(key: str) -> None:
        with lock:
            if key in running:
                overlaps.append(key)
            running.add(key)
            calls.append(key)
        if len(calls) == 1:
            gate.wait(BOUND)
        with lock:
            running.discard(key)

    queue: WorkQueue[str] = WorkQueue(process, keys=list, resync_seconds=3600, workers=3)
    queue.start()
    try:
        queue.add("a")
        wait(lambda: calls == ["a"])
        for _ in range(5):
            queue.add("a")  # while running: coalesce into ONE more pass
        gate.set()
        wait(lambda: len(calls) == 2)
        time.sleep(0.2)  # nothing more may come (bounded observation, not synchronisation)
        assert calls == ["a", "a"]
        assert overlaps == []
    finally:
        queue.stop()


def test_waiting_adds_coalesce() -> None:
    calls: list[str] = []
    queue: WorkQueue[str] = WorkQueue(calls.append, keys=list, resync_seconds=3600)
    for _ in range(10):
        queue.add("a", delay=0.2)
    queue.start()
    try:
        wait(lambda: calls == ["a"])
        time.sleep(0.3)
        assert calls == ["a"]
    finally:
        queue.stop()


def test_failures_retry_with_growing_backoff_and_success_resets_it() -> None:
    attempts: list[float] = []

    def process(key: str) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("API says no")

    queue: WorkQueue[str] = WorkQueue(
        process, keys=list, resync_seconds=3600, backoff_base=0.1, backoff_cap=0.4
    )
    assert [queue.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.4, 0.4]
    queue.start()
    try:
        queue.add("a")
        wait(lambda: len(attempts) == 3)
        assert attempts[1] - attempts[0] >= 0.1
        assert attempts[2] - attempts[1] >= 0.2
        wait(lambda: queue.failures("a") == 0)
    finally:
        queue.stop()


def test_resync_adds_every_known_key_and_survives_a_failing_listing() -> None:
    calls: list[str] = []
    listings = iter([RuntimeError("forbidden"), ["a", "b"]])

    def keys() -> list[str]:
        item = next(listings, ["a", "b"])
        if isinstance(item, Exception):
            raise item
        return item

    queue: WorkQueue[str] = WorkQueue(calls.append, keys=keys, resync_seconds=0.05)
    queue.start()
    try:
        wait(lambda: {"a", "b"} <= set(calls))
    finally:
        queue.stop()
