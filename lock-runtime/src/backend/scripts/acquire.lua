-- Acquire one lock.
-- KEYS[1] lock key, KEYS[2] fencing counter of the lock's group
-- ARGV[1] owner token, ARGV[2] lease in milliseconds
-- Returns {1, fencing_token, ''} when acquired,
-- {0, holder's remaining lease in ms, holder id or ''} when held.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  -- max(last + 1, server clock in microseconds): strictly increasing while
  -- the counter lives, and still rising after Redis lost the counter or came
  -- back with an older copy of it, as long as its clock moved forward.
  local now = redis.call('TIME')
  local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local token = (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) + 1
  if clock > token then
    token = clock
  end
  redis.call('SET', KEYS[2], string.format('%.0f', token))
  -- Below 2^53, so the integer reply is exact.
  return {1, token, ''}
end
-- The holder id tells holders apart (Redlock counts who holds which node)
-- without handing out their owner tokens: 64 bits of the token's SHA-1.
local holder = redis.call('GET', KEYS[1])
local id = holder and string.sub(redis.sha1hex(holder), 1, 16) or ''
return {0, redis.call('PTTL', KEYS[1]), id}
