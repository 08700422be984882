-- Take the right to send one report of a job: only the newest, and one sender per job at a time,
-- so that an older state can never reach the forge after a newer one.
-- KEYS[1] the job's status record (hash)
-- ARGV[1] rank of the report  ARGV[2] consumer  ARGV[3] now (ms)  ARGV[4] lease (ms)
-- returns 1: send it (the lease is taken); 0: stale, a newer state is queued or was reported;
-- 2: busy, another consumer holds an unexpired lease on this job
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 1
end
local rank = tonumber(ARGV[1])
local now = tonumber(ARGV[3])
local newest = tonumber(redis.call('HGET', KEYS[1], 'newest') or '-1')
local reported = tonumber(redis.call('HGET', KEYS[1], 'reported') or '-1')
if rank < newest or rank <= reported then
  return 0
end
local sender = redis.call('HGET', KEYS[1], 'sender')
local lease_end = tonumber(redis.call('HGET', KEYS[1], 'lease_end') or '0')
if sender and sender ~= ARGV[2] and lease_end > now then
  return 2
end
redis.call('HSET', KEYS[1], 'sender', ARGV[2], 'lease_end', now + tonumber(ARGV[4]))
return 1
