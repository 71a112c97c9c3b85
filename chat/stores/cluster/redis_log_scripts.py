"""The Lua scripts of the hot log (redis_log.py holds the keys, the guarantees and the Python
side). Each runs atomically on one Redis; every key a script touches is passed in KEYS.
"""

from __future__ import annotations

from chat.stores.cluster.redis_ratelimit import BUCKET_LUA

# The order of the script's first steps decides what a send is charged (`charge`, KEYS[7]):
# (a) a fresh append takes one token, then writes the event and its dedupe field;
# (b) redis-py re-sends the script with the same attempt id when it lost the reply (its retry
#     on ConnectionError/TimeoutError). If the first run wrote the event, the dedupe field
#     points at an entry carrying this attempt id: answered before the charge, so not charged
#     again. If the first run was refused for want of a token, it took none and wrote
#     nothing, so running it again is right. If the first run was a charged dedupe
#     hit, the bucket holds this attempt id (`take_token` records it with the token, in the
#     same SET, so this costs no extra command), unless another charge of the same bucket
#     came in between, which then costs one extra token at most: not charged again.
# (c) a client's retry is a new attempt: a dedupe hit for someone else's attempt id, charged
#     like any send (before this script took the charge, the limiter ran before the append and
#     before its dedupe; same behaviour), and refused without a token.
# A missing head is reported first, before any write or charge: the caller rebuilds it and
# runs the script again (same attempt id), which then charges once.
#
# Dedupe lives in the head hash (`sender_id NUL client_id` -> seq; the NUL keeps these fields
# apart from the head's own), so the `HMGET` that reads the seq also looks the send up, and
# the `HSET` that stores the new seq also records it: no dedupe command of its own on the
# fresh path (the separate dedupe hash's `HSETNX` was one per send). The script is atomic, so
# nothing needs claiming before the charge and the write: a refused or failed send has written
# nothing to give back. Heads from earlier releases (no `layout` field) may still have fields
# in the separate hash (KEYS[3]): for those one `HGET` there as well, and new fields go to the
# head; once that hash is gone (its fields expire as before, `TRIM`), the trim marks the head
# `layout` 2 and the `HGET` stops. ENSURE_HEAD creates heads at layout 2.
APPEND = (
    BUCKET_LUA
    + """
-- KEYS[4] (dedupe_ts) is TRIM's: the append itself does not time its dedupe field.
local head, stream, legacy = KEYS[1], KEYS[2], KEYS[3]
local dirty, scheduled, bucket = KEYS[5], KEYS[6], KEYS[7]
local channel, field, prefix, middle, attempt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local h = redis.call('HMGET', head, 'seq', 'dirty', 'layout', field)
local last = h[1]
if not last then return {-1} end
local seen, where = h[4], head
if not seen and h[3] ~= '2' then
  seen, where = redis.call('HGET', legacy, field), legacy
end
if seen then
  -- A replicated no-op: it moves this connection's replication offset past the original
  -- write, so a WAIT after this script waits for the original to reach the replicas.
  redis.call('HSET', where, field, seen)
  local original = false
  local entry = redis.call('XRANGE', stream, seen .. '-0', seen .. '-0')
  if #entry > 0 then
    local fields = entry[1][2]
    original = fields[2]
    -- The same append() call again: the client library re-sent the script after losing the
    -- reply to a run that went through (and was charged). The sender sent once: not a
    -- duplicate. If that run claimed the persistence schedule, its job is still to be queued.
    if fields[4] == attempt then
      return {2, seen, original, redis.call('GET', scheduled) == attempt and attempt}
    end
  end
  if bucket then
    local wait = take_token(bucket, tonumber(ARGV[9]), tonumber(ARGV[10]), attempt)
    if wait > 0 then return {-2, string.format('%.6f', wait)} end
  end
  return {0, seen, original}
end
local seq = string.format('%d', tonumber(last) + 1)
local now = redis.call('TIME')  -- one clock read: the bucket's and the event's
if bucket then
  local wait = take_token(bucket, tonumber(ARGV[9]), tonumber(ARGV[10]), attempt, now)
  if wait > 0 then return {-2, string.format('%.6f', wait)} end  -- refused: nothing written
end
local ts = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
-- The frame is built around seq and ts from bytes encoded by chat.domain.frames, so every
-- subscriber gets exactly event_frame(event).
local frame = prefix .. seq .. middle .. ts .. '}'
-- XADD first of the event's writes: if it fails (it cannot while the head and stream agree),
-- nothing has been written (scripts do not roll back).
local added = redis.pcall('XADD', stream, seq .. '-0', 'f', frame, 'a', attempt)
if type(added) == 'table' and added.err then return added end
if ARGV[8] == '1' then
  -- Replicas required: the event stays unannounced (unread, unpublished, not dirty) until the
  -- caller's WAIT counted the replicas and `COMMIT` ran.
  redis.call('HSET', head, 'seq', seq, field, seq)
  return {1, seq, ts, false}
end
-- The persistence signal, in the same atomic step: dirty since this event (kept if already
-- dirty), and, when this append made the conversation dirty, the schedule claimed with this
-- call's attempt id if no job holds it. Already dirty: whatever put it there claimed the
-- schedule, found it held, or is a job that carries its chain on, so skipping the SET
-- changes nothing while jobs run (the argument, and the paths that then wait for the sweep,
-- are in redis_log.py's docstring, "The persistence signal"). The head's `dirty` field says
-- "in the dirty set" without asking the set: written here with the seq, cleared by the take
-- that pops the conversation (`TAKE_DIRTY`), so a busy conversation's send skips the ZADD.
if h[2] == '1' then
  redis.call('HSET', head, 'seq', seq, 'committed', seq, field, seq)
  redis.call('PUBLISH', channel, frame)
  return {1, seq, ts, false}
end
redis.call('HSET', head, 'seq', seq, 'committed', seq, 'dirty', '1', field, seq)
redis.call('PUBLISH', channel, frame)
local job = false
if redis.call('ZADD', dirty, 'NX', ts, ARGV[6]) == 1
  and redis.call('SET', scheduled, attempt, 'NX', 'EX', ARGV[7]) then
  job = attempt
end
return {1, seq, ts, job}
"""
)

