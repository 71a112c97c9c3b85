"""JSON shapes the API returns, built from domain records."""

from __future__ import annotations

from typing import Any

from chat.domain.accounts import TokenPair
from chat.domain.conversations import ConversationSummary
from chat.domain.frames import conversation_dict, event_dict, message_dict, user_dict
from chat.domain.models import AppendResult


def tokens(pair: TokenPair) -> dict[str, Any]:
    return {
        "user": user_dict(pair.user),
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }


def summary(s: ConversationSummary) -> dict[str, Any]:
    body = conversation_dict(s.conversation)
    body["last_seq"] = s.last_seq
    body["last_message"] = message_dict(s.last_message) if s.last_message else None
    body["unread"] = s.unread
    return body


def appended(result: AppendResult) -> dict[str, Any]:
    return {"event": event_dict(result.event), "duplicate": result.duplicate}
