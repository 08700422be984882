-- Record an agent's completion of a job that already ended without it (cancelled or timed out
-- while it ran): the job keeps its outcome, the token stops working.
-- KEYS[1] job hash
-- ARGV[1] sha256 of the job token  ARGV[2] now (ms)  ARGV[3] the outcome the agent reports
-- returns {1} recorded; {0, status} the job is still running (transition it instead);
-- {-1} no such job; {-2} not the job's current token; {-3, outcome} completed before;
-- {-4} the lease is over
local f = redis.call('HMGET', KEYS[1], 'status', '_token', '_lease_until', '_completed')
if not f[1] then
  return {-1}
end
if f[2] ~= ARGV[1] then
  return {-2}
end
if f[4] then
  return {-3, f[4]}
end
if f[1] == 'running' then
  return {0, f[1]}
end
if tonumber(f[3] or '0') <= tonumber(ARGV[2]) then
  return {-4}
end
redis.call('HSET', KEYS[1], '_completed', ARGV[3])
return {1}
