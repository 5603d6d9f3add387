-- The rules protocol v2's scripts share, spliced into each of them where it
-- says "-- {fence.lua}", after its fast path: Lua runs these definitions
-- only when a script gets that far.

-- How long a fencing counter lives after its last token from here. A new
-- counter starts at the clock, above every earlier token as long as the
-- counter never ran ahead of the clock: it does not unless its group granted
-- more than once per 9 µs on average since its last lift (each grant takes
-- 9). A day keeps the counters of past server runs from piling up.
local COUNTER_LIFE_MS = 86400000

-- A lease's value is its holder's owner token, followed by WAITED when
-- someone waits in its queue: so a release whose lease holds the bare token
-- knows, from the GET it makes anyway, that nobody waits. (Owner tokens are
-- uuids, which never hold '+'.)
local WAITED = '+'

-- Every grant reserves a block of this many fencing tokens: the holder
-- uses the first, and the tasks of its process it passes the lock to (see
-- `local_queue.rs`) the others. `TOKEN_BLOCK` in `protocol.rs` is the same.
local TOKEN_BLOCK = 9

-- next_token(fence): the first of the next block of fencing tokens of
-- counter `fence`, whose last is stored back with COUNTER_LIFE_MS to live:
-- one above the last, and at least the server clock in microseconds. So a
-- counter that is new (first use, expired, lost with Redis's data, or named
-- after a new server run) still starts above every token handed out before,
-- as long as the clock moved forward; the plain INCRBY of the uncontended
-- path then counts on from here.
local function next_token(fence)
  local now = redis.call('TIME')
  local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local token = (tonumber(redis.call('GET', fence) or '0') or 0) + 1
  if clock > token then
    token = clock
  end
  -- Below 2^53, so the floats are exact and so is the integer reply.
  local last = string.format('%.0f', token + TOKEN_BLOCK - 1)
  redis.call('SET', fence, last, 'PX', COUNTER_LIFE_MS)
  return token
end

-- grant_next(lease, queue, fence, waiters, me): hands the free lock to the
-- first waiter in `queue` whose entry is alive (its key `waiters .. owner`,
-- holding "<lease in ms> <round>", has not expired), dropping dead entries
-- on the way. The new holder learns it from one message on the lock's
-- channel, "<owner> <fencing token> <round>", unless it is `me`, the
-- caller, who learns it from the reply. The round is that of the waiter's
-- last attempt before the grant, whose send time its validity runs from.
-- Returns the new holder and its token, or nil when nobody alive waits.
local function grant_next(lease, queue, fence, waiters, me)
  while true do
    local owner = redis.call('LPOP', queue)
    if not owner then
      return nil, nil
    end
    local entry = redis.call('GET', waiters .. owner)
    if entry then
      local ms, round = string.match(entry, '^(%d+) (%d+)$')
      redis.call('DEL', waiters .. owner)
      local value = owner
      if redis.call('LLEN', queue) > 0 then
        value = owner .. WAITED
      end
      redis.call('SET', lease, value, 'PX', ms)
      local token = next_token(fence)
      if owner ~= me then
        local grant = owner .. ' ' .. string.format('%.0f', token) .. ' ' .. round
        -- A failed message (say, an ACL without channel rights) must not
        -- turn a done hand-over into an error: the waiter's next refresh
        -- finds the lock its own.
        pcall(redis.call, 'PUBLISH', lease, grant)
      end
      return owner, token
    end
  end
end

-- The keys of the lock whose lease is `lease`, "P{G}:lock:K": its queue
-- "P{G}:queue:K", the prefix of its waiters' entries "P{G}:waiter:", and
-- its fencing counter for server run `run`, "P{G}:fence:<run>". They share
-- the lease's slot; protocol v2 runs on one server only, where a script
-- may name keys it was not given.
local function lock_keys(lease, run)
  local tagged = string.match(lease, '^[^}]*}')
  local key = string.sub(lease, #tagged + #':lock:' + 1)
  return tagged .. ':queue:' .. key, tagged .. ':waiter:', tagged .. ':fence:' .. run
end

-- hand_on(lease, holder, owner, run): the release of a lock whose lease
-- holds `holder` (read by the caller), by `owner`, on server run `run`:
-- owner-checked; if the lock is free now (released, or its lease ran out)
-- the first live waiter gets it. Returns 1 released, 0 the lease had
-- expired (key gone), -1 another owner holds it.
local function hand_on(lease, holder, owner, run)
  if holder and holder ~= owner and holder ~= owner .. WAITED then
    return -1
  end
  if holder then
    redis.call('DEL', lease)
  end
  local queue, waiters, fence = lock_keys(lease, run)
  grant_next(lease, queue, fence, waiters, nil)
  if holder then
    return 1
  end
  return 0
end
