"""Lua scripts for the Redis budget state: each one is a single atomic step on the server.

Why scripts: a reservation is check-and-hold over several keys (spend, open holds,
their expiry index); two replicas doing GET-then-SET would both pass a limit that
only one of them fits. Redis runs a script to completion before any other command,
so the check and the hold are one indivisible step for every replica.

Key layout under the prefix ``P`` (single Redis primary; keys are built inside the
scripts, so this is not Redis Cluster compatible):

- ``P epoch``            id of the current data set; missing = Redis lost its data
- ``P resume``           Redis time before which reservations are refused (after a rebuild)
- ``P lost``             set by a replica that found ``epoch`` missing (a rebuild needs a grace)
- ``P s:{t}:{period}``   committed spend, integer nano-dollars
- ``P d:{t}:{period}``   hash day -> nanos (for the forecast)
- ``P ha:{t}``           hash reservation id -> amount held
- ``P hz:{t}``           sorted set reservation id -> expiry (the caller's clock, seconds)
- ``P hr:{t}``           sum of ``ha`` (kept exact by the scripts)
- ``P rid:{id}``         hash {t: tenant, ttl: seconds, s: "1" while settling}
- ``P done:{id}``        reservation committed or released (remembered for a day)

Return codes are small integers so the Python side never parses strings on the hot path.
"""

from __future__ import annotations

__all__ = [
    "ABORT_SETTLE",
    "ADD_SPEND",
    "BEGIN_SETTLE",
    "FINISH_SETTLE",
    "HEARTBEAT",
    "LOAD",
    "RELEASE",
    "RESERVE",
    "RESERVED",
    "RESTORE",
]

_PRUNE = """
local function prune(P, tenant, now)
  local z = P .. 'hz:' .. tenant
  local ids = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #ids > 0 then
    local a = P .. 'ha:' .. tenant
    local sum = 0
    for i = 1, #ids, 500 do
      local chunk = {unpack(ids, i, math.min(i + 499, #ids))}
      local amounts = redis.call('HMGET', a, unpack(chunk))
      for _, v in ipairs(amounts) do if v then sum = sum + tonumber(v) end end
      redis.call('HDEL', a, unpack(chunk))
      redis.call('ZREM', z, unpack(chunk))
    end
    redis.call('DECRBY', P .. 'hr:' .. tenant, sum)
  end
  return tonumber(redis.call('GET', P .. 'hr:' .. tenant) or '0')
end
"""

_DROP = """
local function drop(P, tenant, rid)
  local a = P .. 'ha:' .. tenant
  local amount = redis.call('HGET', a, rid)
  if amount then
    redis.call('HDEL', a, rid)
    redis.call('ZREM', P .. 'hz:' .. tenant, rid)
    redis.call('DECRBY', P .. 'hr:' .. tenant, amount)
  end
  redis.call('DEL', P .. 'rid:' .. rid)
  redis.call('SET', P .. 'done:' .. rid, '1', 'EX', 86400)
  return amount
end
"""

_SPEND = """
local function add_spend(P, tenant, period, nanos, day)
  local key, days = P .. 's:' .. tenant .. ':' .. period, P .. 'd:' .. tenant .. ':' .. period
  local total = redis.call('INCRBY', key, nanos)
  if day ~= '' then redis.call('HINCRBY', days, day, nanos) end
  if string.match(period, '^%d%d%d%d%-%d%d$') then
    -- a calendar month's totals outlive it by a few days, then go (no month is 40 days long,
    -- so a live month's key never expires); other periods ("all") are kept forever
    redis.call('EXPIRE', key, 3456000)
    if day ~= '' then redis.call('EXPIRE', days, 3456000) end
  end
  return total
end
"""

_HOLD = """
local function hold(P, tenant, rid, amount, expires, ttl, settling)
  local a = P .. 'ha:' .. tenant
  if redis.call('HSETNX', a, rid, amount) == 1 then
    redis.call('INCRBY', P .. 'hr:' .. tenant, amount)
  end
  redis.call('ZADD', P .. 'hz:' .. tenant, expires, rid)
  local keep = math.ceil(3 * ttl) + 60
  redis.call('HSET', P .. 'rid:' .. rid, 't', tenant, 'ttl', ttl, 's', settling)
  redis.call('EXPIRE', P .. 'rid:' .. rid, keep)
  for _, k in ipairs({a, P .. 'hz:' .. tenant, P .. 'hr:' .. tenant}) do redis.call('EXPIRE', k, keep) end
end
"""

