"""How far the persistence worker has archived a conversation, as the worker itself reads it:
the progress the log records, else the archive's watermark (chat/domain/persistence.py). Tests
wait on this rather than on the archive's watermark, which the sweep alone writes in a cluster."""

from __future__ import annotations

from chat.domain.chat import Chat


async def archived_upto(chat: Chat, cid: str) -> int:
    return (await chat.messaging.persister.progress([cid]))[cid]