COMMIT_PUBLISH_MAX = 64
"""At most this many frames are published by one commit (the newest); a gateway that sees a
seq gap refills the rest from the log (chat/ws/delivery.py)."""

COMMIT = """
local head, stream, dirty, scheduled = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local seq, channel, cid, ttl, attempt = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local raw = redis.call('HGET', head, 'committed')
-- A head written before `committed` existed: everything below this event is committed.
local committed = raw and tonumber(raw) or (seq - 1)
local job = false
if seq > committed then
  redis.call('HSET', head, 'committed', ARGV[1])
  -- Every frame between the old and the new commit point, in seq order: commits run one at a
  -- time, each publishes only above the last, so PUBLISH order is seq order on the channel.
  local from = math.max(committed + 1, seq - tonumber(ARGV[7]) + 1)
  for _, e in ipairs(redis.call('XRANGE', stream, from .. '-0', ARGV[1] .. '-0')) do
    redis.call('PUBLISH', channel, e[2][2])
  end
  if ARGV[6] == '1' then
    local now = redis.call('TIME')
    local ms = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
    redis.call('ZADD', dirty, 'NX', ms, cid)
    if redis.call('SET', scheduled, attempt, 'NX', 'EX', ttl) then job = attempt end
  end
end
if ARGV[6] == '1' and not job and redis.call('GET', scheduled) == attempt then job = attempt end
return job
"""

TOUCH_HEAD = """
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return false end
redis.call('HSET', KEYS[1], 'seq', seq)
return seq
"""


ENSURE_HEAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'trimmed', ARGV[1], 'committed', ARGV[1],
  'archived', ARGV[1], 'layout', '2')
