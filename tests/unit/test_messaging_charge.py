"""Each send, edit and delete costs one token of the sender's bucket, taken once: by the log's
append (`charge`) when there is an append, by the limiter when a retry is answered without one
(chat/domain/messaging.py)."""

from __future__ import annotations

import pytest

from chat.domain.errors import RateLimited
from tests.unit.support.messaging import CID, principal, world


class Bucket:
    """RateLimiter with `tokens` left and no refill; records every charge."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.charged: list[str] = []

    async def allow(self, key: str, rate_per_s: float, burst: int) -> float:
        self.charged.append(key)
        if self.tokens <= 0:
            return 0.25
        self.tokens -= 1
        return 0.0


async def test_a_send_is_charged_once_and_refused_without_a_token() -> None:
    bucket = Bucket(tokens=1)
    w = world(limiter=bucket)
    alice = principal("alice")
    await w.service.send(alice, CID, "m1", "hi")
    assert bucket.charged == ["send:alice"]  # once: by the append, not also before it
    with pytest.raises(RateLimited) as refused:
        await w.service.send(alice, CID, "m2", "hi")
    assert refused.value.details == {"retry_after_ms": 251}
    assert refused.value.message == "too many messages; slow down"
    assert w.log.heads[CID] == 1  # the refused send wrote nothing


async def test_a_retried_delete_of_a_gone_target_is_charged_through_the_limiter() -> None:
    bucket = Bucket(tokens=4)
    w = world(limiter=bucket)
    alice = principal("alice")
    sent = await w.service.send(alice, CID, "m1", "hi")
    await w.service.delete(alice, CID, sent.event.seq, "d1")
    retry = await w.service.delete(alice, CID, sent.event.seq, "d1")  # the target is gone now
    assert retry.duplicate
    assert bucket.charged == ["send:alice"] * 3
    bucket.tokens = 0
    with pytest.raises(RateLimited):
        await w.service.delete(alice, CID, sent.event.seq, "d1")
