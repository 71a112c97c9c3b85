"""Dramatiq's RedisBroker, polling its queues less.

Dramatiq's Redis consumer polls its queue (one `EVALSHA` of its dispatch script, which also
records the worker's heartbeat: three Redis commands) and, while it finds nothing, sleeps
5-10 ms, then 10-20, 20-40, ... up to the worker timeout, starting over after every message it
finds. A worker consumes four queues (persistence, maintenance and a delay queue for each), so
an idle worker polled Redis about 5.5 times a second, 16 commands a second: in a room of 1000
at 10 msg/s, 1.6 Redis commands per message on top of the send's 8 (issue 14).

Here a consumer still fetches again at once while it finds jobs, but after an empty fetch it
waits 80-160 ms (its first wait after a job), then twice as long each time, up to a cap:

- a prompt queue (persistence: search finds a message once a worker has archived it, normally
  within two seconds of its ack, docs/http.md) with none of its jobs running here: the worker
  timeout, so an idle persistence queue is polled every 0.5-1 s as before;
- any other queue (maintenance, sent every sweep interval; the delay queues, which only hold
  retries), and a prompt queue while one of its jobs runs here: `RELAXED_POLL_MS`, every
  2.5-5 s. Persistence is one chain at a time (chat/worker/actors.py): while its job runs
  here no other is due but a backlog's helper jobs, which a worker with no job running picks
  up within a second and this one within that wait; when the job ends the cap is the prompt
  one again at the next slice.

Between fetches `__next__` returns None every `SLICE_S` without touching Redis, so Dramatiq's
consumer thread still moves delayed messages to their queue when they are due and sees a stop
within `SLICE_S`: only Redis is polled less. An idle worker now costs Redis 6.6 commands a
second (16.2 before; four queues, 30 s on a Redis of its own).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

FIRST_BACKOFF_EXPONENT = 4
"""Dramatiq's backoff is 5 ms * 2**misses (times 1-2, jitter): 4 makes the first wait 80-160 ms."""
RELAXED_POLL_MS = 5000
"""The cap on the wait between two empty fetches of a queue that need not be prompt."""
SLICE_S = 0.25
"""How often `__next__` hands control back to Dramatiq's consumer thread while it waits."""


class _PatientConsumer(_RedisConsumer):
    def __init__(
        self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int, *, prompt: bool
    ) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self.prompt = prompt
        self._fetched_at = float("-inf")
        self._wait_prompt_s = self._wait_relaxed_s = 0.0

    def _due(self) -> float:
        """When the next fetch is due: the prompt wait only while no job of the queue runs."""
        idle = self.prompt and not self.outstanding_message_count
        return self._fetched_at + (self._wait_prompt_s if idle else self._wait_relaxed_s)

    def __next__(self) -> MessageProxy | None:
        # Dramatiq's own `__next__`, but for the waits (see the module docstring).
        while self.message_cache:
            data = self.message_cache.pop(0)
            if data is None:  # Dramatiq warns of these (its issue 266): nothing to run
                continue
            self.misses = 0
            message = Message.decode(data)
            self.queued_message_ids.add(message.message_id)
            return MessageProxy(message)
        now = time.monotonic()
        room = self.prefetch - self.outstanding_message_count
        if room <= 0:
            time.sleep(SLICE_S)
            return None
        if now >= self._due():
            try:
                self.message_cache = self.broker.do_fetch(self.queue_name, room)
            except redis.ConnectionError as e:
                raise ConnectionClosed(e) from None  # type: ignore[no-untyped-call]
            if self.message_cache:
                return self.__next__()
            self._waited_once_more(now)
        time.sleep(min(SLICE_S, max(0.0, self._due() - now)))
        return None

    def _waited_once_more(self, now: float) -> None:
        """After an empty fetch: the waits before the next one, drawn as Dramatiq draws its
        backoff (one miss more each time)."""
        misses = max(self.misses, FIRST_BACKOFF_EXPONENT)
        self.misses, prompt_ms = compute_backoff(misses, max_backoff=self.timeout)
        _, relaxed_ms = compute_backoff(misses, max_backoff=max(self.timeout, RELAXED_POLL_MS))
        self._fetched_at = now
        self._wait_prompt_s, self._wait_relaxed_s = prompt_ms / 1000, relaxed_ms / 1000


class PatientRedisBroker(RedisBroker):
    """`prompt_queues`: the queues polled every worker timeout while idle; the others (and
    their delay queues) every `RELAXED_POLL_MS`."""

    def __init__(self, *, prompt_queues: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.prompt_queues = frozenset(prompt_queues)

    def close(self) -> None:
        """Dramatiq's RedisBroker leaves its client's connections open (its `close` is the base
        class's no-op): they were closed only if and when the collector got to them, and one
        in a reference cycle warned of an unclosed socket."""
        super().close()
        self.client.connection_pool.disconnect()
        self.client.close()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> _RedisConsumer:
        return _PatientConsumer(
            self, queue_name, prefetch, timeout, prompt=queue_name in self.prompt_queues
        )
