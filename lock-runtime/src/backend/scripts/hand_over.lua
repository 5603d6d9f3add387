-- (fence.lua comes first.) Release one lock if the caller still owns it,
-- handing it to the next live waiter in its queue, if any; with `leave`,
-- also takes the caller out of the queue (a waiter that stops waiting,
-- which may have been granted the lock without learning it yet).
-- KEYS[1] lock key, also its channel; KEYS[2] its queue;
-- KEYS[3] fencing counter of this server run
-- ARGV[1] owner token; ARGV[2] prefix of waiters' entry keys;
-- ARGV[3] the counter's life in ms; ARGV[4] 'leave' or 'release'
-- Returns 1 released, 0 the lease had expired (key gone),
-- -1 another owner holds it.
if ARGV[4] == 'leave' then
  redis.call('LREM', KEYS[2], 0, ARGV[1])
  redis.call('DEL', ARGV[2] .. ARGV[1])
end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return -1
end
if holder then
  redis.call('DEL', KEYS[1])
end
-- A free lock with waiters (ours, or one whose lease ran out) goes to the
-- first of them now rather than at their next refresh.
grant_next(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], nil)
if holder then
  return 1
end
return 0