if tonumber(ARGV[1]) > 0 then redis.call('HSET', KEYS[1], 'restored', ARGV[1]) end
return 1
"""

READ = """
local head = redis.call('HMGET', KEYS[1], 'seq', 'trimmed', 'committed')
if not head[1] then return {-1} end
-- Only committed events are read: one not yet on the replicas may vanish in a failover.
local upto = (head[3] or head[1]) .. '-0'
local entries = redis.call('XRANGE', KEYS[2], ARGV[1], upto, 'COUNT', ARGV[2])
local frames = {}
for i, e in ipairs(entries) do frames[i] = e[2][2] end
return {tonumber(head[2]), frames}
"""

# The dedupe fields are timed when their events are trimmed, not when they are appended (one
# ZADD per trim instead of one per send): the events about to go are read first, and each
# one's field `sender_id NUL client_id` (decoded from its frame) joins `dedupe_ts` at the ts
# that ends the frame. A field whose event is still in the stream needs no timing: nothing
# expires it, and the log is what keeps it bounded. Then the old, trimmed ones are dropped as
# before; `dedupe_ts` entries written by the append script of earlier releases (for events
# trimmed or not) are checked the same way, so they expire too. At most ARGV[3] events per
# call (a trim after a long backlog must not hold Redis for long): 2 means call again.
TRIM = """
local keep_after = tonumber(ARGV[1])
local trimmed = tonumber(redis.call('HGET', KEYS[1], 'trimmed') or '0')
if keep_after <= trimmed then return 0 end
local chunk = tonumber(ARGV[3])
local going = redis.call('XRANGE', KEYS[2], '-', ARGV[1] .. '-0', 'COUNT', chunk)
local upto, more = keep_after, false
if #going == chunk then
  local last = tonumber(string.match(going[#going][1], '^(%d+)'))
  if last < keep_after then upto, more = last, true end
end
if #going > 0 then
  local timed = {}
  for _, e in ipairs(going) do
    local frame = e[2][2]
    local ok, event = pcall(cjson.decode, frame)
    local ts = string.match(frame, '"ts":(%d+)}$')
    -- Every frame is the append's own encoding; should one not decode, its field is left
    -- untimed (kept) rather than the trim failing for good.
    if ok and ts and type(event.sender_id) == 'string' and type(event.client_id) == 'string' then
      timed[#timed + 1] = ts
      timed[#timed + 1] = event.sender_id .. '\\0' .. event.client_id
    end
  end
  if #timed > 0 then redis.call('ZADD', KEYS[4], unpack(timed)) end
end
redis.call('HSET', KEYS[1], 'trimmed', string.format('%d', upto))
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d', upto + 1) .. '-0')
-- Forget dedupe entries that are both old and trimmed; newer ones keep answering retries.
-- A field is in the head (APPEND) or, written by an earlier release, in the separate hash.
local layout = redis.call('HGET', KEYS[1], 'layout')
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])
for _, field in ipairs(old) do
  local where = KEYS[1]
  local seq = redis.call('HGET', where, field)
  if not seq and layout ~= '2' then
    where = KEYS[3]
    seq = redis.call('HGET', where, field)
  end
  if tonumber(seq or '0') <= upto then
    redis.call('HDEL', where, field)
    redis.call('ZREM', KEYS[4], field)
  end
end
-- The earlier release's hash is gone (every field expired, none is written any more): from
-- now on the append looks in the head only.
if layout ~= '2' and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[1], 'layout', '2')
end
if more then return 2 end
return 1
"""

# KEYS: heads; ARGV: the seq archived for each, in the same order. A missing head stays missing
# (it is rebuilt from the archive, which holds at least this much); `archived` never moves down,
# so a slower job that finishes last cannot take the record back.
MARK_ARCHIVED = """
for i, head in ipairs(KEYS) do
  local h = redis.call('HMGET', head, 'seq', 'archived')
  if h[1] and tonumber(ARGV[i]) > tonumber(h[2] or '0') then
    redis.call('HSET', head, 'archived', ARGV[i])
  end
end
return 0
"""

# The persistence worker's read: for each conversation (KEYS: head, stream, head, stream, ...)
# its `archived` record and the committed events after it, up to ARGV[1] each, in one call.
# Per conversation {archived, trimmed, frames}; {-1} for a missing head (the caller's `read`
# rebuilds it), {-2} for a head with no record yet (written before the record existed: the
# caller asks the archive's watermark). Callers pass a bounded number of conversations per call,
# so one call never holds Redis for long.
READ_UNARCHIVED = """
local out = {}
for i = 1, #KEYS, 2 do
  local h = redis.call('HMGET', KEYS[i], 'seq', 'trimmed', 'committed', 'archived')
  if not h[1] then
    out[#out + 1] = {-1}
  elseif not h[4] then
    out[#out + 1] = {-2}
  else
    local upto = (h[3] or h[1]) .. '-0'
    local entries = redis.call('XRANGE', KEYS[i + 1], (tonumber(h[4]) + 1) .. '-0', upto,
      'COUNT', ARGV[1])
    local frames = {}
    for j, e in ipairs(entries) do frames[j] = e[2][2] end
    out[#out + 1] = {tonumber(h[4]), tonumber(h[2] or '0'), frames}
  end
end
return out
"""

# The worker's take: pop up to ARGV[1] dirty conversations, oldest first, and clear each one's
# head `dirty` field in the same step, so the next append there marks it dirty again (and may
# claim the schedule). The heads' keys are built here from ARGV[2] .. cid .. ARGV[3]
# (redis_keys.py `log`), not passed in KEYS: which conversations are popped is only known
# inside the script. Fine on one Redis (standalone or Sentinel, what `RedisTarget` supports),
# like the persist keys' own tag; Redis Cluster would need the set per slot.
TAKE_DIRTY = """
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
local out = {}
for i = 1, #popped, 2 do
  out[#out + 1] = popped[i]
  redis.call('HDEL', ARGV[2] .. popped[i] .. ARGV[3], 'dirty')
end
return out
"""