RESERVE = (
    _PRUNE
    + _HOLD
    + """
-- ARGV: P, epoch, tenant, period, rid, amount, limit, now, ttl
-- -> {1, spend, reserved} granted | {0, spend, reserved} refused | {-1} data lost | {-2, wait} resuming
local P, tenant = ARGV[1], ARGV[3]
if redis.call('GET', P .. 'epoch') ~= ARGV[2] then return {-1} end
local resume = redis.call('GET', P .. 'resume')
if resume then
  local t = redis.call('TIME')
  local wait = tonumber(resume) - (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  if wait > 0 then return {-2, wait} end
  redis.call('DEL', P .. 'resume')
end
local amount, limit, now, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local reserved = prune(P, tenant, now)
local spend = tonumber(redis.call('GET', P .. 's:' .. tenant .. ':' .. ARGV[4]) or '0')
if spend + reserved + amount > limit then return {0, spend, reserved} end
hold(P, tenant, ARGV[5], ARGV[6], now + ttl, ttl, '0')
return {1, spend, reserved + amount}
"""
)

RESERVED = (
    _PRUNE
    + """
-- ARGV: P, tenant, now -> open reservations (nanos)
return prune(ARGV[1], ARGV[2], tonumber(ARGV[3]))
"""
)

RESTORE = (
    _HOLD
    + """
-- Put back a hold this replica still has open (after Redis lost its data). ARGV: P, tenant, rid,
-- amount, expires, ttl, settling. Never resurrects a reservation that was already settled.
local P, rid = ARGV[1], ARGV[3]
if redis.call('EXISTS', P .. 'done:' .. rid) == 1 then return 0 end
hold(P, ARGV[2], rid, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
return 1
"""
)

BEGIN_SETTLE = """
-- ARGV: P, rid -> 1 OPEN | 2 SETTLED | 3 UNKNOWN
local P, rid = ARGV[1], ARGV[2]
local rk = P .. 'rid:' .. rid
local h = redis.call('HMGET', rk, 't', 'ttl', 's')
if h[1] then
  if h[3] == '1' then return 2 end
  local z = P .. 'hz:' .. h[1]
  local score = redis.call('ZSCORE', z, rid)
  if score then
    -- the hold stays while the ledger write runs; its lease grows by one TTL so that a replica
    -- dying mid-commit still frees it eventually
    redis.call('ZADD', z, tonumber(score) + tonumber(h[2]), rid)
    redis.call('HSET', rk, 's', '1')
    return 1
  end
end
if redis.call('EXISTS', P .. 'done:' .. rid) == 1 then return 2 end
redis.call('SET', P .. 'done:' .. rid, '1', 'EX', 86400)
return 3
"""

ABORT_SETTLE = """
-- ARGV: P, rid
local rk = ARGV[1] .. 'rid:' .. ARGV[2]
if redis.call('EXISTS', rk) == 1 then redis.call('HSET', rk, 's', '0') end
return 0
"""

FINISH_SETTLE = (
    _DROP
    + _SPEND
    + """
-- ARGV: P, rid, tenant, period, nanos, day ('' for none) -> the period's new spend
local P = ARGV[1]
local total = add_spend(P, ARGV[3], ARGV[4], ARGV[5], ARGV[6])
drop(P, ARGV[3], ARGV[2])
return total
"""
)

ADD_SPEND = (
    _SPEND
    + """
-- ARGV: P, tenant, period, nanos, day ('' for none) -> the period's new spend
return add_spend(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

RELEASE = (
    _DROP
    + """
-- ARGV: P, rid -> 1 freed | 0 not open (already settled, settling, expired or unknown)
local P, rid = ARGV[1], ARGV[2]
local h = redis.call('HMGET', P .. 'rid:' .. rid, 't', 's')
if not h[1] or h[2] == '1' then return 0 end
if drop(P, h[1], rid) then return 1 end
return 0
"""
)

LOAD = (
    _SPEND
    + """
-- Rebuild the month-to-date view from ledger totals. ARGV: P, new epoch, grace ms, then triples
-- tenant, period, day ('' for none), nanos... Only when the data set is missing: a live data set
-- is authoritative (it has every commit since it was built). Totals are ADDED to whatever
-- replicas committed since the loss, which may count a record twice (conservative, never under).
-- -> {epoch in force, 1 if this call built it}
local P = ARGV[1]
local current = redis.call('GET', P .. 'epoch')
if current then return {current, 0} end
for i = 4, #ARGV, 4 do add_spend(P, ARGV[i], ARGV[i + 1], ARGV[i + 3], ARGV[i + 2]) end
redis.call('SET', P .. 'epoch', ARGV[2])
if redis.call('GET', P .. 'lost') then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', P .. 'resume', now_ms + tonumber(ARGV[3]))
  redis.call('DEL', P .. 'lost')
end
return {ARGV[2], 1}
"""
)

HEARTBEAT = """
-- ARGV: P, replica id, staleness s -> {epoch or false, live replicas}
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local r = P .. 'replicas'
redis.call('ZADD', r, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', r, '-inf', now - tonumber(ARGV[3]))
redis.call('EXPIRE', r, 3600)
return {redis.call('GET', P .. 'epoch'), redis.call('ZCARD', r)}
"""
