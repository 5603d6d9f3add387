-- A waiter stops waiting: takes it out of the lock's queue, and releases
-- the lock, handing it on, if it was granted the lock without learning it
-- yet (or holds it: a give-back).
-- KEYS[1] lock key, also its channel
-- ARGV[1] owner token; ARGV[2] the server's run id
-- Returns 1 released, 0 not held (key gone), -1 another owner holds it.
-- {fence.lua}
local queue, waiters = lock_keys(KEYS[1], ARGV[2])
redis.call('LREM', queue, 0, ARGV[1])
redis.call('DEL', waiters .. ARGV[1])
return hand_on(KEYS[1], redis.call('GET', KEYS[1]), ARGV[1], ARGV[2])
