-- A task takes over the lock that the previous holder in its process left
-- it, under the same owner token (a baton, see `local_queue.rs`): re-arms
-- the lease from now, as if acquired, and takes a fencing token above the
-- previous holder's.
-- KEYS[1] lock key
-- ARGV[1] owner token; ARGV[2] lease in ms; ARGV[3] the server's run id
-- Returns {1, fencing token}, or {0, -2} when the lease ran out meanwhile.
-- {fence.lua}
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] and holder ~= ARGV[1] .. WAITED then
  return {0, -2}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local _, _, fence = lock_keys(KEYS[1], ARGV[3])
return {1, next_token(fence)}
