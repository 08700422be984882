-- Move a job from the status the caller expects to leave to a new one: the hash, the status
-- indexes, the queue entry, the retention TTLs and a `status` entry in the job's event stream.
-- KEYS[1] job hash  KEYS[2] index of the old status  KEYS[3] index of the new status
-- KEYS[4] job events stream  KEYS[5] queue stream  KEYS[6] expiry index
-- KEYS[7] the content key of what the job builds (deleted when the job ends, if it is the job's)
-- KEYS[8] index of the old status in the job's repo  KEYS[9] index of the new status in its repo
-- ARGV[1] status the caller expects to leave  ARGV[2] new status  ARGV[3] job id
-- ARGV[4] '1' when the new status is terminal  ARGV[5] retention (s)  ARGV[6] events MAXLEN
-- ARGV[7] consumer group  ARGV[8] expiry score (ms)  ARGV[9] expiry member
-- ARGV[10] Job JSON of a fresh queue entry ('' = none; a requeue)
-- ARGV[11] sha256 of the job token the caller holds ('' = no token check)
-- ARGV[12] a time (ms) the job's lease must have ended by ('' = no lease check)
-- ARGV[13..] field/value pairs, an empty value deletes the field
-- returns {1, events entry id} on success, {0, current status} when the job is elsewhere,
-- {-1} when the job does not exist, {-2} when the job token is not the job's current one
local current = redis.call('HGET', KEYS[1], 'status')
if not current then
  return {-1}
end
if ARGV[11] ~= '' and redis.call('HGET', KEYS[1], '_token') ~= ARGV[11] then
  return {-2}
end
if current ~= ARGV[1] then
  return {0, current}
end
if ARGV[12] ~= '' and tonumber(redis.call('HGET', KEYS[1], '_lease_until') or '0') >= tonumber(ARGV[12]) then
  return {0, current}
end

local job_id = ARGV[3]
redis.call('HSET', KEYS[1], 'status', ARGV[2])
for i = 13, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end

local score = redis.call('HGET', KEYS[1], '_created_ms')
redis.call('ZREM', KEYS[2], job_id)
redis.call('ZADD', KEYS[3], score, job_id)
redis.call('ZREM', KEYS[8], job_id)
redis.call('ZADD', KEYS[9], score, job_id)

local terminal = ARGV[4] == '1'
local requeue = ARGV[10] ~= ''
if terminal or requeue then
  local entry = redis.call('HGET', KEYS[1], '_entry')
  if entry then
    redis.call('XACK', KEYS[5], ARGV[7], entry)
    redis.call('XDEL', KEYS[5], entry)
    redis.call('HDEL', KEYS[1], '_entry')
  end
end
if requeue then
  local entry = redis.call('XADD', KEYS[5], '*', 'job_id', job_id, 'job', ARGV[10])
  redis.call('HSET', KEYS[1], '_entry', entry)
end

local public = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  if string.sub(flat[i], 1, 1) ~= '_' then
    public[#public + 1] = flat[i]
    public[#public + 1] = flat[i + 1]
  end
end
local event = redis.call('XADD', KEYS[4], 'MAXLEN', '~', tonumber(ARGV[6]), '*', 'type', 'status',
  unpack(public))

if terminal then
  if redis.call('GET', KEYS[7]) == job_id then
    redis.call('DEL', KEYS[7])
  end
  local retention = tonumber(ARGV[5])
  redis.call('EXPIRE', KEYS[1], retention)
  redis.call('EXPIRE', KEYS[4], retention)
  redis.call('ZADD', KEYS[6], tonumber(ARGV[8]), ARGV[9])
end
return {1, event}
