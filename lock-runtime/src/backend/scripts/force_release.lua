-- Free one lock whoever holds it (an operator's override), and wake its waiters.
-- KEYS[1] lock key, also the name of its wake-up channel
-- ARGV[1] the publish command: PUBLISH, or SPUBLISH on a cluster
-- Returns what was left of the lease, in milliseconds: -2 nobody held it,
-- -1 it had no expiry.
local left = redis.call('PTTL', KEYS[1])
if left ~= -2 then
  redis.call('DEL', KEYS[1])
  -- An empty message wakes every waiter of the channel, v1's and v2's alike;
  -- v2's queue then serves them in order. A failed wake-up (an ACL without
  -- channel rights) must not undo the release: waiters' timers cover it.
  pcall(redis.call, ARGV[1], KEYS[1], '')
end
return left
