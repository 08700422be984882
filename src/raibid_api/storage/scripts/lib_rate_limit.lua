-- Library (prepended to rate_limit_hit.lua and job_create.lua): sliding-window request logs.
-- Count one request in the logs of several subjects, all or nothing.
-- keys: each subject's sorted set of request times  member: a name unique to this request
-- dry: only check, counting nothing and writing nothing (not even the trim of old times)
-- returns nil when the request is counted (or, dry, would be), or {0, i, ms until keys[i] has
-- room again} when keys[i] is at its limit (then nothing is counted)
local function count_request(keys, limit, now, window, member, dry)
  local since = '(' .. string.format('%.0f', now - window)
  for i = 1, #keys do
    if not dry then
      redis.call('ZREMRANGEBYSCORE', keys[i], '-inf', now - window)
    end
    if redis.call('ZCOUNT', keys[i], since, '+inf') >= limit then
      local oldest = redis.call('ZRANGEBYSCORE', keys[i], since, '+inf', 'WITHSCORES', 'LIMIT', 0,
        1)
      return {0, i, tonumber(oldest[2]) + window - now}
    end
  end
  if dry then
    return nil
  end
  for i = 1, #keys do
    redis.call('ZADD', keys[i], now, member)
    redis.call('PEXPIRE', keys[i], window)
  end
  return nil
end
