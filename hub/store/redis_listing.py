"""One page of a tenant's conversations from the Redis store's indices, in one Lua script (one round trip).

It walks an index in the requested direction, in chunks, keeps what the filters accept (ZMSCORE on the
filters' zsets and on the startedAt / duration / open indices) and stops as soon as the page is full. The
index walked: for startedAt, the zset of the filter value with the fewest conversations in the date range
(each value's zset is scored by startedAt), else startedAt's date range; for durationSeconds, the durations
from minDuration up; else the whole sort index. The total is known before the walk, from a source that
alone is the whole selection, counted in O(log n) or with bitmaps:
  - no filter: ZCARD;
  - one filter value, with or without a date range: ZCOUNT of that value's zset;
  - several filter values without a date range: BITCOUNT of the AND of their bitmaps (BITOP AND into a
    scratch key deleted before the script ends: word-wide, where SINTERCARD would look up every member);
  - several filter values and a date range: the same AND with the OR of the bitmaps of the range's whole
    UTC days (each conversation is in the bitmap of the day it started), plus the conversations of a day the
    range cuts (a timestamp bound), read from startedAt and checked;
  - minDuration with filter values and/or a date range: the values' AND (and the whole days' OR) with the
    OR of the duration-bucket bitmaps from minDuration up and with the open bitmap, plus the bucket
    minDuration cuts, less the open ones not lasting long enough yet, plus the days the range cuts (each
    read and checked);
  - a date range alone: ZCOUNT of startedAt; minDuration alone: ZCOUNT of the durations plus the open
    conversations lasting long enough;
otherwise (a range past 1000 days, or cut days / a cut bucket holding more than the smallest source) the
smallest source is read (a value's zset in the date range, the AND bitmap's slots, the date range, or the
durations from minDuration up) and checked against the other filters: O(that source). A status filter
skips the open (or the ended) conversations of endedAt and duration walks. When few conversations match and
the walk would be long (a deep page of a rare selection), or the walk turns out longer than that, the first
offset + size matches are taken with a heap instead. A deep page of the duration order starts by a binary
search of how many ended conversations come first.

The open index scores an in-progress conversation by -startedAtMs, so its rank order is the order of the
duration so far (ties by id, as in a sorted set); the ones started at or after `now` (duration 0) are
ordered by id. Ties are broken by id in the direction of the sort, exactly as the memory store does.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from redis.asyncio import Redis

from hub.store import models as m
from hub.store.redis_listing_lua import HELPERS
from hub.store.timefmt import to_ms

LIST_PAGE = HELPERS + r"""
local function page_of()
  local n_all = redis.call('ZCARD', START)
  -- the date filter as a rank range of startedAt, and of each filter's zset (also by startedAt)
  local function date_ranks(key, n)
    if not has_date then return 0, n - 1 end
    local lo = ARGV[5] ~= '' and count_below(key, from_s) or 0
    return lo, redis.call('ZCOUNT', key, '-inf', to_s) - 1
  end
  local function rank_ids(key, lo, hi)
    if hi < lo then return {} end
    return redis.call('ZRANGE', key, lo, hi)
  end
  local d_lo, d_hi = date_ranks(START, n_all)
  local s_lo, s_hi = {}, {}
  local best = nil  -- the filter with the fewest conversations in the date range
  for i = 1, n_sets do
    s_lo[i], s_hi[i] = date_ranks(sets[i], redis.call('ZCARD', sets[i]))
    if best == nil or s_hi[i] - s_lo[i] < s_hi[best] - s_lo[best] then best = i end
  end

  -- several values and a date range: the range's whole UTC days ORed from the day bitmaps and ANDed with the
  -- values' bitmaps; the part of a day the range cuts is read from startedAt and checked. Not when the range
  -- spans over MAX_DAYS days or its cut days hold more than the best value's zset in the range.
  -- the date range as whole UTC days [full_lo, full_hi] and the cut parts of its first and last day (startedAt
  -- score ranges) with how many they hold; nil past MAX_DAYS days. `days`: the whole days' bitmap keys.
  local function day_split()
    if n_all == 0 then return {full_lo = 1, full_hi = 0, parts = {}, cut = 0, days = {}} end
    local first = tonumber(redis.call('ZRANGE', START, 0, 0, 'WITHSCORES')[2])
    local last = tonumber(redis.call('ZRANGE', START, -1, -1, 'WITHSCORES')[2])
    local lo_day, hi_day = math.floor(math.max(from_n, first) / DAY), math.floor(math.min(to_n, last) / DAY)
    local parts, full_lo, full_hi = {}, lo_day, hi_day
    if hi_day >= lo_day and lo_day * DAY < from_n then
      parts[#parts + 1] = {from_n, math.min(to_n, lo_day * DAY + DAY - 1)}
      full_lo = lo_day + 1
    end
    if hi_day >= full_lo and hi_day * DAY + DAY - 1 > to_n then
      parts[#parts + 1] = {math.max(from_n, hi_day * DAY), to_n}
      full_hi = hi_day - 1
    end
    if full_hi - full_lo + 1 > MAX_DAYS then return nil end
    local cut = 0
    for _, part in ipairs(parts) do cut = cut + redis.call('ZCOUNT', START, fmt(part[1]), fmt(part[2])) end
    local days = {}
    for d = full_lo, full_hi do days[#days + 1] = DAYS .. fmt(d) end
    return {full_lo = full_lo, full_hi = full_hi, parts = parts, cut = cut, days = days}
  end
  local function cut_day_ids(split, done)
    local out = {}
    for _, part in ipairs(split.parts) do
      local ids = redis.call('ZRANGE', START, fmt(part[1]), fmt(part[2]), 'BYSCORE')
      for _, id in ipairs(keep_all(ids, done)) do out[#out + 1] = id end
    end
    return out
  end

  local function day_source()
    local split = day_split()
    if split == nil then return nil end
    if strategy == 'auto' and split.cut > s_hi[best] - s_lo[best] + 1 then return nil end  -- (tests force this path)
    local days = split.days
    local size = 0
    if #days > 0 then
      redis.call('BITOP', 'OR', SCRATCH, unpack(days))
      redis.call('BITOP', 'AND', SCRATCH, SCRATCH, unpack(bitmaps))
      size = redis.call('BITCOUNT', SCRATCH)
    end
    local cut_ids = cut_day_ids(split, {D = true, M = true})
    return {size = size + #cut_ids, done = {S_all = true, D = true}, read = function()
      local ids = #days > 0 and scratch_ids() or {}
      for _, id in ipairs(cut_ids) do ids[#ids + 1] = id end
      return ids
    end}
  end

  -- the sources a selection can be read from: {size, what it guarantees, how to read it}
  local sources = {}
  local by_day = n_sets > 1 and has_date and day_source()
  if by_day then
    sources[#sources + 1] = by_day
  elseif n_sets == 1 or (n_sets > 1 and has_date) then
    sources[#sources + 1] = {size = math.max(0, s_hi[best] - s_lo[best] + 1), done = {S = {[best] = true}, D = true},
                             read = function() return rank_ids(sets[best], s_lo[best], s_hi[best]) end}
  elseif n_sets > 1 then
    redis.call('BITOP', 'AND', SCRATCH, unpack(bitmaps))
    sources[#sources + 1] = {size = redis.call('BITCOUNT', SCRATCH), done = {S_all = true}, read = scratch_ids}
  elseif has_date then
    sources[#sources + 1] = {size = math.max(0, d_hi - d_lo + 1), done = {D = true},
                             read = function() return rank_ids(START, d_lo, d_hi) end}
  end
  local m_size = 0
  if has_min then
    local open_count
    if least > 0 then open_count = redis.call('ZCOUNT', OPEN, open_floor, '+inf') else open_count = redis.call('ZCARD', OPEN) end
    m_size = redis.call('ZCOUNT', DUR, min_s, '+inf') + open_count
    sources[#sources + 1] = {size = m_size, done = {M = true}, read = function()
      local ids = redis.call('ZRANGE', DUR, min_s, '+inf', 'BYSCORE')
      local open_ids
      if least > 0 then
        open_ids = redis.call('ZRANGE', OPEN, open_floor, '+inf', 'BYSCORE')
      else
        open_ids = redis.call('ZRANGE', OPEN, 0, -1)
      end
      for _, id in ipairs(open_ids) do ids[#ids + 1] = id end
      return ids
    end}
  end
  local reader = nil  -- the smallest source that can be read
  for _, source in ipairs(sources) do
    if reader == nil or source.size < reader.size then reader = source end
  end

  -- minDuration with filter values and/or a date range: counted with bitmaps, not read. On the range's whole
  -- days (or everywhere without one), within the values: ended conversations sit in the bitmap of their
  -- duration's bucket: the buckets from minDuration up are ORed and ANDed with the values' bitmaps and the
  -- days', and the bucket minDuration cuts is read from the duration index and checked; open ones: the same
  -- AND with the open bitmap, less those not lasting long enough yet (read from the open index and checked).
  -- The days the range cuts are read from startedAt and checked. Not when the reads would be longer than
  -- reading the smallest source.
  local function min_bits_source()
    local split = nil
    if has_date then
      split = day_split()
      if split == nil then return nil end
    end
    local upper, cut = nil, min_n > 0
    for _, b in ipairs(LADDER) do
      if b == min_n then cut = false end
      if upper == nil and b > min_n then upper = b end
    end
    local cut_hi = upper and ('(' .. fmt(upper)) or '+inf'
    local cut_n, early_n = 0, 0
    if cut then cut_n = redis.call('ZCOUNT', DUR, min_s, cut_hi) end
    if least > 0 then early_n = redis.call('ZCOUNT', OPEN, '-inf', '(' .. open_floor) end
    local reads = cut_n + early_n + (split and split.cut or 0)
    if strategy == 'auto' and reader and reads > reader.size then return nil end
    local domain, span = {}, nil  -- the bitmaps to AND with, and the whole days' startedAt span
    for _, key in ipairs(bitmaps) do domain[#domain + 1] = key end
    if split and #split.days > 0 then
      redis.call('BITOP', 'OR', SCRATCH_D, unpack(split.days))
      domain[#domain + 1] = SCRATCH_D
      span = {split.full_lo * DAY, split.full_hi * DAY + DAY - 1}
    end
    local count = 0
    if split == nil or span ~= nil then
      local full = {}
      for _, b in ipairs(LADDER) do if b >= min_n then full[#full + 1] = BITS .. 'dur:' .. fmt(b) end end
      if #full > 0 then
        redis.call('BITOP', 'OR', SCRATCH_M, unpack(full))
        redis.call('BITOP', 'AND', SCRATCH_M, SCRATCH_M, unpack(domain))
        count = redis.call('BITCOUNT', SCRATCH_M)
      end
      redis.call('BITOP', 'AND', SCRATCH_M, BITS .. 'open', unpack(domain))
      count = count + redis.call('BITCOUNT', SCRATCH_M)
      local within = {D = true, M = true, span = span}
      if cut_n > 0 then count = count + #keep_all(redis.call('ZRANGE', DUR, min_s, cut_hi, 'BYSCORE'), within) end
      if early_n > 0 then
        count = count - #keep_all(redis.call('ZRANGE', OPEN, '-inf', '(' .. open_floor, 'BYSCORE'), within)
      end
    end
    if split then count = count + #cut_day_ids(split, {D = true}) end
    return {size = count, done = {S_all = true, D = true, M = true}}
  end
  local smallest = reader
  if has_min and (n_sets > 0 or has_date) then
    local counted = min_bits_source()
    if counted and (strategy ~= 'auto' or smallest == nil or counted.size <= smallest.size) then smallest = counted end
  end

  -- the total: a source's size when it alone is the whole selection, else the smallest source read and checked
  local total, matches
  if smallest == nil then
    total = n_all
  elseif covers(smallest.done) then
    total = smallest.size
  else
    matches = keep_all(reader.read(), reader.done)
    total = #matches
  end
  if total == 0 or offset >= total then return {total} end

  -- what the page is read from: a filter's zset (startedAt order), startedAt in the date range, the durations
  -- from minDuration up, or the whole sort index
  local walk_len, walk_done = n_all, {}
  if sort_by == 'startedAt' and n_sets > 0 then
    walk_len, walk_done = s_hi[best] - s_lo[best] + 1, {S = {[best] = true}, D = true}
  elseif sort_by == 'startedAt' then
    walk_len, walk_done = d_hi - d_lo + 1, {D = true}
  elseif sort_by == 'durationSeconds' and has_min then
    walk_len, walk_done = m_size, {M = true}
  end

  -- the page from the matches: the first offset + size of them kept in a heap (the root comes last), sorted
  local function pick()
    if not matches then matches = keep_all(reader.read(), reader.done) end
    local scores = sort_scores(matches)
    local function later(x, y) return before(scores[y], matches[y], scores[x], matches[x]) end
    local heap, k = {}, math.min(#matches, offset + size)
    for i = 1, #matches do
      local pos
      if #heap < k then
        heap[#heap + 1] = i
        pos = #heap
        while pos > 1 and later(heap[pos], heap[math.floor(pos / 2)]) do
          local up = math.floor(pos / 2)
          heap[pos], heap[up] = heap[up], heap[pos]
          pos = up
        end
      elseif later(heap[1], i) then
        heap[1], pos = i, 1
        while true do
          local l, r, top = 2 * pos, 2 * pos + 1, pos
          if l <= k and later(heap[l], heap[top]) then top = l end
          if r <= k and later(heap[r], heap[top]) then top = r end
          if top == pos then break end
          heap[pos], heap[top] = heap[top], heap[pos]
          pos = top
        end
      end
    end
    table.sort(heap, function(x, y) return before(scores[x], matches[x], scores[y], matches[y]) end)
    local page = {total}
    for i = offset + 1, #heap do page[#page + 1] = matches[heap[i]] end
    return page
  end

  -- walk it, or pick from the matches when they are few and the walk would be long (also when the walk
  -- turns out longer than picking would have cost: the matches are not spread evenly)
  local walk_cost = math.min(walk_len, (offset + size) * walk_len / total)
  local pick_cost = 3 * total + (matches and 0 or (reader and reader.size) or math.huge)
  if reader and (strategy == 'pick' or (strategy == 'auto' and walk_cost > pick_cost)) then return pick() end
  local page = {total}

  local checked = not covers(walk_done)
  local skip = checked and offset or 0  -- matches still to skip before the page
  local jump = checked and 0 or offset  -- ranks to skip (nothing is filtered out)
  local chunk = math.min(CHUNK, math.max(32, math.ceil((skip + size) * walk_len / total * 1.25)))
  local pull
  if sort_by == 'startedAt' and n_sets > 0 then
    pull = ranks(sets[best], s_lo[best], s_hi[best], jump)
  elseif sort_by == 'startedAt' then
    pull = ranks(START, d_lo, d_hi, jump)
  elseif sort_by == 'endedAt' then  -- the open ones are the last ranks (+inf)
    local n_ended, n_ranked = redis.call('ZCARD', DUR), redis.call('ZCARD', ENDED)
    local lo, hi = 0, n_ranked - 1
    if lifecycle == 'ended' then hi = n_ended - 1 elseif lifecycle == 'open' then lo = n_ended end
    pull = ranks(ENDED, lo, hi, jump)
  else
    pull = durations(jump, jump + chunk)
  end
  local walked = 0
  while #page - 1 < size do
    if reader and ((strategy == 'auto' and walked > walk_cost + pick_cost) or (strategy == 'switch' and walked > 0)) then
      return pick()
    end
    local ids = pull(chunk)
    if #ids == 0 then break end
    walked = walked + #ids
    if checked then ids = keep(ids, walk_done) end
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
if has_min and (n_sets > 0 or has_date) then redis.call('DEL', SCRATCH_M, SCRATCH_D) end
return page
"""


# Ids read or checked per step; how a page is found: "auto" (cheaper of walking the sort index and sorting the
# matches), "walk", "pick" or "switch" (walk one step, then pick) (these three also always use the day bitmaps
# when they can). Tests set small steps and each strategy to cover every path of the script.
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


DAY_MS = 86_400_000
# Lower bounds (seconds) of the buckets an ended conversation's duration falls in (its bitmap `dur:{bound}`).
DURATION_LADDER = (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 90, 120, 150, 180, 240, 300, 360, 420,
                   480, 600, 720, 900, 1200, 1500, 1800, 2400, 3000, 3600, 4500, 5400, 7200, 10800, 14400, 21600, 28800,
                   43200, 86400, 172800, 604800)
LIST_PAGE = LIST_PAGE.replace("@LADDER@", ", ".join(map(str, DURATION_LADDER)))


def duration_bucket(seconds: float) -> int:
    """The lower bound of the ladder's bucket holding a duration (>= 0)."""
    return DURATION_LADDER[max(0, bisect.bisect_right(DURATION_LADDER, seconds) - 1)]


def script_args(
    filters: m.ConversationFilter, offset: int, size: int, sort_by: str, desc: bool, now_ms: int, bits_prefix: str
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
        bits_prefix,
        "" if filters.status is None else "open" if filters.status == "in_progress" else "ended",
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
