-- Give a delivered queue entry back for another agent when the agent it was read for has left
-- before the job was claimed: the job stays pending with the same attempt under a fresh entry.
-- KEYS[1] job hash  KEYS[2] queue stream
-- ARGV[1] the delivered entry id  ARGV[2] consumer group  ARGV[3] job id
-- returns {1} when a fresh entry replaced it, {0} when the entry was no longer the job's own
-- (the job was claimed, cancelled or requeued meanwhile: the stale entry is only dropped)
local read = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
redis.pcall('XACK', KEYS[2], ARGV[2], ARGV[1])  -- a lost group (NOGROUP): nothing to ack
redis.call('XDEL', KEYS[2], ARGV[1])
local own = redis.call('HGET', KEYS[1], '_entry') == ARGV[1]
if not own or redis.call('HGET', KEYS[1], 'status') ~= 'pending' or #read == 0 then
  return {0}
end
local fields = read[1][2]
local job = ''
for i = 1, #fields, 2 do
  if fields[i] == 'job' then
    job = fields[i + 1]
  end
end
local entry = redis.call('XADD', KEYS[2], '*', 'job_id', ARGV[3], 'job', job)
redis.call('HSET', KEYS[1], '_entry', entry)
return {1}
