-- Queue one commit status report, unless a report as new or newer is queued or reported already.
-- KEYS[1] outbox stream  KEYS[2] the job's status record (hash)  KEYS[3] unreported jobs (zset)
-- ARGV[1] mode: 'change' (a status change), 'final' (the sweep's first report of an ended job
--         nobody queued), 'resend' (the sweep again, for a final state the forge never took)
-- ARGV[2] rank of the report  ARGV[3] '1' when it is the job's final state  ARGV[4] job id
-- ARGV[5] when the sweep looks at the final state again (ms)  ARGV[6] record TTL (s)
-- ARGV[7..] field/value pairs of the stream entry
-- returns the new entry id, or false when the report is not queued
local rank = tonumber(ARGV[2])
local newest = tonumber(redis.call('HGET', KEYS[2], 'newest') or '-1')
local reported = tonumber(redis.call('HGET', KEYS[2], 'reported') or '-1')
local mode = ARGV[1]
if mode == 'change' and rank <= newest then
  return false
end
if mode == 'final' and redis.call('HEXISTS', KEYS[2], 'final') == 1 then
  return false
end
if mode == 'resend' and rank <= reported then
  return false
end
if rank > newest then
  redis.call('HSET', KEYS[2], 'newest', rank)
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'final', rank)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), ARGV[4])
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
local fields = {}
for i = 7, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
return redis.call('XADD', KEYS[1], '*', unpack(fields))
