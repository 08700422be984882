-- Record an agent's completion of a job that already ended without it (cancelled or timed out
-- while it ran): the job keeps its outcome, the token stops working.
-- KEYS[1] job hash
-- ARGV[1] sha256 of the job token  ARGV[2] now (ms)  ARGV[3] the outcome the agent reports
-- returns {1} recorded; {0, status} the job is still running (transition it instead); the
-- refusals of agent_prelude.lua; {-4} the lease is over
local job, refusal = holder(KEYS[1], ARGV[1])
if not job then
  return refusal
end
if job.status == 'running' then
  return {0, job.status}
end
if job.lease_until <= tonumber(ARGV[2]) then
  return {-4}
end
redis.call('HSET', KEYS[1], '_completed', ARGV[3])
return {1}
