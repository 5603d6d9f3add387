-- Re-arm the lease of one lock if the caller still owns it.
-- KEYS[1] lock key; ARGV[1] owner token, ARGV[2] new lease in milliseconds
-- Returns 1 extended, 0 the lease had expired (key gone), -1 another owner holds it.
local holder = redis.call('GET', KEYS[1])
-- Under protocol v2 a '+' after the token says someone waits (fence.lua).
if holder == ARGV[1] or holder == ARGV[1] .. '+' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return -1
end
return 0
