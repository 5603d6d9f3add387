-- The steps of a lock several owners may hold at once: a semaphore, whose
-- holders each take one of `capacity` permits, or a read-write lock, whose
-- readers weigh 1 and whose writer weighs the whole capacity. A holder fits
-- while the weights held add up to at most the capacity. Waiters queue in
-- arrival order, and a step that frees capacity hands it to the first of
-- them that fit, in order: a waiter that does not fit (a writer behind
-- readers) stops those behind it, so readers cannot starve a writer.
-- KEYS[1] holders: a sorted set of "<weight>:<owner>", scored by the server
-- time (ms) its lease ends; also the lock's channel
-- KEYS[2] the queue: waiting members, in arrival order
-- KEYS[3] places: member -> "<lease ms> <round> <server ms the place ends>"
-- KEYS[4] the fencing counter of the lock's group
-- KEYS[5] the capacity the lock was taken with, kept while it is in use
-- ARGV[1] the step: acquire | wait | release | leave | extend
-- ARGV[2] owner token; ARGV[3] weight; ARGV[4] capacity; ARGV[5] lease in
-- ms (acquire, wait, extend); ARGV[6] round (wait); ARGV[7] the publish
-- command: PUBLISH, or SPUBLISH on a cluster; ARGV[8] the counter's life:
-- 'day' (v2: named after the server run, see fence.lua) or 'forever' (v1:
-- the group's one counter, which acquire.lua keeps without expiry)
-- Returns, for acquire and wait: {1, fencing token} when the caller holds a
-- place among the holders (its lease runs from now), {0, ms until the first
-- holder's lease ends, or -1 when nobody holds it}; wait also takes or
-- refreshes the caller's place in the queue. For release, leave and extend:
-- 1 done, 0 the caller held nothing (its lease had run out). A waiter
-- granted a place learns it from one message on the channel,
-- "<owner> <fencing token> <round>", or from its next wait.
-- {fence.lua}
local holders, queue, places, fence, kept = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local step, owner = ARGV[1], ARGV[2]
local weight, capacity = tonumber(ARGV[3]), tonumber(ARGV[4])
local member = ARGV[3] .. ':' .. owner
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Leases that ran out free their weight.
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)

local function weight_of(m)
  return tonumber(string.match(m, '^(%d+):'))
end

local function held_weight()
  local total = 0
  for _, m in ipairs(redis.call('ZRANGE', holders, 0, -1)) do
    total = total + weight_of(m)
  end
  return total
end

-- Keeps `key` at least until server time `ends` (ms). (PTTL rather than
-- Redis 7's PEXPIRETIME: protocol v2 supports Redis 6.2.)
local function keep_until(key, ends)
  if redis.call('PTTL', key) < ends - now then
    redis.call('PEXPIRE', key, ends - now)
  end
end

-- `m` holds a lease of `ms` from now.
local function hold(m, ms)
  local ends = now + ms
  redis.call('ZADD', holders, ends, m)
  keep_until(holders, ends)
  redis.call('SET', kept, capacity, 'KEEPTTL')
  keep_until(kept, ends)
end

-- The next fencing token of the lock's group.
local function token()
  local next = next_token(fence)
  if ARGV[8] == 'forever' then
    redis.call('PERSIST', fence)
  end
  return next
end

-- Hands free capacity to the first waiters whose places are alive, in
-- order, dropping dead places on the way. Returns the token of the grant
-- to `me`, if it was one of them, and the weight held afterwards.
local function grant_waiting(me)
  local mine
  local held = held_weight()
  while true do
    local head = redis.call('LINDEX', queue, 0)
    if not head then
      return mine, held
    end
    local place = redis.call('HGET', places, head) or ''
    local ms, round, ends = string.match(place, '^(%d+) (%d+) (%d+)$')
    if ends and tonumber(ends) > now then
      if held + weight_of(head) > capacity then
        return mine, held
      end
      held = held + weight_of(head)
      hold(head, tonumber(ms))
      local granted = token()
      local who = string.sub(head, #string.match(head, '^%d+:') + 1)
      if who == me then
        mine = granted
      else
        -- A failed message (an ACL without channel rights) must not undo
        -- the grant: the waiter's next refresh finds it.
        local grant = who .. ' ' .. string.format('%.0f', granted) .. ' ' .. round
        pcall(redis.call, ARGV[7], holders, grant)
      end
    end
    redis.call('LPOP', queue)
    redis.call('HDEL', places, head)
  end
end

local function first_lease_ends()
  local first = redis.call('ZRANGE', holders, 0, 0, 'WITHSCORES')
  if first[2] then
    return tonumber(first[2]) - now
  end
  return -1
end

-- Every caller of one lock must ask for one capacity; the one in use
-- rules, and a lock nobody holds or waits for takes the caller's.
local in_use = redis.call('GET', kept)
local idle = redis.call('ZCARD', holders) == 0 and redis.call('LLEN', queue) == 0
if in_use and tonumber(in_use) ~= capacity then
  if (step == 'acquire' or step == 'wait') and not idle then
    return redis.error_reply('DISTLOCK_CAPACITY ' .. in_use)
  end
  if not idle then
    capacity = tonumber(in_use)
  end
end

if step == 'acquire' or step == 'wait' then
  local ms = tonumber(ARGV[5])
  if redis.call('ZSCORE', holders, member) then
    -- Granted from the queue before this attempt, unheard so far: the
    -- lease runs from now, and the caller gets a token of its own.
    hold(member, ms)
    return {1, token()}
  end
  local mine, held = grant_waiting(owner)
  if mine then
    return {1, mine}
  end
  if redis.call('LLEN', queue) == 0 and held + weight <= capacity then
    hold(member, ms)
    return {1, token()}
  end
  if step == 'wait' then
    -- In line; the place lives one lease unless refreshed, so a waiter that
    -- died holds up the others by at most one lease of its own.
    if not redis.call('LPOS', queue, member) then
      redis.call('RPUSH', queue, member)
    end
    redis.call('HSET', places, member, ms .. ' ' .. ARGV[6] .. ' ' .. (now + ms))
    keep_until(queue, now + ms + 1000)
    keep_until(places, now + ms + 1000)
    redis.call('SET', kept, capacity, 'KEEPTTL')
    keep_until(kept, now + ms + 1000)
  end
  return {0, first_lease_ends()}
end

if step == 'extend' then
  if redis.call('ZSCORE', holders, member) then
    hold(member, tonumber(ARGV[5]))
    return 1
  end
  return 0
end

-- release, leave: a leaving waiter also gives up its place.
if step == 'leave' then
  redis.call('LREM', queue, 0, member)
  redis.call('HDEL', places, member)
end
local released = redis.call('ZREM', holders, member)
grant_waiting(nil)
return released
