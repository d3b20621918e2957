"""RedisSessionRegistry: the caller-session registry (hub/broker/sessions.py) on Redis, one Lua script per step.

Keys (prefix `voicehub`): `{p}:session:{sessionId}` (hash: the record's fields, camelCase), `{p}:lease:caller:{conv}`
(string: the owner node, with the lease's PX expiry) and `{p}:sessions` (sorted set: sessionId scored by its due time
in epoch ms). Scripts read the time from Redis (`TIME`), so the nodes' clocks only matter for `resumeBeforeMs`, which a
node computes from its own clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.broker.sessions import Renewal, SessionRecord

if TYPE_CHECKING:
    from hub.broker.redis_broker import RedisBroker

RECORD_TTL_MS = 86_400_000
"""A record the owner stops renewing without ending it (a bug, a lost Redis write) disappears after 24 h."""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

REGISTER = _NOW + """
-- KEYS: session hash, lease, sessions zset; ARGV: sessionId, tenantId, conversationId, agentId, owner, lease ms,
-- grace ms, record ttl ms
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'sessionId', ARGV[1], 'tenantId', ARGV[2], 'conversationId', ARGV[3], 'agentId', ARGV[4],
  'owner', ARGV[5], 'resumeBeforeMs', 0, 'agentMs', -1, 'state', 'live')
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]) + tonumber(ARGV[7]), ARGV[1])
return 1
"""

RENEW = _NOW + """
-- KEYS: sessions zset, then (session hash, lease) per session; ARGV: owner, lease ms, grace ms, record ttl ms, then
-- (sessionId, agentMs) per session. Returns 1/0 per session.
local out = {}
local n = (#KEYS - 1) / 2
for i = 1, n do
  local h, l = KEYS[2 * i], KEYS[2 * i + 1]
  local ok = 0
  if redis.call('HGET', h, 'owner') == ARGV[1] and redis.call('HGET', h, 'state') == 'live' then
    local holder = redis.call('GET', l)
    if (not holder) or holder == ARGV[1] then
      redis.call('SET', l, ARGV[1], 'PX', ARGV[2])
      redis.call('HSET', h, 'agentMs', ARGV[4 + 2 * i])
      redis.call('PEXPIRE', h, ARGV[4])
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[3 + 2 * i])
      ok = 1
    end
  end
  out[i] = ok
end
return out
"""

UPDATE = """
-- KEYS: session hash; ARGV: owner, resumeBeforeMs or '', agentMs or ''
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'resumeBeforeMs', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'agentMs', ARGV[3]) end
return 1
"""

RELEASE = """
-- KEYS: session hash, lease, sessions zset; ARGV: owner, resumeBeforeMs, agentMs, sessionId
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 0 end
local deadline = math.max(tonumber(redis.call('HGET', KEYS[1], 'resumeBeforeMs') or '0'), tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'owner', '', 'resumeBeforeMs', deadline, 'agentMs', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('ZADD', KEYS[3], deadline, ARGV[4])
return 1
"""

TAKE_OVER = _NOW + """
-- KEYS: session hash, lease, sessions zset; ARGV: tenantId, owner, lease ms, grace ms, record ttl ms, sessionId
-- Returns {} (not resumable) or the record's fields before the takeover as a flat list.
if redis.call('HGET', KEYS[1], 'tenantId') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'live' then return {} end
local before = redis.call('HGETALL', KEYS[1])
local holder = redis.call('GET', KEYS[2])
local resume = tonumber(redis.call('HGET', KEYS[1], 'resumeBeforeMs') or '0')
local due = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[6]) or '0')
if (not holder) and resume <= now and due <= now then return {} end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'resumeBeforeMs', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[6])
table.insert(before, 'dueMs')
table.insert(before, tostring(due))
return before
"""

BEGIN_END = """
-- KEYS: session hash; ARGV: owner
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'live' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ending')
return 1
"""

FINISH = """
-- KEYS: session hash, lease, sessions zset; ARGV: owner, sessionId
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

