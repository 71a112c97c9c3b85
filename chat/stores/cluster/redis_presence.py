"""Presence in Redis: each user's live connections in a sorted set scored by expiry time, and
each gateway process's lease.

Keys per user (one slot; built by redis_keys.py, shown with the default prefix):
`chat:presence:{uid}:conns` (`<process>/<connection>` -> expires at, ms),
`chat:presence:{uid}:state` (the same members -> online|idle), `chat:presence:{uid}:seen`
(last seen, ms). A sorted set
rather than one TTL key per connection: counting a user's connections then needs no SCAN, and
expiry is still enforced by time, not by anyone remembering to clean up; the set and hash
themselves carry a key TTL, so a user whose gateway crashed leaves nothing behind.

One key per cluster, `chat:presence:{leases}`: gateway process -> lease expiry (ms). A gateway
renews its lease every heartbeat (`renew`, one script); a connection counts as live while its
own expiry holds and its process's lease has not run out. So a crashed gateway's users go
offline when its lease runs out (`presence_ttl_s` after its last renewal), while each
connection's own entry needs refreshing only rarely (`Limits.presence_refresh_s`): in a room
of 1000 idle sockets those refreshes were most of Redis's commands (docs/performance.md). The
per-user keys are in other slots than the lease table, so a script cannot read it: the caller
passes the leases that had already run out when it last read the table (at most
`LEASES_MAX_AGE_S` ago). A lease still running then is never taken for expired, however late
its next renewal; an expired one is seen at most `LEASES_MAX_AGE_S` late. A connection of an
expired process is not removed, only not counted: if its gateway was cut off from Redis and
comes back, its renewed lease brings its connections back with it.

Every operation first drops connections past their own expiry (recording, as last seen, the
earlier of that and their process's expired lease), in the same script, using Redis's clock so
every gateway agrees on "now".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from chat.domain.models import Presence, PresenceState
from chat.stores.cluster.redis_conn import redis_errors
from chat.stores.cluster.redis_keys import DEFAULT_KEYS, RedisKeys

LEASES_MAX_AGE_S = 5.0
"""How old a read of the lease table may be when it is passed to a per-user script; older, it
is read again first (one script, at most one per process per 5 s)."""
LEASE_KEEP_S = 24 * 3600.0
"""How long an expired lease stays in the table: longer than any connection's own expiry, so
the connections of a process that crashed count as gone until they expire themselves."""


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
"""Redis's clock, in ms: every gateway's scripts agree on "now"."""


def _prelude(leases_from: int) -> str:
    """The start of every reading script. ARGV from `leases_from` on: process, lease expiry,
    ...: the leases that had run out when the caller last read the table."""
    return (
        """
local conns, states, seen = KEYS[1], KEYS[2], KEYS[3]
"""
        + _NOW
        + f"""
local expired = {{}}
for i = {leases_from}, #ARGV - 1, 2 do
  expired[ARGV[i]] = tonumber(ARGV[i + 1])
end
-- A member is `<process>/<connection>`; members written before leases have no `/` and are
-- never in the table: their own expiry alone decides.
local function lapsed(member)
  return expired[string.match(member, '^[^/]*')]
