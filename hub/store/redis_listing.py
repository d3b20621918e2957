"""One page of a tenant's conversations from the Redis store's indices, in one Lua script (one round trip).

The script never builds a temporary key. It walks the sort index in the requested direction, in chunks,
keeps what the filters accept (SMISMEMBER on the filter sets, ZMSCORE on the startedAt / duration / open
indices) and stops as soon as the page is full; the total is known before the walk:
  - no filter: the size of the walked range (ZCARD, or ZCOUNT of the date range when sorting by startedAt);
  - one kind of filter: SCARD of a set or BITCOUNT of the AND of the filters' bitmaps (a few microseconds,
    where SINTERCARD would look up every member of the smallest set), ZCOUNT of the date range, or ZCOUNT of
    the duration index plus the open conversations lasting long enough;
  - several kinds: the smallest of them is read (the set, the AND bitmap's slots, or a score range) and
    checked against the others.
When few conversations match and the walk would be long (a deep page of a rare selection), those matches
are sorted by the sort key instead of walking (the memory store's "pick").

The open index scores an in-progress conversation by -startedAtMs, so its rank order is the order of the
duration so far (ties by id, as in a sorted set); the ones started at or after `now` (duration 0) are
ordered by id. Ties are broken by id in the direction of the sort, exactly as the memory store does.
"""

from __future__ import annotations

import math
from typing import Any

from redis.asyncio import Redis

from hub.store import models as m
from hub.store.timefmt import to_ms

