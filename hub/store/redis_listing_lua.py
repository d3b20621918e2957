"""The first part of the Redis listing script (hub/store/redis_listing.py): its arguments, the filter checks,
the streams that walk an index in chunks in the requested order (sorted-set ranks, the merged duration order
of ended and open conversations) and the reading of a scratch bitmap's slots.
"""

from __future__ import annotations

# KEYS: 1 startedAt, 2 endedAt, 3 duration (ended, seconds), 4 open (-startedAtMs), 5 a scratch bitmap (deleted
#       before the script ends), 6 hash slot -> id, then the n filters' zsets (by startedAt), then their bitmaps
# ARGV: 1 sort field, 2 '1' desc, 3 offset, 4 size, 5 dateFrom ms or '', 6 dateTo ms or '',
#       7 minDuration seconds or '', 8 least ms lasting minDuration, 9 now ms, 10 open score floor for minDuration,
#       11 -now (open conversations scored at or below it have lasted 0 s), 12 ids per step, 13 strategy,
#       14 prefix of the tenant's bitmaps (per day, per duration bucket, open),
#       15 'ended' / 'open' / '': a status filter admits only ended (or only open) conversations
HELPERS = r"""
-- the only writes are to scratch keys deleted before the script ends: not sent to replicas or the AOF
redis.set_repl(redis.REPL_NONE)
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
local BITS = ARGV[14]  -- prefix of the tenant's bitmaps: day:{n}, dur:{lower bound}, open
local DAYS, SCRATCH_M, SCRATCH_D = BITS .. 'day:', SCRATCH .. ':m', SCRATCH .. ':d'
local LADDER = {@LADDER@}  -- lower bounds (seconds) of the duration buckets of ended conversations
local lifecycle = ARGV[15]  -- 'ended' or 'open' when the status filter admits only ended or only open ones
local DAY, MAX_DAYS = 86400000, 1000
local function fmt(n) return string.format('%d', n) end

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

-- whether the filters in `done` ({S = {[i] = true} or S_all, D, M}: what a source already guarantees) are all
-- of them; `done.span = {lo, hi}` asks instead for startedAt within [lo, hi]
local function set_done(done, i) return done.S_all or (done.S ~= nil and done.S[i]) end
local function covers(done)
  for i = 1, n_sets do if not set_done(done, i) then return false end end
  return (not has_date or done.D) and (not has_min or done.M)
end

-- the ids of `ids` the filters not in `done` accept, in order
local function keep(ids, done)
  if #ids == 0 then return ids end
  local ok = {}
  for i = 1, #ids do ok[i] = true end
  for k = 1, n_sets do
    if not set_done(done, k) then
      local found = redis.call('ZMSCORE', sets[k], unpack(ids))
      for i = 1, #ids do if not found[i] then ok[i] = false end end
    end
  end
  if (has_date and not done.D) or done.span then
    local lo, hi = from_n, to_n
    if done.span then lo, hi = done.span[1], done.span[2] end
    local starts = redis.call('ZMSCORE', START, unpack(ids))
    for i = 1, #ids do
      local s = starts[i] and tonumber(starts[i])
      if not s or s < lo or s > hi then ok[i] = false end
    end
  end
  if has_min and not done.M then
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

local function keep_all(ids, done)
  local out = {}
  for i = 1, #ids, CHUNK do
    local part = {}
    for j = i, math.min(#ids, i + CHUNK - 1) do part[#part + 1] = ids[j] end
    for _, id in ipairs(keep(part, done)) do out[#out + 1] = id end
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

-- the duration order (ended ones from the index, open ones by how long they have lasted so far), from
-- minDuration up when it applies, from position `pos` (only when nothing else filters: found by a binary
-- search of how many of the first `pos` are ended ones); `want`: how many the first read is likely to need
local function durations(pos, want)
  local n_dur, n_open = redis.call('ZCARD', DUR), redis.call('ZCARD', OPEN)
  -- ended: forward ranks [e_lo, e_hi] of the duration index; open: forward ranks [o_lo, n_open - 1] of the
  -- open index, and (without minDuration) those that have lasted 0 s, by id, first ascending, last descending
  local e_lo, e_hi = has_min and count_below(DUR, min_s) or 0, n_dur - 1
  local zero_ids, o_lo = {}, 0
  if has_min and least > 0 then
    o_lo = count_below(OPEN, open_floor)
  else
    o_lo = redis.call('ZCOUNT', OPEN, '-inf', neg_now)
    if o_lo > 0 then zero_ids = redis.call('ZRANGE', OPEN, 0, o_lo - 1) end
    table.sort(zero_ids, desc and id_gt or id_lt)
  end
  local n_e, n_lasting = math.max(0, e_hi - e_lo + 1), math.max(0, n_open - o_lo)
  if lifecycle == 'open' then n_e = 0 end
  if lifecycle == 'ended' then n_lasting, zero_ids = 0, {} end
  local n_zero = #zero_ids

  local function at_rank(key, rank)
    local got = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
    return got[1], tonumber(got[2])
  end
  local function ended_at(i)  -- (id, seconds) at position i (from 0) of the ended ones, in the walk direction
    if desc then return at_rank(DUR, e_hi - i) end
    return at_rank(DUR, e_lo + i)
  end
  local function open_at(j)
    if desc then
      if j < n_lasting then
        local id, s = at_rank(OPEN, n_open - 1 - j)
        return id, live_seconds(s)
      end
      return zero_ids[j - n_lasting + 1], 0
    end
    if j < n_zero then return zero_ids[j + 1], 0 end
    local id, s = at_rank(OPEN, o_lo + j - n_zero)
    return id, live_seconds(s)
  end
  local e_pos = 0
  if pos > 0 then
    local lo, hi = math.max(0, pos - n_lasting - n_zero), math.min(pos, n_e)
    while lo < hi do  -- the fewest ended ones among the first pos: ended[i] comes after open[pos - i - 1]
      local i = math.floor((lo + hi) / 2)
      local ei, es = ended_at(i)
      local oi, os = open_at(pos - i - 1)
      if before(es, ei, os, oi) then lo = i + 1 else hi = i end
    end
    e_pos = lo
  end
  local o_pos = pos - e_pos

  local function zeros_from(k)
    local ids, scores = {}, {}
    for x = k + 1, n_zero do
      ids[#ids + 1], scores[#scores + 1] = zero_ids[x], 0
    end
    return list_pull(ids, scores)
  end
  local function lasting_from(k)
    if n_lasting == 0 then return list_pull({}, {}) end
    return mapped(ranks(OPEN, o_lo, n_open - 1, k), function(s) return live_seconds(tonumber(s)) end)
  end
  local ended = list_pull({}, {})
  if n_e > 0 then ended = mapped(ranks(DUR, e_lo, e_hi, e_pos), tonumber) end
  local open
  if desc and o_pos < n_lasting then
    open = concat(lasting_from(o_pos), zeros_from(0))
  elseif desc then
    open = zeros_from(o_pos - n_lasting)
  elseif o_pos < n_zero then
    open = concat(zeros_from(o_pos), lasting_from(0))
  else
    open = lasting_from(o_pos - n_zero)
  end
  return merge(ended, open, math.max(16, math.min(CHUNK, want)))
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
"""
