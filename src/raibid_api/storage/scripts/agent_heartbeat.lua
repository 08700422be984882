-- An agent's heartbeat for the job it holds: extend the lease of a running job, or tell the agent
-- its job ended (cancelled, timed out) while the lease it already has lasts.
-- KEYS[1] job hash
-- ARGV[1] sha256 of the job token  ARGV[2] now (ms)  ARGV[3] lease length (ms)
-- returns {1, cancel (0|1), lease end (ms)}; the refusals of agent_prelude.lua; {-4} the lease
-- is over
local job, refusal = holder(KEYS[1], ARGV[1])
if not job then
  return refusal
end
local now = tonumber(ARGV[2])
if job.status == 'running' then
  local lease_until = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], '_lease_until', lease_until)
  return {1, 0, lease_until}
end
if job.lease_until > now then
  return {1, 1, job.lease_until}
end
return {-4}
