"""Bus channel names. The `{...}` hash tag keeps a conversation's keys in one Redis Cluster slot."""

from __future__ import annotations


def conversation_channel(conversation_id: str) -> str:
    return f"conv:{{{conversation_id}}}"


def user_channel(user_id: str) -> str:
    return f"user:{{{user_id}}}"


def parse_channel(channel: str) -> tuple[str, str]:
    """`conv:{abc}` -> ("conv", "abc")."""
    kind, _, rest = channel.partition(":")
    return kind, rest.strip("{}")
