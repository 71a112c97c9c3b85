"""What an authenticated session does with each frame it gets, as tables looked up by type.

`COMMANDS`: client frames, by `type`. `protocol.parse` has already refused any other type, so
the table covers `protocol.CLIENT_TYPES` exactly (a unit test checks it); `auth` is in it too:
a second one is refused. Each handler calls one chat service and answers with at most one
frame; a `ChatError` it raises becomes an `error` frame carrying the frame's `ref`
(`Session.receive`).

`CONTROLS`: gateway-internal frames on the user's channel (`_control`, published by the chat
services), by `action`; unknown actions are ignored (a newer peer may send more).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from chat.domain import validation
from chat.domain.errors import Forbidden, InvalidRequest
from chat.domain.frames import encode
from chat.domain.models import AppendResult
from chat.ws.policy import close_for_control
from chat.ws.protocol import ack_frame

if TYPE_CHECKING:
    from chat.ws.session import Session

Frame = dict[str, Any]
Command = Callable[["Session", Frame], Awaitable[None]]
Control = Callable[["Session", Frame], None]


def positions(raw: object) -> dict[str, int]:
    """`{conversation_id: last seq seen}`, as `resume` (and the auth frame's `resume`) take it."""
    if not isinstance(raw, dict) or len(raw) > 10_000:
        raise InvalidRequest("resume must map conversation ids to seqs")
    return {cid: validation.seq(seq, "each resume seq") for cid, seq in raw.items()}


def _ack_append(s: Session, frame: Frame, result: AppendResult) -> None:
    event = result.event
    s.send_frame(
        ack_frame(
            frame.get("ref"),
            conversation_id=event.conversation_id,
            client_id=event.client_id,
            seq=event.seq,
            ts=event.ts,
            duplicate=result.duplicate,
        ),
        "ack",
    )


async def _send(s: Session, frame: Frame) -> None:
    started = time.perf_counter()
    result = await s.deps.messaging.send(
        s.who, frame.get("conversation_id"), frame.get("client_id"), frame.get("body")
    )
    _ack_append(s, frame, result)
    s.deps.metrics.ack_latency.observe(time.perf_counter() - started)


async def _edit(s: Session, frame: Frame) -> None:
    result = await s.deps.messaging.edit(
        s.who,
        frame.get("conversation_id"),
        frame.get("seq"),
        frame.get("client_id"),
        frame.get("body"),
    )
    _ack_append(s, frame, result)


async def _delete(s: Session, frame: Frame) -> None:
    result = await s.deps.messaging.delete(
        s.who, frame.get("conversation_id"), frame.get("seq"), frame.get("client_id")
    )
    _ack_append(s, frame, result)


async def _resume(s: Session, frame: Frame) -> None:
    """Replay what the client missed in conversations it is subscribed to; a range the log no
    longer holds is named in `not_recoverable` (the client reloads it), never skipped."""
    wanted = positions(frame.get("conversations"))
    cursors = s.cursors.cursors
    for cid in wanted:
        if cid not in cursors:
            raise Forbidden(
                "you are not a member of this conversation",
                code="not_member",
                conversation_id=cid,
            )
    lost = [cid for cid, seq in wanted.items() if not await s.cursors.catch_up(cid, seq)]
    answer = {
        "type": "resumed",
        "ref": frame.get("ref"),
        "conversations": {c: cursors[c].seq for c in wanted if c in cursors},
        "not_recoverable": lost,
    }
    s.send_frame(encode(answer), "resumed")


async def _typing(s: Session, frame: Frame) -> None:
    await s.deps.messaging.typing(s.who, frame.get("conversation_id"))


async def _presence(s: Session, frame: Frame) -> None:
    await s.deps.presence.set_state(s.who, s.connection_id, frame.get("state"))


async def _read(s: Session, frame: Frame) -> None:
    cid = frame.get("conversation_id")
    pointer = await s.deps.messaging.read_up_to(s.who, cid, frame.get("seq"))
    s.send_frame(ack_frame(frame.get("ref"), conversation_id=cid, read_seq=pointer), "ack")


async def _ping(s: Session, frame: Frame) -> None:
    s.send_frame(encode({"type": "pong", "ref": frame.get("ref")}), "pong")


async def _auth_again(s: Session, frame: Frame) -> None:
    raise InvalidRequest("already authenticated", code="invalid_request")


COMMANDS: Mapping[str, Command] = MappingProxyType(
    {
        "auth": _auth_again,
        "send": _send,
        "edit": _edit,
        "delete": _delete,
        "resume": _resume,
        "typing": _typing,
        "presence": _presence,
        "read": _read,
        "ping": _ping,
    }
)


def _close(s: Session, frame: Frame) -> None:
    """Logout, token reuse or a disabled user: this user's sockets, or one session's, close."""
    s.deps.membership.forget_user(s.who.user.id)  # a disabled user's answers go at once
    code = close_for_control(frame, s.who.session_id)
    if code is not None:
        s.close_with(code)


def _joined(s: Session, frame: Frame) -> None:
    # Not remembered from the frame: a `joined` overtaken by a later `left` from another API
    # process would make a stale entry; the next check asks the store.
    s.deps.membership.forget(frame["conversation"]["id"], s.who.user.id)
    s.hub.spawn(_subscribe_joined(s, frame["conversation"]))


async def _subscribe_joined(s: Session, conversation: dict[str, Any]) -> None:
    cid = conversation["id"]
    if cid in s.cursors.cursors:
        return
    last = await s.subscribe([cid])
    answer = {"type": "conversation", "conversation": conversation, "last_seq": last[cid]}
    s.send_frame(encode(answer), "conversation")


def _left(s: Session, frame: Frame) -> None:
    # Synchronously, as the bus delivers the frame: a send read after this point asks the
    # store and is refused (the staleness bound of chat/domain/membership.py).
    s.deps.membership.forget(frame["conversation_id"], s.who.user.id)
    s.hub.spawn(_unsubscribe_left(s, frame["conversation_id"]))


async def _unsubscribe_left(s: Session, cid: str) -> None:
    await s.unsubscribe(cid)
    s.send_frame(encode({"type": "conversation_left", "conversation_id": cid}), "conversation_left")


CONTROLS: Mapping[str, Control] = MappingProxyType(
    {"close": _close, "joined": _joined, "left": _left}
)
