-- An agent's heartbeat for the job it holds: extend the lease of a running job, or tell the agent
-- its job ended (cancelled, timed out) while the lease it already has lasts.
-- KEYS[1] job hash
-- ARGV[1] sha256 of the job token  ARGV[2] now (ms)  ARGV[3] lease length (ms)
-- returns {1, cancel (0|1), lease end (ms)}; {-1} no such job; {-2} not the job's current token;
-- {-3} the job was already completed with this token; {-4} the lease is over
local f = redis.call('HMGET', KEYS[1], 'status', '_token', '_lease_until', '_completed')
if not f[1] then
  return {-1}
end
if f[2] ~= ARGV[1] then
  return {-2}
end
if f[4] then
  return {-3}
end
local now = tonumber(ARGV[2])
local lease_until = tonumber(f[3] or '0')
if f[1] == 'running' then
  lease_until = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], '_lease_until', lease_until)
  return {1, 0, lease_until}
end
if lease_until > now then
  return {1, 1, lease_until}
end
return {-4}
