-- Prepended to every v2 script that hands out fencing tokens, so that the
-- rule has one home.
--
-- next_token(fence, life): the next fencing token of counter `fence`,
-- stored back with `life` milliseconds to live: one above the last, and at
-- least the server clock in microseconds. So a counter that is new (first
-- use, expired, lost with Redis's data, or named after a new server run)
-- still starts above every token handed out before, as long as the clock
-- moved forward; the plain INCR of the uncontended path then counts on from
-- here.
local function next_token(fence, life)
  local now = redis.call('TIME')
  local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local token = (tonumber(redis.call('GET', fence) or '0') or 0) + 1
  if clock > token then
    token = clock
  end
  -- Below 2^53, so the float is exact and so is the integer reply.
  redis.call('SET', fence, string.format('%.0f', token), 'PX', life)
  return token
end

-- grant_next(lease, queue, fence, waiters, life, me): hands the free lock
-- to the first waiter in `queue` whose entry is alive (its key
-- `waiters .. owner`, holding "<lease in ms> <round>", has not expired),
-- dropping dead entries on the way. The new holder learns it from one
-- message on the lock's channel, "<owner> <fencing token> <round>", unless
-- it is `me`, the caller, who learns it from the reply. The round is that
-- of the waiter's last attempt before the grant, whose send time its
-- validity runs from. Returns the new holder and its token, or nil when
-- nobody alive waits.
local function grant_next(lease, queue, fence, waiters, life, me)
  while true do
    local owner = redis.call('LPOP', queue)
    if not owner then
      return nil, nil
    end
    local entry = redis.call('GET', waiters .. owner)
    if entry then
      local ms, round = string.match(entry, '^(%d+) (%d+)$')
      redis.call('DEL', waiters .. owner)
      redis.call('SET', lease, owner, 'PX', ms)
      local token = next_token(fence, life)
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

