-- Create a job: its hash, its indexes and its queue entry, and claim its delivery and content keys,
-- all or nothing.
-- KEYS[1] job hash  KEYS[2] queue stream  KEYS[3] delivery key  KEYS[4] content key
-- KEYS[5..] index sets
-- ARGV[1] job id  ARGV[2] creation score (ms)  ARGV[3] Job JSON for the queue entry
-- ARGV[4] delivery key TTL (s), 0 = no delivery key  ARGV[5] content key TTL (s), 0 = no content
-- key  ARGV[6..] job hash field/value pairs
-- returns {1, queue entry id} when created, {0, job id} for a known delivery,
-- {2, job id} for content a pending or running job is already building (its content key lives
-- exactly as long as that job is active: job_transition.lua deletes it when the job ends)
local job_id = ARGV[1]
local delivery_ttl = tonumber(ARGV[4])
local content_ttl = tonumber(ARGV[5])

if delivery_ttl > 0 then
  local known = redis.call('GET', KEYS[3])
  if known then
    return {0, known}
  end
end

if content_ttl > 0 then
  local active = redis.call('GET', KEYS[4])
  if active then
    if delivery_ttl > 0 then
      redis.call('SET', KEYS[3], active, 'EX', delivery_ttl)
    end
    return {2, active}
  end
  redis.call('SET', KEYS[4], job_id, 'EX', content_ttl)
end

if delivery_ttl > 0 then
  redis.call('SET', KEYS[3], job_id, 'EX', delivery_ttl)
end

local fields = {}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
local score = tonumber(ARGV[2])
for i = 5, #KEYS do
  redis.call('ZADD', KEYS[i], score, job_id)
end
local entry = redis.call('XADD', KEYS[2], '*', 'job_id', job_id, 'job', ARGV[3])
redis.call('HSET', KEYS[1], '_entry', entry)
return {1, entry}
