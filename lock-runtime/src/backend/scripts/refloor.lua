-- Lifts a fencing counter that the uncontended path's INCRBY found new
-- (below the clock floor) to the server clock.
-- KEYS[1] fencing counter of this server run
-- Returns the fencing token of the caller, who holds the lock.
-- {fence.lua}
return next_token(KEYS[1])
