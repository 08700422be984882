-- Take the ended jobs whose final status is due for another look, so that one replica alone
-- looks at each: their score moves to ARGV[2] before they are returned.
-- KEYS[1] unreported jobs (zset, scored by the time of the next look)
-- ARGV[1] now (ms)  ARGV[2] time of the look after this one (ms)  ARGV[3] most jobs to take
-- returns the job ids taken
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]),
  'LIMIT', 0, tonumber(ARGV[3]))
for _, job_id in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), job_id)
end
return due
