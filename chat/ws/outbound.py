"""The socket-facing writer of one WebSocket: coalescing, a byte budget, backpressure, and
counting what it queued (through `stats.DeliveryStats`).

`Writer` is what a session writes through (its `Transport`); `Outbound` below it holds the
queue. Frames are queued here (whole, already framed: see `wire.py`) and written one chunk at a
time (everything queued, at most `WRITE_CHUNK_BYTES`): straight to the socket with `send()`
while Tornado holds nothing unsent for it, and whatever the kernel did not take goes to
Tornado's stream, after which the next chunk waits until that write reached the kernel. So
Tornado's own buffer never holds more than one chunk, and the rest stays here as whole frames
that can be dropped without cutting a frame in two. The writes are made by the process's
`Flusher`, in one loop callback for every socket queued to in the iteration before (a fan-out),
so each socket still gets what was queued to it in one write.

Guarantees kept here:
- Memory per socket is bounded: frames queued here plus the chunk in Tornado plus what the
  kernel reports still unsent (`SIOCOUTQNSD`, Linux) may not exceed `max_bytes`, nor the frames
  here and in Tornado `max_frames`; `queue` answers False past either, and the caller closes the
  socket with 4008 (slow consumer).
- A socket closed for being slow hears its close code: `discard` drops the frames queued here,
  so the close frame Tornado writes next sits behind at most one chunk, not behind the backlog
  (which Tornado's abort, 5 s after the close frame, would drop together with the close frame).
- A writer that must not outrun its reader (a resume's replay) awaits `drain`, which returns
  once everything queued is in the kernel and the kernel's unsent bytes are at most `low`.
- The metrics count what was queued to the socket only: `write` counts a frame (and `deliver`
  a delivery) once the budget accepted it, never a frame dropped because the socket was over
  its budget or already closed.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import struct
from typing import Protocol

import tornado.iostream

from chat.ws import close_codes
from chat.ws.close_codes import CloseCode
from chat.ws.stats import DeliveryStats
from chat.ws.wire import FrameCache

log = logging.getLogger(__name__)

SIOCOUTQNSD = 0x894B
"""linux/sockios.h: bytes in a TCP socket's send queue not yet sent (excludes sent-but-unacked
bytes, which the peer's receive window bounds)."""
WRITE_CHUNK_BYTES = 64 * 1024
"""Most bytes handed to Tornado in one write (whole frames; one larger frame goes alone)."""
KERNEL_POLL_S = 0.01
"""`drain` re-reads the kernel's unsent bytes this often while they are above its mark: the
kernel does not say when its queue empties, and Tornado's write notifications stop once our
bytes are in the kernel."""


class Flusher:
    """Writes every socket queued to since the last loop iteration, in one loop callback.

    Frames queued to one socket in the same iteration still go out in one write (coalescing),
    but a fan-out to N sockets schedules one callback, not N; and the event loop is looked up
    once per process, not once per delivery (`asyncio.get_running_loop` makes a getpid()
    system call on CPython 3.11: it was 8 % of a gateway's samples in rooms of 100). One per
    `Gateway` (one event loop); each socket is listed at most once per pass (`Outbound`'s
    `_scheduled`), in the order it was first queued to."""

    __slots__ = ("_due", "_loop")

    def __init__(self) -> None:
        self._due: list[Outbound] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def schedule(self, outbound: Outbound) -> None:
        if not self._due:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._run)
        self._due.append(outbound)

    def _run(self) -> None:
        due, self._due = self._due, []
        for outbound in due:
            try:
                outbound.write_scheduled()
            except Exception:  # one socket's failure must not leave the others unwritten
                log.exception("writing to a socket failed")
                outbound.abort()


