-- (fence.lua comes first.) Lifts a fencing counter that the uncontended
-- path's INCR found new (below the clock floor) to the server clock.
-- KEYS[1] fencing counter of this server run
-- ARGV[1] the counter's life in milliseconds
-- Returns the fencing token of the caller, who holds the lock.
return next_token(KEYS[1], ARGV[1])
