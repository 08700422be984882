-- Count one request in the sliding-window logs of several subjects, all or nothing.
-- KEYS[1..n] sorted set of one subject's requests (source address, repository), scored by time
-- ARGV[1] the limit per window  ARGV[2] now (ms)  ARGV[3] the window (ms)
-- ARGV[4] a member naming this request, unique
-- returns {1} when the request is counted, {0, i, ms until KEYS[i] has room again} when KEYS[i]
-- is at its limit (then nothing is counted)
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    return {0, i, tonumber(oldest[2]) + window - now}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], window)
end
return {1}
