"""The gateway's per-frame metrics, shared by every socket of the process: frame counters by
type (each label's child looked up once), and deliveries, counted once per fan-out."""

from __future__ import annotations

import time
from typing import Any

from chat.metrics import Metrics, observe_many


class DeliveryStats:
    """The process's delivery metrics, shared by every socket's writer. Each frame type's
    counter child is looked up once: this is on the per-recipient path.

    A live event's fan-out (`Gateway.on_message`, between `begin_fanout` and `end_fanout`)
    is counted once at its end: N deliveries add N to `chat_deliveries_total` and to the
    `message` frames, and N observations of one latency (taken at the end, when the last
    recipient's frame was queued) to the histogram, in three calls instead of 3 N. The end
    runs before the fan-out's callback returns, so a scrape (another callback on the same
    loop) always sees every delivery queued so far, exactly."""

    __slots__ = ("_batch", "_batch_ts", "_frames_in", "_frames_out", "_m", "_message")

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._frames_out: dict[str, Any] = {}
        self._frames_in: dict[str, Any] = {}
        self._message = metrics.frames_out.labels("message")
        self._batch_ts: int | None = None  # the `ts` of the event being fanned out
        self._batch = 0  # its deliveries queued so far, not yet counted

    def frame_in(self, kind: str) -> None:
        counter = self._frames_in.get(kind)
        if counter is None:
            counter = self._frames_in[kind] = self._m.frames_in.labels(kind)
        counter.inc()

    def frame_out(self, kind: str) -> None:
        counter = self._frames_out.get(kind)
        if counter is None:
            counter = self._frames_out[kind] = self._m.frames_out.labels(kind)
        counter.inc()

    def delivered(self, ts: int, replayed: bool) -> None:
        """A message frame was queued to a socket (it is counted as a frame out too). A
        replayed event's age is the client's time away, not the send path's latency, so the
        latency histogram (the SLO) leaves it out."""
        if not replayed and ts == self._batch_ts:
            self._batch += 1
            return
        m = self._m
        self._message.inc()
        m.deliveries.inc()
        if replayed:
            m.replayed.inc()
        else:
            m.delivery_latency.observe(max(0.0, time.time() - ts / 1000))

    def begin_fanout(self, ts: int) -> None:
        """Live deliveries of the event with this `ts` are tallied until `end_fanout`."""
        self.end_fanout()
        self._batch_ts = ts

    def end_fanout(self) -> None:
        n, ts = self._batch, self._batch_ts
        self._batch, self._batch_ts = 0, None
        if n and ts is not None:
            m = self._m
            self._message.inc(n)
            m.deliveries.inc(n)
            observe_many(m.delivery_latency, max(0.0, time.time() - ts / 1000), n)
