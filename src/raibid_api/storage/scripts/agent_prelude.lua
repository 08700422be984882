-- Prepended to every agent_*.lua script when it is loaded: the checks a job token must pass.
-- Returns the job as {status, lease_until (ms), log_count}, or nil and the refusal to return:
-- {-1} no such job; {-2} not the job's current token; {-3, outcome} completed with this token.
local function holder(job_key, token_hash)
  local f = redis.call('HMGET', job_key, 'status', '_token', '_lease_until', '_completed',
    '_log_count')
  if not f[1] then
    return nil, {-1}
  end
  if f[2] ~= token_hash then
    return nil, {-2}
  end
  if f[4] then
    return nil, {-3, f[4]}
  end
  return {status = f[1], lease_until = tonumber(f[3] or '0'), log_count = tonumber(f[5] or '0')}
end
