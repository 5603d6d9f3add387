-- An operator's steps on a lock of a shared kind (see shared.lua): look at
-- it, or free it whoever holds it and wake its waiters. Reads no owner
-- token back.
-- KEYS[1] holders (also the channel), KEYS[2] the queue, KEYS[3] the
-- fencing counter of the lock's group
-- ARGV[1] inspect | force; ARGV[2] (force) the publish command: PUBLISH,
-- or SPUBLISH on a cluster
-- Returns {holders whose lease runs, ms until the last of those leases
-- ends or -2 when none runs, the fencing counter or -1, waiters in line}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local holders = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local left = -2
if holders > 0 then
  left = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]) - now
end
local counter = tonumber(redis.call('GET', KEYS[3]) or '-1') or -1
local waiters = redis.call('LLEN', KEYS[2])
if ARGV[1] == 'force' and holders > 0 then
  redis.call('DEL', KEYS[1])
  -- An empty message wakes every waiter, whose next attempt serves the
  -- first in line. A failed wake-up must not undo the release: waiters'
  -- timers cover it.
  pcall(redis.call, ARGV[2], KEYS[1], '')
end
return {holders, left, counter, waiters}