CLAIM = _NOW + """
-- KEYS: session hash, lease, sessions zset; ARGV: owner, lease ms, sessionId
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[3]) return {} end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('ZADD', KEYS[3], now + ttl, ARGV[3]) return {} end
local resume = tonumber(redis.call('HGET', KEYS[1], 'resumeBeforeMs') or '0')
local due = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[3]) or '0')
if resume > now or due > now then redis.call('ZADD', KEYS[3], math.max(resume, due), ARGV[3]) return {} end
local before = redis.call('HGETALL', KEYS[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'state', 'ending')
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[3])
table.insert(before, 'dueMs')
table.insert(before, tostring(due))
return before
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(flat: list[Any]) -> SessionRecord | None:
    if not flat:
        return None
    fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
    return SessionRecord(
        session_id=fields.get("sessionId", ""), tenant_id=fields.get("tenantId", ""),
        conversation_id=fields.get("conversationId", ""), agent_id=fields.get("agentId", ""),
        owner=fields.get("owner", ""), resume_before_ms=int(float(fields.get("resumeBeforeMs") or 0)),
        agent_ms=int(float(fields.get("agentMs") or -1)), state=fields.get("state", "live"),
        due_ms=int(float(fields.get("dueMs") or 0)))


class RedisSessionRegistry:
    shared = True

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        redis = broker.redis
        self._register = redis.register_script(REGISTER)
        self._renew = redis.register_script(RENEW)
        self._update = redis.register_script(UPDATE)
        self._release = redis.register_script(RELEASE)
        self._take_over = redis.register_script(TAKE_OVER)
        self._begin_end = redis.register_script(BEGIN_END)
        self._finish = redis.register_script(FINISH)
        self._claim = redis.register_script(CLAIM)

    def session_key(self, session_id: str) -> str:
        return f"{self.broker.prefix}:session:{session_id}"

    def lease_key(self, conversation_id: str) -> str:
        return self.broker.keys.lease(f"caller:{conversation_id}")

    @property
    def index_key(self) -> str:
        return f"{self.broker.prefix}:sessions"

    def _keys(self, session_id: str, conversation_id: str) -> list[str]:
        return [self.session_key(session_id), self.lease_key(conversation_id), self.index_key]

    async def register(self, record: SessionRecord, lease_s: float, grace_s: float) -> None:
        args: list[str | int] = [record.session_id, record.tenant_id, record.conversation_id, record.agent_id, record.owner,
                _ms(lease_s), _ms(grace_s), RECORD_TTL_MS]
        await self.broker._call("register_session", self._register(
            keys=self._keys(record.session_id, record.conversation_id), args=args))

    async def renew(self, owner: str, renewals: list[Renewal], lease_s: float, grace_s: float) -> list[bool]:
        if not renewals:
            return []
        keys: list[str] = [self.index_key]
        args: list[Any] = [owner, _ms(lease_s), _ms(grace_s), RECORD_TTL_MS]
        for renewal in renewals:
            keys += [self.session_key(renewal.session_id), self.lease_key(renewal.conversation_id)]
            args += [renewal.session_id, renewal.agent_ms]
        results: Any = await self.broker._call("renew_sessions", self._renew(keys=keys, args=args))
        return [bool(int(r)) for r in results]

    async def update(self, session_id: str, owner: str, *, resume_before_ms: int | None = None,
                     agent_ms: int | None = None) -> bool:
        args: list[str | int] = [owner, "" if resume_before_ms is None else resume_before_ms,
                                 "" if agent_ms is None else agent_ms]
        done = await self.broker._call("update_session", self._update(keys=[self.session_key(session_id)], args=args))
        return bool(done)

    async def release(self, record: SessionRecord, owner: str, resume_before_ms: int, agent_ms: int) -> bool:
        done = await self.broker._call("release_session", self._release(
            keys=self._keys(record.session_id, record.conversation_id),
            args=[owner, resume_before_ms, agent_ms, record.session_id]))
        return bool(done)

    async def get(self, session_id: str) -> SessionRecord | None:
        flat: Any = await self.broker._call("get_session", self.broker.redis.hgetall(self.session_key(session_id)))
        if not flat:
            return None
        pairs = [item for key, value in flat.items() for item in (key, value)]
        return _record(pairs)

    async def take_over(self, session_id: str, tenant_id: str, owner: str, lease_s: float,
                        grace_s: float) -> SessionRecord | None:
        current = await self.get(session_id)
        if current is None or current.tenant_id != tenant_id:
            return None
        flat: Any = await self.broker._call("take_over_session", self._take_over(
            keys=self._keys(session_id, current.conversation_id),
            args=[tenant_id, owner, _ms(lease_s), _ms(grace_s), RECORD_TTL_MS, session_id]))
        return _record(flat)

    async def begin_end(self, session_id: str, owner: str) -> bool:
        done = await self.broker._call("begin_end_session", self._begin_end(
            keys=[self.session_key(session_id)], args=[owner]))
        return bool(done)

    async def finish(self, session_id: str, conversation_id: str, owner: str) -> None:
        await self.broker._call("finish_session", self._finish(
            keys=self._keys(session_id, conversation_id), args=[owner, session_id]))

    async def due(self, limit: int) -> list[str]:
        now: Any = await self.broker._call("time", self.broker.redis.time())
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        ids: Any = await self.broker._call("due_sessions", self.broker.redis.zrangebyscore(
            self.index_key, "-inf", now_ms, start=0, num=limit))
        return [_text(i) for i in ids]

    async def claim_expired(self, session_id: str, owner: str, lease_s: float) -> SessionRecord | None:
        current = await self.get(session_id)
        if current is None:
            await self.broker._call("drop_session", self.broker.redis.zrem(self.index_key, session_id))
            return None
        flat: Any = await self.broker._call("claim_session", self._claim(
            keys=self._keys(session_id, current.conversation_id), args=[owner, _ms(lease_s), session_id]))
        return _record(flat)
