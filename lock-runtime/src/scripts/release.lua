-- Release one lock if the caller still owns it, and wake its waiters.
-- KEYS[1] lock key; ARGV[1] owner token, ARGV[2] wake-up channel
-- Returns 1 released, 0 the lease had expired (key gone), -1 another owner holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '')
  return 1
end
if holder then
  return -1
end
return 0
