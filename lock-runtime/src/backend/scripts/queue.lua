-- (fence.lua comes first.) One attempt of a waiter: take the lock if it is
-- free and nobody alive waits ahead, else be (or stay) in its queue.
-- KEYS[1] lock key, also its channel; KEYS[2] its queue;
-- KEYS[3] fencing counter of this server run
-- ARGV[1] owner token; ARGV[2] lease in ms; ARGV[3] prefix of waiters'
-- entry keys; ARGV[4] the counter's life in ms; ARGV[5] the round: how
-- many attempts the waiter has made with this owner token
-- Returns {1, fencing token} when the caller holds the lock (its lease runs
-- from now), {0, holder's remaining lease in ms} when it waits in line.
local entry = ARGV[3] .. ARGV[1]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  -- A release handed the lock over before this attempt, and its message
  -- has not been seen: re-arm the lease from now, since the caller cannot
  -- know when it began, and give it a token of its own, above the grant's.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, next_token(KEYS[3], ARGV[4])}
end
if not holder then
  -- Free: the first live waiter has it, which may be the caller.
  local owner, token = grant_next(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[4], ARGV[1])
  if owner == ARGV[1] then
    return {1, token}
  end
  if not owner then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('DEL', entry)
    return {1, next_token(KEYS[3], ARGV[4])}
  end
end
-- Held: in line, behind those who came first. The entry lives one lease
-- unless refreshed, so a waiter that died delays the others by at most
-- one lease of its own; the queue outlives every live entry.
if not redis.call('LPOS', KEYS[2], ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
redis.call('SET', entry, ARGV[2] .. ' ' .. ARGV[5], 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + 1000)
return {0, redis.call('PTTL', KEYS[1])}
