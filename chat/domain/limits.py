"""Per-client bounds. Every resource a client can make the server hold has one; defaults are
documented in docs/protocol.md and overridable through settings."""

from __future__ import annotations

from dataclasses import dataclass

PRESENCE_REFRESH_BEATS = 15
"""Heartbeats between two refreshes of one connection's presence entry (5 minutes at the
default 20 s): one refresh is five Redis commands, so a gateway holding 10 000 sockets spends
about 170 a second on them, not 2 500."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 16 * 1024
    """Largest WebSocket frame accepted; larger ones close the socket with 1009."""
    max_body_chars: int = 4000
    """Longest message body, in characters after trimming trailing white space."""
    send_rate_per_s: float = 5.0
    """Sustained sends per user per second (token bucket refill rate)."""
    send_burst: int = 20
    """Sends a user may make at once before the rate applies."""
    typing_rate_per_s: float = 1.0
    """Typing notices per user per second; extra ones are dropped silently."""
    max_connections_per_user: int = 10
    """Concurrent WebSockets per user across all gateways."""
    outbound_queue_frames: int = 512
    """Frames queued to one socket but not yet in the kernel before it is a slow consumer."""
    outbound_queue_bytes: int = 1024 * 1024
    """Bytes queued to one socket but not yet sent (the gateway's queue plus the kernel's unsent
    bytes, on Linux) before it is a slow consumer (close 4008). 1 MiB: about 60 full-size
    messages behind, far more than a reader keeping up ever has, and 10 000 stalled sockets
    still fit in 10 GiB."""
    auth_timeout_s: float = 10.0
    """Time a new socket has to send its auth frame."""
    presence_ttl_s: float = 60.0
    """A gateway not heard from for this long counts as gone, with its connections (a crash)."""
    heartbeat_interval_s: float = 20.0
    """How often the gateway pings each socket and renews its presence lease; well inside
    `presence_ttl_s`."""
    max_connection_age_s: float = 3600.0
    """After this long (plus jitter) the gateway closes an authenticated socket with 1012 and the
    client reconnects through the load balancer and resumes: after a gateway restart, the
    clients that piled onto the survivors spread back over all gateways within about this long.
    0 turns it off."""
    max_connection_age_jitter: float = 0.1
    """Each socket's age limit is drawn uniformly from `max_connection_age_s` times 1 ± this
    fraction (clamped to 0..1), so sockets opened together (after a restart) do not all
    reconnect at once."""
    history_max_limit: int = 100
    """Most messages one history page returns."""
    replay_max_events: int = 1000
    """Longest gap `resume` replays; a longer one answers `not_recoverable` (reload history)."""
    log_keep_events: int = 1000
    """Archived events kept in the hot log per conversation for fast resume."""
    max_group_members: int = 1000
    """Members one group conversation may have."""
    login_rate_per_ip_per_s: float = 1.0
    """Sustained login attempts per client IP per second (token bucket). Each costs an argon2
    hash (~50 ms of CPU at the production parameters): this bounds what one address can burn."""
    login_burst_per_ip: int = 60
    """Login attempts one IP may make at once (a shared office NAT) before the rate applies."""
    login_rate_per_username_per_s: float = 0.1
    """Sustained login attempts per username per second, from all addresses (password guessing
    from many IPs). While exceeded, that username's logins wait: the cost of a lockout that
    lasts only as long as the attack."""
    login_burst_per_username: int = 10
    register_rate_per_ip_per_s: float = 1.0
    """Sustained registrations per client IP per second; each costs an argon2 hash too."""
    register_burst_per_ip: int = 60
    register_rate_per_username_per_s: float = 0.1
    """Sustained registration attempts per requested username per second."""
    register_burst_per_username: int = 5
    refresh_grace_s: float = 30.0
    """How long after a refresh-token rotation a retry with the token just rotated gets the same
    new refresh token instead of counting as reuse (two tabs, a lost answer); see docs/auth.md.
    0 turns the grace off."""

    @property
    def presence_refresh_s(self) -> float:
        """How often each connection's own presence entry is refreshed. Its gateway's lease,
        renewed every heartbeat, is what ends it `presence_ttl_s` after a crash; the entry's own
        expiry only bounds how long one its live gateway failed to remove (a disconnect
        during a Redis outage) outlasts its socket: `presence_connection_ttl_s`."""
        return self.heartbeat_interval_s * PRESENCE_REFRESH_BEATS

    @property
    def presence_connection_ttl_s(self) -> float:
        """A connection's own presence entry expires this long after its last refresh."""
        return self.presence_refresh_s + self.presence_ttl_s
