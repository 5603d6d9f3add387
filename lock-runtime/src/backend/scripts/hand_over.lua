-- Release one lock if the caller still owns it, handing it to the first
-- live waiter in its queue, if any.
-- KEYS[1] lock key, also its channel
-- ARGV[1] owner token; ARGV[2] the server's run id
-- Returns 1 released, 0 the lease had expired (key gone), -1 another owner
-- holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  -- Held and nobody waits: the uncontended path ends here, as the seed
  -- protocol's compare-and-delete.
  redis.call('DEL', KEYS[1])
  return 1
end
-- {fence.lua}
-- Marked as waited for, or gone: a free lock with waiters (ours, or one
-- whose lease ran out) goes to the first of them now rather than at their
-- next refresh.
return hand_on(KEYS[1], holder, ARGV[1], ARGV[2])
