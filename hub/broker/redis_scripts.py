"""Lua scripts of the Redis broker: each is one atomic step (docs/broker.md shows them to pipeline authors)."""

from __future__ import annotations

PUBLISH_EVENT = """
-- KEYS: seq, log, events channel, lifecycle channel
-- ARGV: the event as a MessagePack map lacking only the value of its last key "seq", log maxlen, lifecycle "1"/"0"
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- a counter lost while its log survived must not restart below the log's last id
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  if top[1] then redis.call('SET', KEYS[1], string.match(top[1][1], '^(%d+)')) end
end
local seq = redis.call('INCR', KEYS[1])
local payload = ARGV[1] .. cmsgpack.pack(seq)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'event', payload)
redis.call('PUBLISH', KEYS[3], payload)
if ARGV[3] == '1' then redis.call('PUBLISH', KEYS[4], payload) end
return seq
"""

PUBLISH_AUDIO = """
-- KEYS: audio channel, audiolog; ARGV: frame (MessagePack map), window ms, hard maxlen
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[2], 'MINID', '~', now - tonumber(ARGV[2]), '*', 'frame', ARGV[1])
redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', ARGV[3])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""

HISTORY = """
-- KEYS: seq, log; ARGV: after_seq, limit. Returns {last_seq, entries with seq > after_seq (the newest limit)}
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tonumber(ARGV[1]) + 1, last - tonumber(ARGV[2]) + 1, 1)
if start > last then return {last, {}} end
return {last, redis.call('XRANGE', KEYS[2], start .. '-0', '+', 'COUNT', ARGV[2])}
"""

EXPIRE = """
-- KEYS: seq, log, audiolog; ARGV: seconds. One script, so the three keys share one deadline.
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return 1
"""

RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
