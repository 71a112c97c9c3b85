"""Server-to-client WebSocket frames built once and written to many sockets.

Frames a server sends are unmasked and (without permessage-deflate, which the gateway never
negotiates) identical for every recipient, so the header is built once per event and the same
bytes object is queued to each socket: encode once, frame once, write many.
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """RFC 6455 §5.2: FIN + text opcode, unmasked, with the shortest length encoding."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", _FIN_TEXT, n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, n)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, n)
    return header + payload


class FrameCache:
    """Remembers the frame of the last payload: a fan-out loop asks for the same payload once per
    recipient and gets the same bytes back without rebuilding them."""

    __slots__ = ("_frame", "_payload")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._frame = b""

    def frame(self, payload: bytes) -> bytes:
        if payload is not self._payload:
            self._payload = payload
            self._frame = text_frame(payload)
        return self._frame
