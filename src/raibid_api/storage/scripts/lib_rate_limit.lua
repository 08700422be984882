-- Library (prepended to rate_limit_hit.lua and job_create.lua): sliding-window request logs.
-- Count one request in the logs of several subjects, all or nothing.
-- keys: each subject's sorted set of request times  member: a name unique to this request
-- returns nil when the request is counted, or {0, i, ms until keys[i] has room again} when
-- keys[i] is at its limit (then nothing is counted)
local function count_request(keys, limit, now, window, member)
  for i = 1, #keys do
    redis.call('ZREMRANGEBYSCORE', keys[i], '-inf', now - window)
    if redis.call('ZCARD', keys[i]) >= limit then
      local oldest = redis.call('ZRANGE', keys[i], 0, 0, 'WITHSCORES')
      return {0, i, tonumber(oldest[2]) + window - now}
    end
  end
  for i = 1, #keys do
    redis.call('ZADD', keys[i], now, member)
    redis.call('PEXPIRE', keys[i], window)
  end
  return nil
end