# KEYS: 1 startedAt, 2 endedAt, 3 duration (ended, seconds), 4 open (-startedAtMs), 5 a scratch bitmap (deleted
#       before the script ends), 6 hash slot -> id, then the n filter sets, then the same n filters as bitmaps
# ARGV: 1 sort field, 2 '1' desc, 3 offset, 4 size, 5 dateFrom ms or '', 6 dateTo ms or '',
#       7 minDuration seconds or '', 8 least ms lasting minDuration, 9 now ms, 10 open score floor for minDuration,
#       11 -now (open conversations scored at or below it have lasted 0 s), 12 ids per step, 13 strategy
LIST_PAGE = r"""
local START, ENDED, DUR, OPEN, SCRATCH, SLOT_IDS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local sets, bitmaps = {}, {}
local n_sets = (#KEYS - 6) / 2
for i = 1, n_sets do
  sets[i] = KEYS[6 + i]
  bitmaps[i] = KEYS[6 + n_sets + i]
end
local sort_by, desc = ARGV[1], ARGV[2] == '1'
local offset, size = tonumber(ARGV[3]), tonumber(ARGV[4])
local has_date = ARGV[5] ~= '' or ARGV[6] ~= ''
local from_s = ARGV[5] ~= '' and ARGV[5] or '-inf'
local to_s = ARGV[6] ~= '' and ARGV[6] or '+inf'
local from_n = tonumber(ARGV[5]) or -math.huge
local to_n = tonumber(ARGV[6]) or math.huge
local has_min = ARGV[7] ~= ''
local min_s, min_n = ARGV[7], tonumber(ARGV[7])
local least, now = tonumber(ARGV[8]), tonumber(ARGV[9])
local open_floor, neg_now = ARGV[10], ARGV[11]
local CHUNK, strategy = tonumber(ARGV[12]), ARGV[13]

local function num(s)
  if s == 'inf' or s == '+inf' then return math.huge end
  if s == '-inf' then return -math.huge end
  return tonumber(s)
end

-- byte order of ids (sorted sets order members with memcmp; Lua's < on strings follows the locale)
local function id_lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function id_gt(a, b) return id_lt(b, a) end

-- (score, id) a comes before (score, id) b in the requested direction
local function before(sa, ia, sb, ib)
  if sa ~= sb then
    if desc then return sa > sb end
    return sa < sb
  end
  if desc then return id_lt(ib, ia) end
  return id_lt(ia, ib)
end

local function live_seconds(open_score)
  local d = (now + open_score) / 1000
  if d < 0 then return 0 end
  return d
end

-- the ids of `ids` the filters accept, in order; `skip` names the filter kind already satisfied
local function keep(ids, skip)
  if #ids == 0 then return ids end
  local ok = {}
  for i = 1, #ids do ok[i] = true end
  if skip ~= 'S' then
    for _, key in ipairs(sets) do
      local flags = redis.call('SMISMEMBER', key, unpack(ids))
      for i = 1, #ids do if flags[i] == 0 then ok[i] = false end end
    end
  end
  if has_date and skip ~= 'D' then
    local starts = redis.call('ZMSCORE', START, unpack(ids))
    for i = 1, #ids do
      local s = starts[i] and tonumber(starts[i])
      if not s or s < from_n or s > to_n then ok[i] = false end
    end
  end
  if has_min and skip ~= 'M' then
    local durs = redis.call('ZMSCORE', DUR, unpack(ids))
    local live, at = {}, {}
    for i = 1, #ids do
      if ok[i] then
        if durs[i] then
          if tonumber(durs[i]) < min_n then ok[i] = false end
        else
          live[#live + 1] = ids[i]
          at[#at + 1] = i
        end
      end
    end
    if #live > 0 then
      local opens = redis.call('ZMSCORE', OPEN, unpack(live))
      for j = 1, #live do
        local sc = opens[j] and tonumber(opens[j])
        if not sc or (least > 0 and now + sc < least) then ok[at[j]] = false end
      end
    end
  end
  local out = {}
  for i = 1, #ids do if ok[i] then out[#out + 1] = ids[i] end end
  return out
end

local function keep_all(ids, skip)
  local out = {}
  for i = 1, #ids, CHUNK do
    local part = {}
    for j = i, math.min(#ids, i + CHUNK - 1) do part[#part + 1] = ids[j] end
    for _, id in ipairs(keep(part, skip)) do out[#out + 1] = id end
  end
  return out
end

-- a stream over forward ranks [lo, hi] of a sorted set in the walk direction, starting `pos` into it:
-- pull(count) answers up to `count` ids and their scores (strings), {} at the end
local function ranks(key, lo, hi, pos)
  return function(count)
    local a, b
    if desc then
      b = hi - pos
      a = math.max(lo, b - count + 1)
    else
      a = lo + pos
      b = math.min(hi, a + count - 1)
    end
    if a > b then return {}, {} end
    pos = pos + (b - a + 1)
    local flat = redis.call('ZRANGE', key, a, b, 'WITHSCORES')
    local ids, scores, n = {}, {}, #flat / 2
    for i = 1, n do
      local j = desc and (n - i + 1) or i
      ids[i], scores[i] = flat[2 * j - 1], flat[2 * j]
    end
    return ids, scores
  end
end

local function list_pull(ids, scores)
  local pos = 0
  return function(count)
    local a, b = {}, {}
    while #a < count and pos < #ids do
      pos = pos + 1
      a[#a + 1], b[#b + 1] = ids[pos], scores[pos]
    end
    return a, b
  end
end

local function concat(first, second)
  local on_first = true
  return function(count)
    if on_first then
      local ids, scores = first(count)
      if #ids > 0 then return ids, scores end
      on_first = false
    end
    return second(count)
  end
end

local function mapped(pull, f)
  return function(count)
    local ids, scores = pull(count)
    for i = 1, #scores do scores[i] = f(scores[i]) end
    return ids, scores
  end
end

local function peeker(pull, want)
  local p = {ids = {}, scores = {}, i = 1, done = false}
  function p.peek()
    if p.i > #p.ids then
      if p.done then return nil end
      p.ids, p.scores = pull(want)
      want = math.min(CHUNK, want * 2)
      p.i = 1
      if #p.ids == 0 then p.done = true return nil end
    end
    return p.ids[p.i], p.scores[p.i]
  end
  function p.pop() p.i = p.i + 1 end
  return p
end

local function merge(pa, pb, want)
  local a, b = peeker(pa, want), peeker(pb, want)
  return function(count)
    local ids, scores = {}, {}
    while #ids < count do
      local ia, sa = a.peek()
      local ib, sb = b.peek()
      if not ia and not ib then break end
      if ia and (not ib or before(sa, ia, sb, ib)) then
        ids[#ids + 1], scores[#scores + 1] = ia, sa
        a.pop()
      else
        ids[#ids + 1], scores[#scores + 1] = ib, sb
        b.pop()
      end
    end
    return ids, scores
  end
end

local function count_below(key, bound) return redis.call('ZCOUNT', key, '-inf', '(' .. bound) end

-- the duration order (ended ones from the index, open ones by how long they have lasted so far),
-- from minDuration up when it applies, skipping `pos` (only when nothing else filters); `want`: how many
-- the first read is likely to need
local function durations(pos, want)
  local n_dur, n_open = redis.call('ZCARD', DUR), redis.call('ZCARD', OPEN)
  local ended_lo = has_min and count_below(DUR, min_s) or 0
  local ended = mapped(ranks(DUR, ended_lo, n_dur - 1, 0), tonumber)
  local open
  if has_min and least > 0 then
    open = mapped(ranks(OPEN, count_below(OPEN, open_floor), n_open - 1, 0), function(s) return live_seconds(tonumber(s)) end)
  else
    local zero = redis.call('ZCOUNT', OPEN, '-inf', neg_now)
    local zero_ids = zero > 0 and redis.call('ZRANGE', OPEN, 0, zero - 1) or {}
    table.sort(zero_ids, desc and id_gt or id_lt)
    local zeros = {}
    for i = 1, #zero_ids do zeros[i] = 0 end
    local lasting = mapped(ranks(OPEN, zero, n_open - 1, 0), function(s) return live_seconds(tonumber(s)) end)
    if desc then open = concat(lasting, list_pull(zero_ids, zeros)) else open = concat(list_pull(zero_ids, zeros), lasting) end
  end
  local pull = merge(ended, open, math.max(16, math.min(CHUNK, want)))
  if pos > 0 then
    local left = pos
    while left > 0 do
      local ids = pull(math.min(left, CHUNK))
      if #ids == 0 then break end
      left = left - #ids
    end
  end
  return pull
end

local function sort_scores(ids)
  local out = {}
  for i = 1, #ids, CHUNK do
    local part = {}
    for j = i, math.min(#ids, i + CHUNK - 1) do part[#part + 1] = ids[j] end
    local got
    if sort_by == 'startedAt' then
      got = redis.call('ZMSCORE', START, unpack(part))
      for j = 1, #part do got[j] = num(got[j]) end
    elseif sort_by == 'endedAt' then
      got = redis.call('ZMSCORE', ENDED, unpack(part))
      for j = 1, #part do got[j] = num(got[j]) end
    else
      got = redis.call('ZMSCORE', DUR, unpack(part))
      local live, at = {}, {}
      for j = 1, #part do
        if got[j] then got[j] = tonumber(got[j]) else live[#live + 1] = part[j] at[#at + 1] = j end
      end
      if #live > 0 then
        local opens = redis.call('ZMSCORE', OPEN, unpack(live))
        for k = 1, #live do got[at[k]] = live_seconds(tonumber(opens[k])) end
      end
    end
    for j = 1, #part do out[#out + 1] = got[j] end
  end
  return out
end

-- the ids whose bit is set in the scratch bitmap (slot n is bit n: byte n / 8, most significant bit first)
local MASKS = {128, 64, 32, 16, 8, 4, 2, 1}
local function scratch_ids()
  local raw = redis.call('GET', SCRATCH)
  if not raw then return {} end
  local slots = {}
  for at = 1, #raw, 4096 do
    local bytes = {string.byte(raw, at, math.min(#raw, at + 4095))}
    for k = 1, #bytes do
      local b = bytes[k]
      if b ~= 0 then
        for j = 1, 8 do
          if bit.band(b, MASKS[j]) ~= 0 then slots[#slots + 1] = (at + k - 2) * 8 + j - 1 end
        end
      end
    end
  end
  local ids = {}
  for i = 1, #slots, CHUNK do
    local part = {}
    for j = i, math.min(#slots, i + CHUNK - 1) do part[#part + 1] = slots[j] end
    local got = redis.call('HMGET', SLOT_IDS, unpack(part))
    for j = 1, #part do if got[j] then ids[#ids + 1] = got[j] end end
  end
  return ids
end

local function page_of()
  -- the kinds of filter: S (sets; several are ANDed as bitmaps into the scratch key), D (startedAt range),
  -- M (minDuration); how many conversations each lets through
  local n_all = redis.call('ZCARD', START)
  local sizes = {}
  if n_sets == 1 then
    sizes.S = redis.call('SCARD', sets[1])
  elseif n_sets > 1 then
    redis.call('BITOP', 'AND', SCRATCH, unpack(bitmaps))
    sizes.S = redis.call('BITCOUNT', SCRATCH)
  end
  local d_lo, d_hi = 0, n_all - 1
  if has_date then
    d_lo = ARGV[5] ~= '' and count_below(START, from_s) or 0
    d_hi = redis.call('ZCOUNT', START, '-inf', to_s) - 1
    sizes.D = math.max(0, d_hi - d_lo + 1)
  end
  if has_min then
    local open_count
    if least > 0 then open_count = redis.call('ZCOUNT', OPEN, open_floor, '+inf') else open_count = redis.call('ZCARD', OPEN) end
    sizes.M = redis.call('ZCOUNT', DUR, min_s, '+inf') + open_count
  end

  -- the kind the walked range already applies, and the walk's length
  local ranged = nil
  local walk_len = n_all
  if sort_by == 'startedAt' and has_date then ranged, walk_len = 'D', sizes.D end
  if sort_by == 'durationSeconds' and has_min then ranged, walk_len = 'M', sizes.M end

  local kinds, smallest = 0, nil
  for kind, n in pairs(sizes) do
    kinds = kinds + 1
    if smallest == nil or n < sizes[smallest] or (n == sizes[smallest] and kind < smallest) then smallest = kind end
  end

  local function gather(kind)
    if kind == 'S' then
      if n_sets == 1 then return redis.call('SMEMBERS', sets[1]) end
      return scratch_ids()
    end
    if kind == 'D' then
      if d_hi < d_lo then return {} end
      return redis.call('ZRANGE', START, d_lo, d_hi)
    end
    local ids = redis.call('ZRANGE', DUR, min_s, '+inf', 'BYSCORE')
    local open_ids
    if least > 0 then
      open_ids = redis.call('ZRANGE', OPEN, open_floor, '+inf', 'BYSCORE')
    else
      open_ids = redis.call('ZRANGE', OPEN, 0, -1)
    end
    for _, id in ipairs(open_ids) do ids[#ids + 1] = id end
    return ids
  end

  -- the total: counted above for one kind, else the smallest kind read and checked against the others
  local total, matches
  if kinds == 0 then
    total = n_all
  elseif kinds == 1 then
    total = sizes[smallest]
  else
    matches = keep_all(gather(smallest), smallest)
    total = #matches
  end
  if total == 0 or offset >= total then return {total} end

  -- walk, or sort the matches when they are few and the walk would be long
  local walk_cost = math.min(walk_len, (offset + size) * walk_len / total)
  local pick_cost = 3 * total + (matches and 0 or sizes[smallest] or math.huge)
  local page = {total}
  if kinds > 0 and (strategy == 'pick' or (strategy == 'auto' and walk_cost > pick_cost)) then
    if not matches then matches = keep_all(gather(smallest), smallest) end
    local scores = sort_scores(matches)
    local order = {}
    for i = 1, #matches do order[i] = i end
    table.sort(order, function(x, y) return before(scores[x], matches[x], scores[y], matches[y]) end)
    for i = offset + 1, math.min(#order, offset + size) do page[#page + 1] = matches[order[i]] end
    return page
  end

  local checked = not (kinds == 0 or (kinds == 1 and ranged ~= nil))
  local skip = checked and offset or 0  -- matches still to skip before the page
  local jump = checked and 0 or offset  -- ranks to skip (nothing is filtered out)
  local chunk = math.min(CHUNK, math.max(32, math.ceil((skip + size) * walk_len / total * 1.25)))
  local pull
  if sort_by == 'startedAt' then
    pull = ranks(START, d_lo, d_hi, jump)
  elseif sort_by == 'endedAt' then
    pull = ranks(ENDED, 0, redis.call('ZCARD', ENDED) - 1, jump)
  else
    pull = durations(jump, jump + chunk)
  end
  while #page - 1 < size do
    local ids = pull(chunk)
    if #ids == 0 then break end
    if checked then ids = keep(ids, ranged) end
    for _, id in ipairs(ids) do
      if skip > 0 then
        skip = skip - 1
      else
        page[#page + 1] = id
        if #page - 1 == size then break end
      end
    end
    chunk = math.min(CHUNK, chunk * 2)
  end
  return page
end

local page = page_of()
if n_sets > 1 then redis.call('DEL', SCRATCH) end
return page
"""


