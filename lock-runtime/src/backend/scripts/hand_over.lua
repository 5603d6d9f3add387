-- Release one lock if the caller still owns it, handing it to the first
-- live waiter in its queue, if any; with `leave`, also takes the caller
-- out of the queue (a waiter that stops waiting, which may have been
-- granted the lock without learning it yet).
-- KEYS[1] lock key, also its channel
-- ARGV[1] owner token; ARGV[2] the server's run id; ARGV[3] 'leave' or
-- 'release'
-- Returns 1 released, 0 the lease had expired (key gone), -1 another owner
-- holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  -- Held and nobody waits: the uncontended path ends here.
  redis.call('DEL', KEYS[1])
  return 1
end
-- {fence.lua}
local queue, waiters, fence = lock_keys(KEYS[1], ARGV[2])
if ARGV[3] == 'leave' then
  redis.call('LREM', queue, 0, ARGV[1])
  redis.call('DEL', waiters .. ARGV[1])
end
if holder and holder ~= ARGV[1] .. WAITED then
  return -1
end
if holder then
  redis.call('DEL', KEYS[1])
end
-- A free lock with waiters (ours, or one whose lease ran out) goes to the
-- first of them now rather than at their next refresh.
grant_next(KEYS[1], queue, fence, waiters, nil)
if holder then
  return 1
end
return 0
