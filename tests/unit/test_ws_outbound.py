"""The outbound writer without a socket: what it counts, and what goes out before a close.

The stream is a small stand-in for Tornado's `IOStream` (writes recorded, completed at once);
it has no file descriptor, so the kernel's unsent bytes read as 0, as on a non-Linux host.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from chat.metrics import Metrics
from chat.ws import close_codes
from chat.ws.outbound import DeliveryStats, Writer
from chat.ws.wire import FrameCache, text_frame


class Stream:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.socket = self

    def fileno(self) -> int:
        raise OSError("no socket")

    def closed(self) -> bool:
        return False

    def write(self, data: bytes) -> asyncio.Future[None]:
        self.written.append(data)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Socket:
    """The handler: `close` records the code and what the stream had received by then."""

    def __init__(self, stream: Stream) -> None:
        self.ws_connection: object | None = object()
        self.stream = stream
        self.closed_with: tuple[int | None, bytes] | None = None

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed_with = (code, b"".join(self.stream.written))
        self.ws_connection = None


def make(max_frames: int = 100, max_bytes: int = 1 << 20) -> tuple[Writer, Socket, Metrics]:
    metrics = Metrics()
    stream = Stream()
    socket = Socket(stream)
    writer = Writer(max_frames, max_bytes, FrameCache(), DeliveryStats(metrics), socket)
    writer.attach(stream)  # type: ignore[arg-type]
    return writer, socket, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def payload(n: int, **extra: Any) -> bytes:
    return orjson.dumps({"type": "message", "seq": n, **extra})


async def test_only_frames_the_budget_accepted_are_counted() -> None:
    writer, _, metrics = make(max_frames=2)
    assert writer.write(b'{"type":"pong"}', "pong")
    assert writer.deliver(payload(1), ts=0, replayed=False)
    assert not writer.deliver(payload(2), ts=0, replayed=False)  # over the frame budget
    assert sample(metrics, "chat_ws_frames_out_total", type="pong") == 1
    assert sample(metrics, "chat_ws_frames_out_total", type="message") == 1
    assert sample(metrics, "chat_deliveries_total") == 1
    assert sample(metrics, "chat_send_to_deliver_seconds_count") == 1


async def test_replayed_deliveries_stay_out_of_the_latency_histogram() -> None:
    writer, _, metrics = make()
    assert writer.deliver(payload(1), ts=0, replayed=True)
    assert sample(metrics, "chat_deliveries_total") == 1
    assert sample(metrics, "chat_replayed_events_total") == 1
    assert sample(metrics, "chat_send_to_deliver_seconds_count") == 0


async def test_queued_frames_are_coalesced_into_one_write() -> None:
    writer, socket, _ = make()
    frames = [payload(n) for n in range(1, 4)]
    for p in frames:
        writer.write(p, "message")
    await asyncio.sleep(0)
    assert socket.stream.written == [b"".join(text_frame(p) for p in frames)]


async def test_a_close_flushes_what_was_queued_but_a_slow_consumer_close_drops_it() -> None:
    writer, socket, _ = make()
    error = orjson.dumps({"type": "error", "code": "token_invalid"})
    writer.write(error, "error")
    writer.close(close_codes.UNAUTHENTICATED)
    assert socket.closed_with == (4401, text_frame(error))  # the error frame went first
    assert not writer.open

    writer, socket, _ = make()
    writer.write(payload(1), "message")
    writer.close(close_codes.SLOW_CONSUMER)
    assert socket.closed_with == (4008, b"")  # the backlog is dropped, the close is next