# Ids read or checked per step; how a page is found: "auto" (cheaper of walking the sort index and sorting the
# matches), "walk" or "pick". Tests set small steps and each strategy to cover every path of the script.
CHUNK = 1000
STRATEGY = "auto"


def least_ms(min_duration: float) -> int:
    """The fewest whole milliseconds a conversation lasts to have a duration in seconds >= min_duration."""
    if min_duration <= 0:
        return 0
    if min_duration > 1e12:
        return 10**18
    ms = math.ceil(min_duration * 1000)
    while ms > 0 and (ms - 1) / 1000 >= min_duration:
        ms -= 1
    while ms / 1000 < min_duration:
        ms += 1
    return ms


def script_args(
    filters: m.ConversationFilter, offset: int, size: int, sort_by: str, desc: bool, now_ms: int
) -> list[str | int]:
    least = 0 if filters.min_duration is None else least_ms(filters.min_duration)
    return [
        sort_by,
        "1" if desc else "0",
        offset,
        size,
        "" if filters.date_from is None else str(to_ms(filters.date_from)),
        "" if filters.date_to is None else str(to_ms(filters.date_to)),
        "" if filters.min_duration is None else repr(float(filters.min_duration)),
        least,
        now_ms,
        str(least - now_ms),
        str(-now_ms),
        CHUNK,
        STRATEGY,
    ]


def filter_values(filters: m.ConversationFilter) -> list[tuple[str, str]]:
    """(index name, value) of the set filters: agentId, channel, status, direction, outcome, tags."""
    wanted = [("agentId", filters.agent_id), ("channel", filters.channel), ("status", filters.status),
              ("direction", filters.direction), ("outcome", filters.outcome)]
    return [(name, value) for name, value in wanted if value is not None] + [("tag", t) for t in dict.fromkeys(filters.tags)]


class PageScript:
    """The listing script registered on one client (EVALSHA, loaded again after a server restart)."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(LIST_PAGE)

    async def __call__(self, keys: list[str], args: list[str | int]) -> tuple[list[str], int]:
        """(the page's ids, total)."""
        reply: list[Any] = await self._script(keys=keys, args=args)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in reply[1:]]
        return ids, int(reply[0])
