-- Record a new job as the newest of its branch or pull request, and name the job it supersedes.
-- KEYS[1] the line's newest-job key, holding '<creation score> <job id>'
-- ARGV[1] the new job's creation score (ms)  ARGV[2] the new job's id  ARGV[3] the key's TTL (s)
-- returns '' when the line had no job, the previous newest job's id when the new job is newer
-- (the key then names the new job), or the new job's own id when a newer job got there first
local score = tonumber(ARGV[1])
local current = redis.call('GET', KEYS[1])
local newer = true
local previous = ''
if current then
  local gap = string.find(current, ' ', 1, true)
  local held_score = tonumber(string.sub(current, 1, gap - 1))
  previous = string.sub(current, gap + 1)
  newer = score > held_score or (score == held_score and ARGV[2] > previous)
end
if not newer then
  return ARGV[2]
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', tonumber(ARGV[3]))
return previous
