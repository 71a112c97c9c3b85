"""The outbound writer without a socket: what it counts, and what goes out before a close.

The stream is a small stand-in for Tornado's `IOStream` (writes recorded, completed at once);
it has no file descriptor, so the kernel's unsent bytes read as 0, as on a non-Linux host.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from chat.domain.channels import conversation_channel
from chat.domain.frames import event_frame
from chat.domain.models import Event, EventKind
from chat.metrics import Metrics
from chat.ws import close_codes
from chat.ws.delivery import DeliveryCursors
from chat.ws.hub import Gateway
from chat.ws.outbound import Writer
from chat.ws.stats import DeliveryStats
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


# -- one fan-out: counted once at its end, written in one loop callback ------------------------
class Member:
    """A socket as the hub routes to it: its cursors write through a real `Writer`."""

    def __init__(self, writer: Writer, socket: Socket) -> None:
        self.writer, self.socket = writer, socket
        self.cursors = DeliveryCursors(self._deliver, event_frame, self._fetch, self._lost)

    def _deliver(self, payload: bytes, ts: int) -> None:
        self.writer.deliver(payload, ts, replayed=False)

    async def _fetch(self, cid: str, after: int) -> tuple[tuple[Event, ...], bool]:
        return (), True

    async def _lost(self, cid: str) -> int:
        return 0


def hub_with(members: int, max_frames: int = 100) -> tuple[Gateway, list[Member], Metrics]:
    metrics = Metrics()
    # Gateway's constructor reads only `deps.metrics`; on_message only its routes.
    hub = Gateway(SimpleNamespace(metrics=metrics))  # type: ignore[arg-type]
    out = []
    for _ in range(members):
        stream = Stream()
        socket = Socket(stream)
        writer = Writer(max_frames, 1 << 20, hub.frames, hub.stats, socket, hub.flusher)
        writer.attach(stream)  # type: ignore[arg-type]
        member = Member(writer, socket)
        member.cursors.track("c1", 0)
        hub.routes.setdefault(CHANNEL, set()).add(member)  # type: ignore[arg-type]
        out.append(member)
    return hub, out, metrics


CHANNEL = conversation_channel("c1")


async def written(members: list[Member]) -> None:
    """Every queued frame is written and its write completed (bounded: a few loop turns)."""
    for _ in range(100):
        if all(m.writer.outbound.queued_frames == 0 for m in members):
            return
        await asyncio.sleep(0)
    raise AssertionError("writes did not complete")


def event(seq: int) -> bytes:
    return event_frame(Event("c1", seq, EventKind.MESSAGE, "u", f"m{seq}", "hi", None, 1000))


async def test_a_fan_out_is_counted_exactly_once_it_returns() -> None:
    hub, members, metrics = hub_with(5, max_frames=1)
    members[0].cursors.forget("c1")  # not subscribed (any more): nothing is queued to it
    hub.on_message(CHANNEL, event(1))
    # Counted before on_message returned: a scrape (another loop callback) sees all of it.
    assert sample(metrics, "chat_deliveries_total") == 4
    assert sample(metrics, "chat_ws_frames_out_total", type="message") == 4
    assert sample(metrics, "chat_send_to_deliver_seconds_count") == 4
    assert sample(metrics, "chat_send_to_deliver_seconds_bucket", le="+Inf") == 4
    # Still queued (budget 1 frame, not yet written): the next event is over every budget,
    # so nothing more is counted.
    hub.on_message(CHANNEL, event(2))
    assert sample(metrics, "chat_deliveries_total") == 4
    assert sample(metrics, "chat_send_to_deliver_seconds_count") == 4
    await written(members)
    assert [len(m.socket.stream.written) for m in members] == [0, 1, 1, 1, 1]
    # Outside a fan-out (a replay, a live delivery) a delivery is counted at once.
    assert members[1].writer.deliver(event(2), 1000, replayed=True)
    assert members[2].writer.deliver(event(2), 1000, replayed=False)
    assert sample(metrics, "chat_replayed_events_total") == 1
    assert sample(metrics, "chat_deliveries_total") == 6
    assert sample(metrics, "chat_send_to_deliver_seconds_count") == 5


async def test_one_loop_callback_writes_every_socket_of_a_fan_out() -> None:
    hub, members, _ = hub_with(3)
    loop = asyncio.get_running_loop()
    scheduled: list[object] = []
    real = loop.call_soon

    def call_soon(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(callback)
        return real(callback, *args, **kwargs)

    loop.call_soon = call_soon  # type: ignore[method-assign]
    try:
        hub.on_message(CHANNEL, event(1))
        hub.on_message(CHANNEL, event(2))
    finally:
        del loop.call_soon  # type: ignore[method-assign]
    assert len(scheduled) == 1
    await asyncio.sleep(0)
    both = text_frame(event(1)) + text_frame(event(2))
    assert [m.socket.stream.written for m in members] == [[both]] * 3  # still one write each


class FailingStream(Stream):
    def __init__(self) -> None:
        super().__init__()
        self.was_closed = False

    def write(self, data: bytes) -> asyncio.Future[None]:
        raise RuntimeError("broken socket")

    def closed(self) -> bool:
        return self.was_closed

    def close(self) -> None:
        self.was_closed = True


async def test_a_socket_whose_write_fails_does_not_keep_the_others_from_theirs() -> None:
    hub, members, _ = hub_with(2)
    broken_stream = FailingStream()
    broken = Writer(100, 1 << 20, hub.frames, hub.stats, Socket(broken_stream), hub.flusher)
    broken.attach(broken_stream)  # type: ignore[arg-type]
    assert broken.write(payload(1), "message")
    for m in members:
        assert m.writer.write(payload(1), "message")
    await asyncio.sleep(0)
    assert [len(m.socket.stream.written) for m in members] == [1, 1]
    assert not broken.open  # closed: nothing more is queued to it
    assert broken_stream.was_closed  # and the connection dropped: the client reconnects


async def test_a_backlog_goes_out_in_whole_frame_chunks_in_order() -> None:
    writer, socket, _ = make(max_bytes=8 << 20)
    small = [payload(n, pad="s" * 20_000) for n in range(4)]  # 3 fit in a 64 KiB chunk
    big = payload(9, pad="b" * 100_000)  # larger than a chunk: goes alone
    for p in [*small, big, small[0]]:
        assert writer.write(p, "message")
    for _ in range(100):  # bounded: a few loop turns per chunk
        if not writer.outbound.queued_frames:
            break
        await asyncio.sleep(0)
    framed = [text_frame(p) for p in small]
    assert socket.stream.written == [
        b"".join(framed[:3]),
        framed[3],
        text_frame(big),
        framed[0],
    ]
