-- Release one lock if the caller still owns it, and wake its waiters.
-- KEYS[1] lock key, also the name of its wake-up channel
-- ARGV[1] owner token, ARGV[2] the publish command: PUBLISH, SPUBLISH on a
-- cluster, or '' to wake nobody (a Redlock contender giving back the votes
-- of an attempt that did not win: nobody waits for a lock it never held)
-- Returns 1 released, 0 the lease had expired (key gone), -1 another owner holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  -- A failed wake-up (say, an ACL without channel rights) must not turn a
  -- done release into an error: waiters' timers cover it.
  if ARGV[2] ~= '' then
    pcall(redis.call, ARGV[2], KEYS[1], '')
  end
  return 1
end
if holder then
  return -1
end
return 0
