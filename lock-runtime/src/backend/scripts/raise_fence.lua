-- Lift a fencing counter to at least the token of a lock over several keys,
-- so that every token the counter's group hands out later is above it.
-- KEYS[1] fencing counter of one of the lock's keys
-- ARGV[1] the lock's token, ARGV[2] how long the counter lives after a
-- change, in milliseconds (protocol v2), or '' for ever (protocol v1)
-- Returns 1 when it set the counter, 0 when it was at the token or above.
local last = redis.call('GET', KEYS[1])
local token = tonumber(ARGV[1])
if last then
  if tonumber(last) >= token then
    return 0
  end
else
  -- A counter that is gone (new server run, expired, lost) starts where
  -- every counter starts: at least the server clock in microseconds, which
  -- is above the tokens other keys of the group had before.
  local now = redis.call('TIME')
  local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
  if clock > token then
    token = clock
  end
end
local value = string.format('%.0f', token)
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], value)
else
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
end
return 1
