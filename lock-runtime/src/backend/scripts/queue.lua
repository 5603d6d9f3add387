-- One attempt of a waiter: take the lock if it is free and nobody alive
-- waits ahead, else be (or stay) in its queue.
-- KEYS[1] lock key, also its channel
-- ARGV[1] owner token; ARGV[2] lease in ms; ARGV[3] the server's run id;
-- ARGV[4] the round: how many attempts the waiter has made with this
-- owner token
-- Returns {1, fencing token} when the caller holds the lock (its lease runs
-- from now), {0, holder's remaining lease in ms} when it waits in line.
-- {fence.lua}
local queue, waiters, fence = lock_keys(KEYS[1], ARGV[3])
local entry = waiters .. ARGV[1]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or holder == ARGV[1] .. WAITED then
  -- A release handed the lock over before this attempt, and its message
  -- has not been seen: re-arm the lease from now, since the caller cannot
  -- know when it began, and give it a token of its own, above the grant's.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, next_token(fence)}
end
if not holder then
  -- Free: the first live waiter has it, which may be the caller.
  local owner, token = grant_next(KEYS[1], queue, fence, waiters, ARGV[1])
  if owner == ARGV[1] then
    return {1, token}
  end
  if not owner then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('DEL', entry)
    return {1, next_token(fence)}
  end
  holder = redis.call('GET', KEYS[1])
end
-- Held: in line, behind those who came first, and the holder's release
-- told so. The entry lives one lease unless refreshed, so a waiter that
-- died delays the others by at most one lease of its own; the queue
-- outlives every live entry.
if not redis.call('LPOS', queue, ARGV[1]) then
  redis.call('RPUSH', queue, ARGV[1])
end
if string.sub(holder, -#WAITED) ~= WAITED then
  redis.call('SET', KEYS[1], holder .. WAITED, 'KEEPTTL')
end
redis.call('SET', entry, ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[2])
redis.call('PEXPIRE', queue, tonumber(ARGV[2]) + 1000)
return {0, redis.call('PTTL', KEYS[1])}
