"""Refresh-token rotation tolerates the benign race — the same rotation asked for again within
the grace window — without weakening reuse detection (issue 10 item 14, issue 12 item 3). Runs
unchanged on SQLite and on Redis."""

from __future__ import annotations

import asyncio
import secrets

from chat.domain.chat import Ports


def _fam() -> str:
    return f"f_{secrets.token_hex(6)}"


async def test_a_retried_rotation_within_the_window_is_answered_not_punished(
    ports: Ports,
) -> None:
    fam, user = _fam(), f"u_{secrets.token_hex(4)}"
    await ports.sessions.create(fam, user, "h0", 60)
    first = await ports.sessions.rotate(fam, "h0", "h1", 60, grace_s=30)
    assert (first.user_id, first.reused, first.retried) == (user, False, False)
    again = await ports.sessions.rotate(fam, "h0", "h1", 60, grace_s=30)
    assert (again.user_id, again.reused, again.retried) == (user, False, True)
    assert await ports.sessions.is_active(fam)
    # The retry changed nothing: the new token is still the current one and rotates on.
    nxt = await ports.sessions.rotate(fam, "h1", "h2", 60, grace_s=30)
    assert (nxt.user_id, nxt.retried) == (user, False)
    # The latest rotation may be retried too; the one before it may not.
    assert (await ports.sessions.rotate(fam, "h1", "h2", 60, grace_s=30)).retried
    older = await ports.sessions.rotate(fam, "h0", "h1", 60, grace_s=30)
    assert older.reused and older.user_id == user
    assert not await ports.sessions.is_active(fam)
    assert (await ports.sessions.rotate(fam, "h2", "h3", 60, grace_s=30)).user_id is None


async def test_a_spent_token_asking_for_another_successor_is_reuse(ports: Ports) -> None:
    fam = _fam()
    await ports.sessions.create(fam, "u1", "h0", 60)
    await ports.sessions.rotate(fam, "h0", "h1", 60, grace_s=30)
    forged = await ports.sessions.rotate(fam, "h0", "hX", 60, grace_s=30)
    assert forged.reused
    assert not await ports.sessions.is_active(fam)


async def test_reuse_after_the_window_revokes_the_family(ports: Ports) -> None:
    fam = _fam()
    await ports.sessions.create(fam, "u1", "h0", 60)
    await ports.sessions.rotate(fam, "h0", "h1", 60, grace_s=0.2)
    await asyncio.sleep(0.3)  # the window itself is under test: let it pass
    late = await ports.sessions.rotate(fam, "h0", "h1", 60, grace_s=0.2)
    assert late.reused and not late.retried
    assert not await ports.sessions.is_active(fam)


async def test_no_window_means_every_retry_is_reuse(ports: Ports) -> None:
    fam = _fam()
    await ports.sessions.create(fam, "u1", "h0", 60)
    await ports.sessions.rotate(fam, "h0", "h1", 60)
    assert (await ports.sessions.rotate(fam, "h0", "h1", 60)).reused
