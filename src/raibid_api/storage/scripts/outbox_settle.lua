-- Settle one outbox entry: ack and delete it, release the job's send lease, and record the outcome.
-- KEYS[1] outbox stream  KEYS[2] the job's status record (hash)  KEYS[3] unreported jobs (zset)
-- KEYS[4] delayed reports (zset)
-- ARGV[1] consumer group  ARGV[2] entry id  ARGV[3] consumer
-- ARGV[4] outcome: 'sent' | 'dropped' | 'retry' | 'gave_up'  ARGV[5] rank of the report
-- ARGV[6] '1' when it is the job's final state  ARGV[7] job id
-- ARGV[8] retry: not_before of the next attempt; gave_up: when the sweep looks again (ms)
-- ARGV[9] retry: the next attempt's report (JSON object of its stream fields)
-- returns 1 when settled, 0 when the entry had been settled already (by a consumer that
-- reclaimed it), in which case nothing else changes
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
local outcome = ARGV[4]
local rank = tonumber(ARGV[5])
local final = ARGV[6] == '1'
local record = redis.call('EXISTS', KEYS[2]) == 1
if record and redis.call('HGET', KEYS[2], 'sender') == ARGV[3] then
  redis.call('HDEL', KEYS[2], 'sender', 'lease_end')
end
if outcome == 'sent' then
  local reported = tonumber(redis.call('HGET', KEYS[2], 'reported') or '-1')
  if record and rank > reported then
    redis.call('HSET', KEYS[2], 'reported', rank)
  end
  if final then
    redis.call('ZREM', KEYS[3], ARGV[7])
  end
elseif outcome == 'retry' then
  redis.call('ZADD', KEYS[4], tonumber(ARGV[8]), ARGV[9])
elseif outcome == 'gave_up' and final then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[8]), ARGV[7])
end
return 1
