-- Lift a fencing counter to at least the token of a lock over several keys,
-- so that every token the counter's group hands out later is above it.
-- KEYS[1] fencing counter of one of the lock's keys
-- ARGV[1] the lock's token, ARGV[2] how long the counter lives after a
-- change, in milliseconds (protocol v2), or '' for ever (protocol v1)
-- Returns 1 when it lifted the counter, 0 when it was at the token or above.
local last = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if last >= tonumber(ARGV[1]) then
  return 0
end
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
