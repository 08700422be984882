-- Append a batch of log lines of the job an agent holds to the job's event stream, in order and
-- exactly once: lines before the server's count of this attempt's lines are already there.
-- KEYS[1] job hash  KEYS[2] job events stream
-- A batch without an offset is recognised by its batch id instead: the attempt's last batch id is
-- kept, so the same batch sent again (its answer was lost) is not appended twice.
-- ARGV[1] sha256 of the job token  ARGV[2] now (ms)  ARGV[3] offset of the batch's first line in
-- this attempt's log (-1 = append after the last)  ARGV[4] events MAXLEN  ARGV[5] timestamp (RFC 3339)
-- ARGV[6] batch id ('' none)  ARGV[7..] stream/line pairs
-- returns {1, lines of this attempt after the batch}; the refusals of agent_prelude.lua;
-- {-4} the lease is over; {-5, expected offset} a gap before the batch
local job, refusal = holder(KEYS[1], ARGV[1])
if not job then
  return refusal
end
if job.status ~= 'running' and job.lease_until <= tonumber(ARGV[2]) then
  return {-4}
end
local count = job.log_count
local offset = tonumber(ARGV[3])
local batch = ARGV[6]
local first = 7
if offset >= 0 then
  if offset > count then
    return {-5, count}
  end
  first = 7 + 2 * (count - offset)
elseif batch ~= '' and redis.call('HGET', KEYS[1], '_last_batch') == batch then
  return {1, count}
end
local maxlen = tonumber(ARGV[4])
for i = first, #ARGV, 2 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'type', 'log', 't', ARGV[5],
    'stream', ARGV[i], 'line', ARGV[i + 1])
  count = count + 1
end
redis.call('HSET', KEYS[1], '_log_count', count)
if batch ~= '' then
  redis.call('HSET', KEYS[1], '_last_batch', batch)
end
return {1, count}
