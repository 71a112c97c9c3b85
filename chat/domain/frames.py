"""The JSON frames servers send. Encoded once per event, shared by every recipient.

Key order is fixed so the same event always encodes to the same bytes, whichever process
encodes it (the Redis send script builds the same bytes around the `seq` it assigns).
"""

from __future__ import annotations

from typing import Any

import orjson

from chat.domain.models import Conversation, Event, Message, Presence, User


def encode(frame: dict[str, Any]) -> bytes:
    return orjson.dumps(frame)


def event_dict(event: Event) -> dict[str, Any]:
    return {
        "type": "message",
        "conversation_id": event.conversation_id,
        "seq": event.seq,
        "kind": event.kind.value,
        "sender_id": event.sender_id,
        "client_id": event.client_id,
        "body": event.body,
        "target_seq": event.target_seq,
        "ts": event.ts,
    }


def event_frame(event: Event) -> bytes:
    return encode(event_dict(event))


def message_dict(message: Message) -> dict[str, Any]:
    return {
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "client_id": message.client_id,
        "body": message.body,
        "ts": message.ts,
        "edited_ts": message.edited_ts,
        "deleted": message.deleted,
    }


def user_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "created_at": user.created_at,
        "disabled": user.disabled,
        "is_admin": user.is_admin,
    }


def conversation_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "kind": conversation.kind.value,
        "title": conversation.title,
        "created_by": conversation.created_by,
        "created_at": conversation.created_at,
        "members": [
            {"user_id": m.user_id, "role": m.role.value, "read_seq": m.read_seq}
            for m in conversation.members
        ],
    }


def presence_dict(presence: Presence) -> dict[str, Any]:
    return {
        "user_id": presence.user_id,
        "state": presence.state.value,
        "last_seen": presence.last_seen,
    }


def control_frame(action: str, **fields: Any) -> bytes:
    """Gateway-internal frames on user channels (`_control`); never forwarded to clients."""
    return encode({"type": "_control", "action": action, **fields})
