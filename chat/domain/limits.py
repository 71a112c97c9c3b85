"""Per-client bounds. Every resource a client can make the server hold has one; defaults are
documented in docs/protocol.md and overridable through settings."""

from __future__ import annotations

from dataclasses import dataclass


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
    """A connection not heard from for this long counts as gone (crashed gateway, dead peer)."""
    heartbeat_interval_s: float = 20.0
    """How often the gateway pings and refreshes presence; well inside `presence_ttl_s`."""
    history_max_limit: int = 100
    """Most messages one history page returns."""
    replay_max_events: int = 1000
    """Longest gap `resume` replays; a longer one answers `not_recoverable` (reload history)."""
    log_keep_events: int = 1000
    """Archived events kept in the hot log per conversation for fast resume."""
    max_group_members: int = 1000
    """Members one group conversation may have."""
