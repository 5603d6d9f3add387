-- Acquire one lock.
-- KEYS[1] lock key, KEYS[2] fencing counter of the lock's group
-- ARGV[1] owner token, ARGV[2] lease in milliseconds
-- Returns {1, fencing_token} when acquired, {0, holder's remaining lease in ms} when held.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  if token == 1 then
    -- The counter was missing: first use of the group, or Redis lost its
    -- data. Start from the server clock in microseconds, so tokens keep
    -- rising across a restart that lost the counter.
    local now = redis.call('TIME')
    token = tonumber(now[1]) * 1000000 + tonumber(now[2])
    redis.call('SET', KEYS[2], string.format('%.0f', token))
  end
  -- Below 2^53, so the integer reply is exact.
  return {1, token}
end
return {0, redis.call('PTTL', KEYS[1])}