class Outbound:
    __slots__ = (
        "_check_every",
        "_direct",
        "_flusher",
        "_inflight_bytes",
        "_inflight_frames",
        "_kernel",
        "_max_bytes",
        "_max_frames",
        "_pending",
        "_pending_bytes",
        "_scheduled",
        "_since_check",
        "_stream",
        "_waiters",
        "_writing",
        "closed",
    )

    def __init__(self, max_frames: int, max_bytes: int, flusher: Flusher | None = None) -> None:
        self._flusher = flusher or Flusher()
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        # The kernel is asked every 1/16 of the budget queued (one ioctl per 64 KiB at the
        # default): cheap on the fan-out path, and the budget overshoots by at most that.
        self._check_every = max(1, max_bytes // 16)
        self._stream: tornado.iostream.IOStream | None = None
        self._direct = False
        # Created on the first frame and dropped once empty: an idle socket holds no list
        # (memory per idle socket is a target, docs/performance.md). A list, not a deque: most
        # writes take one frame, and a deque costs a 64-slot block per delivery.
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0
        self._inflight_frames = 0
        self._inflight_bytes = 0
        self._writing: asyncio.Future[None] | None = None
        self._scheduled = False
        self._kernel = 0
        self._since_check = 0
        self._waiters: list[asyncio.Future[None]] = []
        self.closed = False

    def attach(self, stream: tornado.iostream.IOStream | None) -> None:
        self._stream = stream
        # A plain TCP stream (not TLS, not a test double) may be written to directly.
        self._direct = type(stream) is tornado.iostream.IOStream

    @property
    def queued_bytes(self) -> int:
        """Bytes not yet sent: queued here, in Tornado's buffer, and (last reading) the kernel's."""
        return self._pending_bytes + self._inflight_bytes + self._kernel

    @property
    def queued_frames(self) -> int:
        return (len(self._pending) if self._pending else 0) + self._inflight_frames

    def queue(self, frame: bytes) -> bool:
        """Queue a frame for the next write; False when the socket is over its budget."""
        if self.closed:
            return True
        pending = self._pending
        if pending is None:
            pending = self._pending = []
        pending.append(frame)
        size = len(frame)
        self._pending_bytes += size
        self._since_check += size
        if self._since_check >= self._check_every:
            self._since_check = 0
            self._kernel = self._kernel_unsent()
        # `queued_frames` and `queued_bytes`, inlined: this runs once per delivery.
        if (
            len(pending) + self._inflight_frames > self._max_frames
            or self._pending_bytes + self._inflight_bytes + self._kernel > self._max_bytes
        ):
            return False
        if not self._scheduled and self._writing is None:
            self._scheduled = True
            self._flusher.schedule(self)
        return True

    def flush_all(self) -> None:
        """Hand everything queued to Tornado now (before a close frame that must follow it)."""
        while self._pending and not self.closed:
            self._write()

    def discard(self) -> None:
        """Drop what is queued here (whole frames; Tornado keeps at most the chunk it has)."""
        self._pending = None
        self._pending_bytes = 0
        self._wake()

    def close(self) -> None:
        self.closed = True
        self.discard()

    def abort(self) -> None:
        """A write failed unexpectedly: drop the connection (the client reconnects and resumes
        from its cursors) rather than keep it open with nothing more ever written to it."""
        self.close()
        stream = self._stream
        if stream is not None and not stream.closed():
            stream.close()

    async def drain(self, low: int) -> None:
        """Wait until everything queued is in the kernel and at most `low` bytes of it are
        unsent; returns at once when the socket is closed."""
        while not self.closed:
            if self._pending or self._writing is not None:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                continue
            self._kernel = self._kernel_unsent()
            if self._kernel <= low:
                return
            await asyncio.sleep(KERNEL_POLL_S)

    def write_scheduled(self) -> None:
        """The `Flusher`'s pass: write what was queued since this socket was scheduled."""
        self._scheduled = False
        if self._writing is None and self._pending and not self.closed:
            self._write()

    # -- internals --------------------------------------------------------------------------
    def _write(self) -> None:
        stream = self._stream
        if stream is None or stream.closed():
            self.close()
            return
        while pending := self._pending:
            if len(pending) == 1:  # the common case: one frame since the last write
                data = pending[0]
                count, size = 1, len(data)
                self._pending = None
            else:
                count = size = 0
                for frame in pending:  # whole frames up to a chunk (a larger one goes alone)
                    if count and size + len(frame) > WRITE_CHUNK_BYTES:
                        break
                    count += 1
                    size += len(frame)
                data = b"".join(pending[:count])
                if count == len(pending):
                    self._pending = None
                else:
                    del pending[:count]  # at most `max_frames` references moved
            self._pending_bytes -= size
            if self._direct and not stream.writing():
                # Straight to the kernel while Tornado holds nothing unsent (so order is kept):
                # the common case, a socket with room, then costs one send() and no Future.
                sent = self._send(stream, data)
                if sent < 0:
                    return
                if sent == size:
                    continue
                data, size = data[sent:], size - sent
            self._inflight_frames += count
            self._inflight_bytes += size
            try:
                written = stream.write(data)
            except tornado.iostream.StreamClosedError:
                self.close()
                return
            self._writing = written
            written.add_done_callback(functools.partial(self._written, frames=count, size=size))
            return
        self._wake()

    def _send(self, stream: tornado.iostream.IOStream, data: bytes) -> int:
        """Bytes the kernel took (0 when its buffer is full); -1 when the connection is gone
        (Tornado's read side sees the same error and closes the stream)."""
        try:
            return int(stream.socket.send(data))
        except BlockingIOError:
            return 0
        except OSError:
            self.close()
            return -1

    def _written(self, future: asyncio.Future[None], frames: int, size: int) -> None:
        self._inflight_frames -= frames
        self._inflight_bytes -= size
        if self._writing is future:
            self._writing = None
        if future.cancelled() or future.exception() is not None:
            # Retrieved, so a closed stream does not log "exception was never retrieved".
            self.close()
            return
        if self._writing is None and self._pending and not self.closed:
            self._write()
        elif not self._pending:
            self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return  # the common case, once per write: no list to replace
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _kernel_unsent(self) -> int:
        stream = self._stream
        if stream is None or stream.closed():
            return 0
        try:
            raw = fcntl.ioctl(stream.socket.fileno(), SIOCOUTQNSD, b"\0\0\0\0")
        except OSError:
            # Not Linux (or not TCP): only the bytes queued in this process are counted.
            return 0
        return int(struct.unpack("i", raw)[0])


class Socket(Protocol):
    """Tornado's `WebSocketHandler`, as the writer sees it."""

    @property
    def ws_connection(self) -> object | None:
        """None once a close frame was sent (by us, or by Tornado: 1009, ping timeout) or the
        connection is gone: nothing may be written after that."""
        ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class Writer:
    """One socket's writer: frames payloads once per process (`FrameCache`), queues them on
    `Outbound` within the socket's budget, counts what it accepted, and closes the socket in
    the order a close code needs."""

    __slots__ = ("_frames", "_low", "_socket", "_stats", "outbound")

    def __init__(
        self,
        max_frames: int,
        max_bytes: int,
        frames: FrameCache,
        stats: DeliveryStats,
        socket: Socket,
        flusher: Flusher | None = None,
    ) -> None:
        self.outbound = Outbound(max_frames, max_bytes, flusher)
        self._frames = frames
        self._stats = stats
        self._socket = socket
        # A replay waits for this mark, so half the budget stays free for live frames.
        self._low = max_bytes // 2

    def attach(self, stream: tornado.iostream.IOStream | None) -> None:
        self.outbound.attach(stream)

    @property
    def open(self) -> bool:
        return self._socket.ws_connection is not None and not self.outbound.closed

    @property
    def queued_bytes(self) -> int:
        return self.outbound.queued_bytes

    def write(self, payload: bytes, kind: str) -> bool:
        """Queue a frame; False when the socket is over its budget (a slow consumer)."""
        if not self.outbound.queue(self._frames.frame(payload)):
            return False
        self._stats.frame_out(kind)
        return True

    def deliver(self, payload: bytes, ts: int, replayed: bool) -> bool:
        """A message event: a `message` frame, and a delivery once it is queued."""
        if not self.outbound.queue(self._frames.frame(payload)):
            return False
        self._stats.delivered(ts, replayed)
        return True

    async def writable(self) -> None:
        """Backpressure for a replay: returns once the socket's backlog is down to `_low`."""
        await self.outbound.drain(self._low)

    def close(self, code: CloseCode) -> None:
        if code is close_codes.SLOW_CONSUMER:
            # The backlog is what the client cannot read: drop it so the close frame is next
            # after Tornado's current chunk, and the client learns why (4008, not a reset).
            self.outbound.discard()
        else:
            self.outbound.flush_all()  # e.g. an auth error frame queued just before goes first
        self._socket.close(code.code, code.reason)

    def closed(self) -> None:
        """The socket is gone: drop the backlog, wake a waiting replay."""
        self.outbound.close()
