-- Acquire one lock.
-- KEYS[1] lock key, KEYS[2] fencing counter of the lock's hash slot group
-- ARGV[1] owner token, ARGV[2] lease in milliseconds
-- Returns {1, fencing_token} when acquired, {0, holder's remaining lease in ms} when held.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  -- The token is max(last + 1, server clock in microseconds): it strictly
  -- increases while the counter lives, and keeps rising after a restart that
  -- lost the counter, as long as the server clock moved forward.
  local now = redis.call('TIME')
  local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  local token = last + 1
  if clock > token then
    token = clock
  end
  redis.call('SET', KEYS[2], string.format('%.0f', token))
  -- Below 2^53, so the integer reply is exact.
  return {1, token}
end
return {0, redis.call('PTTL', KEYS[1])}
