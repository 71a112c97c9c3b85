"""Tornado's WebSocket protocol with close codes for the frames it refuses.

Tornado 6.6 (`WebSocketProtocol13`) tears the TCP connection down without a close frame
(`_abort`) when a client breaks RFC 6455 (reserved bits without an extension, a fragmented or
over-long control frame, a continuation with nothing to continue, a new message inside a
fragmented one, an unknown opcode) or sends a text message that is not UTF-8. RFC 6455 §7.4
names codes for both; this subclass sends the close frame first, then aborts as before:
- 1007 when the abort happens while a `UnicodeDecodeError` is being handled (Tornado calls
  `_abort` inside its `except UnicodeDecodeError` around decoding a text message);
- 1011 when it happens while another exception is being handled (a handler callback failed);
- 1002 otherwise: every other `_abort` with the stream open and no close frame sent yet is one
  of the protocol violations above (the other callers run after the stream closed, or after
  Tornado already sent a close frame, e.g. 1009 for an over-long message).
Not covered, because Tornado does not check it: an unmasked client frame is accepted.

Two costs per client frame are cut here (issue 14):
- Frames are read through a buffer of this connection's: Tornado asks its stream for each
  frame in four reads (header, length, mask, payload), each a Future and a callback; here one
  partial read takes what has arrived (up to `READ_AHEAD` bytes) and the frame's parts, and any
  frames behind it, are cut from that.
- Each message's `on_message` coroutine runs inline, in the connection's own task, where
  Tornado wraps it in a task of its own plus two futures and their callbacks. Tornado awaits
  the handler before it reads the next frame either way, so frames are still handled one at a
  time, in order; an exception out of the handler is logged and aborts the connection, as in
  Tornado.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import tornado.concurrent
import tornado.iostream
import tornado.websocket

from chat.logs import bind

READ_AHEAD = 64 * 1024
"""Most bytes one read takes from the stream beyond what the frame parser asked for: what sits
in this connection's buffer is at most that plus the rest of one frame (itself bounded by
`max_message_size`), so memory per socket stays bounded."""

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
INTERNAL = 1011


class StrictProtocol(tornado.websocket.WebSocketProtocol13):
    # A slot, not an instance attribute: Tornado's protocol object already has 29 of those,
    # and one more makes CPython give every socket's instance a dict of its own instead of the
    # shared-key one, +1.3 KiB per socket (memory per socket is a target, docs/performance.md).
    __slots__ = ("_inbound", "_inpos")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes read from the stream, and where the part no frame has used yet starts: an
        # offset, so cutting many small frames out of one read copies each frame once, not
        # the rest of the read each time.
        self._inbound = b""
        self._inpos = 0

    async def _read_bytes(self, n: int) -> bytes:
        buf, pos = self._inbound, self._inpos
        end = pos + n
        if end > len(buf):
            rest = buf[pos:]
            while len(rest) < n:
                assert self.stream is not None
                more = await self.stream.read_bytes(max(n - len(rest), READ_AHEAD), partial=True)
                rest = rest + more if rest else more
            buf, pos, end = rest, 0, n
        self._wire_bytes_in += n
        if end == len(buf):  # all used: nothing of this read stays referenced
            self._inbound, self._inpos = b"", 0
            return buf[pos:] if pos else buf
        self._inbound, self._inpos = buf, end
        return buf[pos:end]

    def _abort(self) -> None:
        stream = self.stream
        if not self.server_terminated and stream is not None and not stream.closed():
            handling = sys.exc_info()[1]
            if isinstance(handling, UnicodeDecodeError):
                code, reason = INVALID_DATA, b"text frame is not valid UTF-8"
            elif isinstance(handling, Exception):
                code, reason = INTERNAL, b"internal error"
            else:
                code, reason = PROTOCOL_ERROR, b"RFC 6455 protocol violation"
            with contextlib.suppress(tornado.iostream.StreamClosedError):
                self._write_frame(True, 0x8, struct.pack(">H", code) + reason)
            self.server_terminated = True
        super()._abort()

    def _run_callback(
        self, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tornado.concurrent.Future[Any] | None:
        if callback != self.handler.on_message:
            return super()._run_callback(callback, *args, **kwargs)
        try:
            result = callback(*args, **kwargs)
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._abort()
            return None
        if result is None:
            return None
        # Tornado's only caller (`_receive_frame`) awaits what this returns, nothing more.
        return self._inline(result)  # type: ignore[return-value]

    async def _inline(self, handling: Coroutine[Any, Any, None]) -> None:
        try:
            await handling
        except asyncio.CancelledError:
            self._abort()
            raise  # the connection's own task is being cancelled: let it end
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._abort()
        finally:
            # What the frame bound for its log lines (chat/logs.py) stays with that frame.
            bind(conversation_id=None)
