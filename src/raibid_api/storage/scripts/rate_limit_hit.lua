-- Count one request in the sliding-window logs of several subjects (lib_rate_limit.lua).
-- KEYS[1..n] sorted set of one subject's requests (source address, repository), scored by time
-- ARGV[1] the limit per window  ARGV[2] now (ms)  ARGV[3] the window (ms)
-- ARGV[4] a member naming this request, unique
-- returns {1} when the request is counted, {0, i, ms until KEYS[i] has room again} when KEYS[i]
-- is at its limit (then nothing is counted)
local refusal = count_request(KEYS, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  ARGV[4])
return refusal or {1}
