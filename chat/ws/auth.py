"""The auth frame: the only frame a session serves before `ready`.

It carries the access token and, for a reconnecting client, its positions (`resume`), so the
gap is replayed before any live event: cursors are placed at those positions before the
socket subscribes, then filled from the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat.domain.channels import user_channel
from chat.domain.errors import InvalidRequest
from chat.domain.frames import encode
from chat.ws import liveness
from chat.ws.commands import positions
from chat.ws.protocol import error_frame

if TYPE_CHECKING:
    from chat.ws.session import Session


async def authenticate(s: Session, frame: dict[str, Any]) -> None:
    if frame["type"] != "auth":
        raise InvalidRequest("the first frame must be 'auth'", code="invalid_request")
    resume = positions(frame.get("resume", {}))
    deps = s.deps
    principal = await deps.accounts.authenticate(frame.get("token"))
    await deps.presence.connect(principal, s.connection_id)
    if s.closing or not s.transport.open:  # closed while we waited
        await deps.presence.disconnect(principal, s.connection_id)
        return
    s.authenticated(principal)
    user_id = principal.user.id
    cids = await deps.conversations.conversation_ids_for_user(user_id)
    s.channels = [user_channel(user_id)]
    await s.hub.join(s, s.channels)
    s.watch_membership()  # subscribed: a removal's `left` frame reaches this process now
    # Reconnecting clients give their positions in the auth frame, so their cursors start
    # there before any live event can be written: the gap is replayed first, in order.
    resumed = {cid: seq for cid, seq in resume.items() if cid in cids}
    for cid, seq in resumed.items():
        s.cursors.track(cid, seq)
    conversations = await s.subscribe(cids, keep=resumed)
    for cid in resumed:
        s.cursors.fill(cid)
    liveness.start(s)
    limits = deps.limits
    ready = {
        "type": "ready",
        "ref": frame.get("ref"),
        "user_id": user_id,
        "session_id": principal.session_id,
        "connection_id": s.connection_id,
        "conversations": conversations,
        "limits": {
            "max_frame_bytes": limits.max_frame_bytes,
            "max_body_chars": limits.max_body_chars,
            "send_rate_per_s": limits.send_rate_per_s,
            "send_burst": limits.send_burst,
            "heartbeat_interval_s": limits.heartbeat_interval_s,
        },
    }
    s.send_frame(encode(ready), "ready")
    # After `ready`, so the rule "an error before ready is followed by a close" holds: a
    # client removed from a conversation while it was away resumes it in good faith, and
    # must learn that without losing the others.
    for cid in sorted(resume.keys() - resumed.keys()):
        s.send_frame(
            error_frame(
                "not_member",
                "you are not a member of this conversation",
                frame.get("ref"),
                conversation_id=cid,
            ),
            "error",
        )
