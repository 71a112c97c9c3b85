"""`EventLog.append` with a `charge` (chat/domain/ports.py): the send's token is taken in the
append's own step, before dedupe, from the limiter's bucket; a refused append writes nothing."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from chat.domain.chat import Ports
from chat.domain.errors import RateLimited
from chat.domain.models import AppendResult, EventDraft, EventKind, RateCharge


def _msg(cid: str, client_id: str) -> EventDraft:
    return EventDraft(cid, EventKind.MESSAGE, "alice", client_id, f"body of {client_id}")


def _charge(burst: int, rate_per_s: float = 1.0) -> RateCharge:
    return RateCharge(f"send:{secrets.token_hex(6)}", rate_per_s, burst)


async def _refused(ports: Ports, draft: EventDraft, charge: RateCharge) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        await ports.log.append(draft, charge=charge)
    return refused.value


async def _after_refill(ports: Ports, draft: EventDraft, charge: RateCharge) -> AppendResult:
    """The append once the bucket has a token again (polled, bounded)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return await ports.log.append(draft, charge=charge)
        except RateLimited as exc:
            assert time.monotonic() < deadline, "the bucket never refilled"
            await asyncio.sleep(int(str(exc.details["retry_after_ms"])) / 1000)


async def test_a_refused_append_writes_nothing_and_the_next_one_continues_the_seq(
    ports: Ports,
) -> None:
    cid, charge = f"c_{secrets.token_hex(6)}", _charge(burst=2)
    for n in (1, 2):
        assert (await ports.log.append(_msg(cid, f"m{n}"), charge=charge)).event.seq == n
    refused = await _refused(ports, _msg(cid, "m3"), charge)
    assert refused.code == "rate_limited" and refused.message == "too many messages; slow down"
    assert 0 < int(str(refused.details["retry_after_ms"])) <= 1001
    assert await ports.log.last_seq(cid) == 2
    assert [e.client_id for e in (await ports.log.read(cid, 0, 10)).events] == ["m1", "m2"]
    # Nothing of m3 was kept, not even its dedupe entry: the same send later is new, seq 3.
    later = await _after_refill(ports, _msg(cid, "m3"), charge)
    assert not later.duplicate and later.event.seq == 3
    assert [e.seq for e in (await ports.log.read(cid, 0, 10)).events] == [1, 2, 3]


async def test_a_retried_duplicate_costs_a_token_and_can_be_refused(ports: Ports) -> None:
    cid, charge = f"c_{secrets.token_hex(6)}", _charge(burst=1)
    first = await ports.log.append(_msg(cid, "once"), charge=charge)
    # The token is taken before dedupe: the client's retry finds the bucket empty.
    await _refused(ports, _msg(cid, "once"), charge)
    retry = await _after_refill(ports, _msg(cid, "once"), charge)
    assert retry.duplicate and retry.event == first.event
    await _refused(ports, _msg(cid, "other"), charge)  # the retry took the refilled token
    assert await ports.log.last_seq(cid) == 1


async def test_a_charge_spends_the_limiters_bucket(ports: Ports) -> None:
    """One bucket per key whichever way a send is charged (an edit retried after its target
    was deleted is charged through the limiter, chat/domain/messaging.py)."""
    cid, charge = f"c_{secrets.token_hex(6)}", _charge(burst=2)
    await ports.log.append(_msg(cid, "m1"), charge=charge)
    assert await ports.limiter.allow(charge.key, charge.rate_per_s, charge.burst) == 0.0
    assert await ports.limiter.allow(charge.key, charge.rate_per_s, charge.burst) > 0
    await _refused(ports, _msg(cid, "m2"), charge)
