"""The two timers of an authenticated session: the presence refresh and the maximum age.
Both stop with the session (its timers are cancelled when the socket goes). The process's own
presence lease, which is what ends its connections if it crashes, is the hub's (hub.py)."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from chat.ws import close_codes

if TYPE_CHECKING:
    from chat.ws.session import Session

log = logging.getLogger("chat.ws.gateway")  # the connection's logger (see session.py)
_SPREAD = random.Random()  # noqa: S311 (a spread of ages, not a secret)
"""Its own generator: the process-wide `random` state stays untouched by every socket."""


def start(s: Session) -> None:
    """Subscribed and about to say `ready`: the heartbeat and the maximum age start."""
    s.timer("beat", s.deps.limits.presence_refresh_s, lambda: _beat_due(s))
    limits = s.deps.limits
    if limits.max_connection_age_s <= 0:
        return
    # Connections are long-lived, so after a gateway restart its clients stay on the survivors:
    # closing each one after a bounded, jittered age (1012, like a drain) makes every client go
    # back through the load balancer now and then, which spreads them over all gateways.
    # Nothing is lost: the client resumes from its cursors.
    jitter = min(1.0, max(0.0, limits.max_connection_age_jitter))
    spread = _SPREAD.uniform(1 - jitter, 1 + jitter)
    s.timer("max_age", limits.max_connection_age_s * spread, lambda: _max_age_reached(s))


def refresh_soon(s: Session) -> None:
    """Redis may have lost this connection's presence entry (the bus reconnected: a restart or
    a failover that dropped the last writes): refresh it within a heartbeat, not at its next
    5-minute refresh. Spread over the heartbeat, so a gateway's sockets do not all call at
    once."""
    if s.is_authenticated and s.beat is None:
        delay = _SPREAD.uniform(0, s.deps.limits.heartbeat_interval_s)
        s.timer("beat", delay, lambda: _beat_due(s))


def _beat_due(s: Session) -> None:
    if s.is_authenticated:
        s.beat = asyncio.create_task(_heartbeat(s))


async def _heartbeat(s: Session) -> None:
    """Refreshes this connection's own presence entry; a failure is logged, and the next try
    comes a heartbeat later, not a whole refresh later: the entry outlives its last refresh by
    only `presence_ttl_s`."""
    limits = s.deps.limits
    try:
        await s.deps.presence.heartbeat(s.who, s.connection_id)
        next_beat_s = limits.presence_refresh_s
    except Exception:
        log.warning("presence heartbeat failed", exc_info=True)
        next_beat_s = limits.heartbeat_interval_s
    # Not kept once done: every idle session would hold a finished Task (~1 KiB) until its
    # next beat.
    s.beat = None
    if s.is_authenticated:
        s.timer("beat", next_beat_s, lambda: _beat_due(s))


def _max_age_reached(s: Session) -> None:
    if s.is_authenticated:
        log.debug("max connection age reached")
        s.close_with(close_codes.RESTARTING)
