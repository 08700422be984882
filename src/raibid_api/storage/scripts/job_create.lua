-- Create a job: its hash, its indexes and its queue entry, and claim its delivery and content keys,
-- all or nothing.
-- KEYS[1] job hash  KEYS[2] queue stream  KEYS[3] delivery key  KEYS[4] content key
-- KEYS[5] hash of the active job the content key named (KEYS[1] when none)  KEYS[6..] index sets
-- ARGV[1] job id  ARGV[2] creation score (ms)  ARGV[3] Job JSON for the queue entry
-- ARGV[4] delivery key TTL (s), 0 = no delivery key  ARGV[5] content key TTL (s), 0 = no content key
-- ARGV[6] id the content key named ('' when none)  ARGV[7..] job hash field/value pairs
-- returns {1, queue entry id} when created, {0, job id} for a known delivery,
-- {2, job id} for content already being built, {3} when the content key moved since it was read
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
  local named = redis.call('GET', KEYS[4]) or ''
  if named ~= ARGV[6] then
    return {3}
  end
  if named ~= '' then
    local status = redis.call('HGET', KEYS[5], 'status')
    if status == 'pending' or status == 'running' then
      if delivery_ttl > 0 then
        redis.call('SET', KEYS[3], named, 'EX', delivery_ttl)
      end
      return {2, named}
    end
  end
  redis.call('SET', KEYS[4], job_id, 'EX', content_ttl)
end

if delivery_ttl > 0 then
  redis.call('SET', KEYS[3], job_id, 'EX', delivery_ttl)
end

local fields = {}
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
local score = tonumber(ARGV[2])
for i = 6, #KEYS do
  redis.call('ZADD', KEYS[i], score, job_id)
end
local entry = redis.call('XADD', KEYS[2], '*', 'job_id', job_id, 'job', ARGV[3])
redis.call('HSET', KEYS[1], '_entry', entry)
return {1, entry}
