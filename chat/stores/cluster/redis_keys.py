"""Every Redis name one cluster uses, built in one place from `Settings.redis_key_prefix`
(CHAT_REDIS_KEY_PREFIX, default `chat:`), so two clusters can share one Redis.

Covered: the stores' keys, the pub/sub channels (`<prefix>conv:{cid}`, `<prefix>user:{uid}`;
the domain names channels without the prefix and the bus adds and strips it), the persistence
signal, and Dramatiq's namespace (`<prefix>dramatiq`: its queues, delay queues, dead letters and
heartbeats). Each conversation's, user's or family's keys carry one `{...}` hash tag, so
they share a Redis Cluster slot and one Lua script may touch them all; the prefix comes before
the tag and cannot contain braces (chat/config.py validates it).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "chat:"


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str = DEFAULT_PREFIX

    def log(self, cid: str) -> list[str]:
        """head, stream, dedupe, dedupe_ts (see redis_log.py)."""
        tag = f"{self.prefix}log:{{{cid}}}"
        return [f"{tag}:head", f"{tag}:stream", f"{tag}:dedupe", f"{tag}:dedupe_ts"]

    @property
    def backlog(self) -> str:
        """The set of conversations that ever had a log head (no tag: one key per cluster)."""
        return f"{self.prefix}log:backlog"

    def presence(self, uid: str) -> list[str]:
        """conns, state, seen (see redis_presence.py)."""
        tag = f"{self.prefix}presence:{{{uid}}}"
        return [f"{tag}:conns", f"{tag}:state", f"{tag}:seen"]

    @property
    def presence_leases(self) -> str:
        """Gateway process -> lease expiry, a sorted set (redis_presence.py); one per cluster,
        tagged like every store key (its own slot)."""
        return f"{self.prefix}presence:{{leases}}"

    def session(self, fid: str) -> list[str]:
        """The refresh-token family hash and its set of spent hashes (see redis_sessions.py)."""
        return [f"{self.prefix}session:{{{fid}}}", f"{self.prefix}session:{{{fid}}}:spent"]

    def user_sessions(self, uid: str) -> str:
        return f"{self.prefix}user_sessions:{{{uid}}}"

    def rate(self, key: str) -> str:
        """The token bucket of `key`, a string (redis_ratelimit.py). A new name since the
        buckets became strings: releases before kept hashes at `<prefix>rate:{key}`, and a GET
        on one of those would fail (WRONGTYPE) while both releases run in a rolling upgrade.
        The old hashes expire on their own once full again (burst / rate + 1 s at most)."""
        return f"{self.prefix}bucket:{{{key}}}"

    @property
    def persist(self) -> list[str]:
        """dirty, scheduled: the persistence signal (see redis_log.py), one of each per cluster.
        They share one tag with each other, not with any conversation: see `log`'s note."""
        return [f"{self.prefix}persist:{{dirty}}", f"{self.prefix}persist:{{dirty}}:scheduled"]

    def channel(self, name: str) -> str:
        """The Redis channel of a domain channel name (chat/domain/channels.py)."""
        return self.prefix + name

    def domain_channel(self, channel: str) -> str | None:
        """Back from a Redis channel; None if it is not one of this cluster's."""
        return channel[len(self.prefix) :] if channel.startswith(self.prefix) else None

    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.prefix}dramatiq"


DEFAULT_KEYS = RedisKeys()
"""The default prefix's names, for stores built without settings (tests)."""
