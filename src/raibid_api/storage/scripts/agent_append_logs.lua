-- Append a batch of log lines of the job an agent holds to the job's event stream, in order and
-- exactly once: lines before the server's count of this attempt's lines are already there.
-- A batch without an offset is recognised by its batch id instead: the attempt's last batch id is
-- kept, so the same batch sent again (its answer was lost) is not appended twice.
-- Each line gets `n`, its number in the job's whole log (`_log_n`, counted over every attempt).
-- Big logs keep their head and their tail: once the stream holds ARGV[4] entries, each new one
-- deletes the oldest entry after the first half (`_log_head_end`, the last entry of the head), so
-- a reader sees the numbers `n` jump where lines were dropped.
-- KEYS[1] job hash  KEYS[2] job events stream
-- ARGV[1] sha256 of the job token  ARGV[2] now (ms)  ARGV[3] offset of the batch's first line in
-- this attempt's log (-1 = append after the last)  ARGV[4] the most entries the stream keeps
-- ARGV[5] timestamp (RFC 3339)  ARGV[6] batch id ('' none)  ARGV[7..] stream/line pairs
-- returns {1, lines of this attempt after the batch, when the attempt was claimed (ms) if this
-- batch holds its first lines, else -1}; the refusals of agent_prelude.lua;
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
  return {1, count, -1}
end
if first > #ARGV then
  return {1, count, -1}
end
local most = tonumber(ARGV[4])
local head = math.floor(most / 2)
local n = tonumber(redis.call('HGET', KEYS[1], '_log_n') or '0')
local head_end = redis.call('HGET', KEYS[1], '_log_head_end')
local length = redis.call('XLEN', KEYS[2])
for i = first, #ARGV, 2 do
  n = n + 1
  local id = redis.call('XADD', KEYS[2], '*', 'type', 'log', 'n', n, 't', ARGV[5],
    'stream', ARGV[i], 'line', ARGV[i + 1])
  length = length + 1
  count = count + 1
  if not head_end and length >= head then
    head_end = id
    redis.call('HSET', KEYS[1], '_log_head_end', id)
  end
  while length > most do
    local victim = redis.call('XRANGE', KEYS[2], '(' .. head_end, '+', 'COUNT', 1)
    redis.call('XDEL', KEYS[2], victim[1][1])
    length = length - 1
  end
end
if batch ~= '' then
  redis.call('HSET', KEYS[1], '_last_batch', batch)
end
if job.log_count == 0 and count > 0 then
  -- the attempt's first lines: when they came, for the first-log-to-finished stage
  redis.call('HSET', KEYS[1], '_log_count', count, '_log_n', n, '_first_log_ms', ARGV[2])
  return {1, count, tonumber(redis.call('HGET', KEYS[1], '_started_ms') or '-1')}
end
redis.call('HSET', KEYS[1], '_log_count', count, '_log_n', n)
return {1, count, -1}