end
local gone = redis.call('ZRANGEBYSCORE', conns, '-inf', now, 'WITHSCORES')
if #gone > 0 then
  local last = tonumber(redis.call('GET', seen) or '0')
  for i = 1, #gone, 2 do
    redis.call('HDEL', states, gone[i])
    local lived = tonumber(gone[i + 1])
    local lease = lapsed(gone[i])
    if lease and lease < lived then lived = lease end
    last = math.max(last, lived)
  end
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  redis.call('SET', seen, string.format('%d', last))
end
-- The members that count, and the latest expired lease among those that do not (0: none).
local function live()
  local held = redis.call('ZRANGE', conns, 0, -1)
  if next(expired) == nil then return held, 0 end
  local counted, latest = {{}}, 0
  for _, m in ipairs(held) do
    local lease = lapsed(m)
    if lease then latest = math.max(latest, lease) else counted[#counted + 1] = m end
  end
  return counted, latest
end
local function keep_alive()
  local newest = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if #newest > 0 then
    redis.call('PEXPIREAT', conns, newest[2])
    redis.call('PEXPIREAT', states, newest[2])
  end
end
"""
    )


# ARGV: member, state, ttl ms, leases... Returns the live connection count.
_TOUCH = (
    _prelude(4)
    + """
redis.call('ZADD', conns, now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', states, ARGV[1], ARGV[2])
redis.call('SET', seen, string.format('%d', now))
keep_alive()
return #(live())
"""
)

# A connection's periodic refresh (every `Limits.presence_refresh_s`): four commands plus the
# call. No expiry sweep and no last-seen write: connect, disconnect and every read sweep
# expired connections and record their expiry as last seen, and a live connection's last seen
# is "now" by definition. The state stays as the client set it; only a connection swept
# meanwhile (it outlived its TTL) is added back, online. `GT`: a key TTL never moves earlier
# (another connection may live longer). ARGV: member, ttl ms.
_REFRESH = """
local conns, states = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
if redis.call('ZADD', conns, expires, ARGV[1]) == 1 then
  redis.call('HSET', states, ARGV[1], 'online')
  -- Maybe new keys, with no TTL yet: `GT` alone would leave them without one for good.
  redis.call('PEXPIREAT', conns, expires, 'NX')
  redis.call('PEXPIREAT', states, expires, 'NX')
end
redis.call('PEXPIREAT', conns, expires, 'GT')
redis.call('PEXPIREAT', states, expires, 'GT')
return 0
"""

# ARGV: member, leases... Returns the remaining live connection count.
_DISCONNECT = (
    _prelude(2)
    + """
if redis.call('ZREM', conns, ARGV[1]) == 1 then
  redis.call('SET', seen, string.format('%d', now))
end
redis.call('HDEL', states, ARGV[1])
return #(live())
"""
)

# ARGV: leases... Returns {live connections, of which online, last seen or false}.
_GET = (
    _prelude(1)
    + """
local counted, latest = live()
local online = 0
if #counted > 0 then
  for _, s in ipairs(redis.call('HMGET', states, unpack(counted))) do
    if s == 'online' then online = online + 1 end
  end
end
local last = redis.call('GET', seen)
if latest > tonumber(last or '0') then last = string.format('%d', latest) end
return {#counted, online, last}
"""
)

# The gateway's heartbeat: its lease runs `ttl` ms from now; leases expired more than `keep`
# ms ago go. Returns the leases expired by now (process, expiry, ...), which the caller passes
# on to the per-user scripts. KEYS: leases. ARGV: process, ttl ms, keep ms.
_RENEW = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES')
"""
)

# The leases expired by now, for a process that does not renew one (an API process) or whose
# last read is too old. KEYS: leases.
_EXPIRED = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES')
"""
)

# A gateway that stops: its lease ends now (kept in the table, so any connection it could not
# remove counts as gone as soon as the others read the table). KEYS: leases. ARGV: process.
_RELEASE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 0
"""
)


def _ms(ttl_s: float) -> int:
    return max(1, round(ttl_s * 1000))


class RedisPresence:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: RedisKeys = DEFAULT_KEYS,
        process_id: str | None = None,
        leases_max_age_s: float = LEASES_MAX_AGE_S,
    ) -> None:
        self._redis = client
        self._leases_max_age_s = leases_max_age_s
        self._keys = keys
        self._process = process_id or uuid.uuid4().hex
        """This process's name in the lease table and in its members (`<process>/<conn>`)."""
        self._expired: list[bytes] = []
        """Other processes' expired leases as last read: process, expiry, ... (script ARGV)."""
        self._read_at: float | None = None  # time.monotonic() of that read
        self._touch = client.register_script(_TOUCH)
        self._refresh = client.register_script(_REFRESH)
        self._disconnect = client.register_script(_DISCONNECT)
        self._get = client.register_script(_GET)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._read_expired = client.register_script(_EXPIRED)

    def _member(self, connection_id: str) -> str:
        return f"{self._process}/{connection_id}"

    def _remember(self, flat: Sequence[bytes]) -> None:
        """The expired leases as a script returns them: process, expiry, ... (flat)."""
        mine = self._process.encode()
        expired: list[bytes] = []
        for i in range(0, len(flat) - 1, 2):
            if flat[i] != mine:  # our own connections count here, whatever Redis holds
                expired += [flat[i], flat[i + 1]]
        self._expired = expired
        self._read_at = time.monotonic()

    async def _expired_leases(self) -> list[bytes]:
        read_at = self._read_at
        if read_at is None or time.monotonic() - read_at > self._leases_max_age_s:
            self._remember(await self._read_expired(keys=[self._keys.presence_leases]))
        return self._expired

    async def renew(self, ttl_s: float) -> None:
        with redis_errors():
            table = await self._renew(
                keys=[self._keys.presence_leases],
                args=[self._process, _ms(ttl_s), _ms(LEASE_KEEP_S)],
            )
        self._remember(table)

    async def release(self) -> None:
        with redis_errors():
            await self._release(keys=[self._keys.presence_leases], args=[self._process])

    async def connect(self, user_id: str, connection_id: str, ttl_s: float) -> int:
        with redis_errors():
            leases = await self._expired_leases()
            count = await self._touch(
                keys=self._keys.presence(user_id),
                args=[
                    self._member(connection_id),
                    PresenceState.ONLINE.value,
                    _ms(ttl_s),
                    *leases,
                ],
            )
        return int(count)

    async def heartbeat(
        self, user_id: str, connection_id: str, state: PresenceState | None, ttl_s: float
    ) -> None:
        keys = self._keys.presence(user_id)
        member = self._member(connection_id)
        with redis_errors():
            if state is None:
                await self._refresh(keys=keys[:2], args=[member, _ms(ttl_s)])
            else:
                leases = await self._expired_leases()
                await self._touch(keys=keys, args=[member, state.value, _ms(ttl_s), *leases])

    async def disconnect(self, user_id: str, connection_id: str) -> int:
        with redis_errors():
            leases = await self._expired_leases()
            return int(
                await self._disconnect(
                    keys=self._keys.presence(user_id),
                    args=[self._member(connection_id), *leases],
                )
            )

    async def get(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        if not user_ids:
            return {}
        with redis_errors():
            leases = await self._expired_leases()
            # One script per user (each user is its own slot); one round trip for all of them.
            async with self._redis.pipeline(transaction=False) as pipe:
                for uid in user_ids:
                    await self._get(keys=self._keys.presence(uid), args=leases, client=pipe)
                replies = await pipe.execute()
        found = {}
        for uid, (live, online, seen) in zip(user_ids, replies, strict=True):
            if int(live) == 0:
                state = PresenceState.OFFLINE
            elif int(online) > 0:
                state = PresenceState.ONLINE
            else:
                state = PresenceState.IDLE
            found[uid] = Presence(uid, state, int(seen) if seen is not None else None)
        return found
