-- Record the commit a running job's agent checked out, when the job was made without one (a
-- manual trigger on a branch): once, for the current attempt only. A job whose content key is
-- named by what it was created with (a coalesced webhook job) keeps its identity.
-- KEYS[1] job hash
-- ARGV[1] sha256 of the job token  ARGV[2] the commit's full sha
-- returns {1, commit} recorded; {0, commit or ''} the job keeps the commit it has (or is no
-- longer running); the refusals of agent_prelude.lua
local job, refusal = holder(KEYS[1], ARGV[1])
if not job then
  return refusal
end
local f = redis.call('HMGET', KEYS[1], 'commit', '_content')
local commit = f[1] or ''
if job.status ~= 'running' or commit ~= '' or f[2] then
  return {0, commit}
end
redis.call('HSET', KEYS[1], 'commit', ARGV[2])
return {1, ARGV[2]}
