-- Create a job, all or nothing: its hash, its indexes and its queue entry. For a webhook delivery,
-- in the same step: count it against the rate limits (lib_rate_limit.lua), claim its delivery
-- key (a redelivery finds its job) and its content key (the same build while a job building it
-- is pending or running finds that job; the key lives exactly as long as that job is active:
-- the job's transition to an end deletes it, and the job names it in its `_content` field),
-- make the job the newest of its branch or pull request, and cancel the pending job it
-- supersedes (lib_job_transition.lua).
-- KEYS[1] job hash  KEYS[2] queue stream  KEYS[3] delivery key  KEYS[4] content key
-- KEYS[5] the line's newest-job key ('<creation score> <job id>'; unused when ARGV[10] is 0)
-- KEYS[6] expiry index  KEYS[7 .. 6+n] the rate-limit keys (n = ARGV[9])
-- KEYS[7+n ..] the new job's index sets
-- ARGV[1] job id  ARGV[2] creation score (ms)  ARGV[3] Job JSON for the queue entry
-- ARGV[4] delivery key TTL (s), 0 = no delivery key  ARGV[5] content key TTL (s), 0 = none
-- ARGV[6] the rate limit per window  ARGV[7] now (ms)  ARGV[8] the window (ms)
-- ARGV[9] n, the number of rate-limit keys (0: not limited)
-- ARGV[10] the newest-job key TTL (s), 0 = the job supersedes nothing
-- ARGV[11] the superseded job's end time (RFC 3339)  ARGV[12] its end reason
-- ARGV[13] retention (s)  ARGV[14] events MAXLEN  ARGV[15] consumer group
-- ARGV[16] expiry score (ms) of a job ending now  ARGV[17] the expiry member's separator
-- ARGV[18..21] key templates (`Keys.job_templates`: byte 1 stands for the job id or the status,
-- byte 2 for the repo): job hash, job events, status index, status index of a repo
-- ARGV[22] '1' when a running superseded job may be cancelled too (by the caller), else '0'
-- ARGV[23] the new job's hash fields, a JSON object of strings (one argument, not a pair each)
-- The superseded job's keys are filled in from the templates here, since only this script
-- learns its id; with a {hash tag} prefix every one of them is in the slot of KEYS[1].
-- returns {3, i, ms until there is room} when rate-limit key i is full (nothing is written),
-- {0, job id} for a known delivery, {2, job id} for content an active job is building,
-- {1, queue entry id, superseded job id or '' (none, or it has ended), cancelled here (1) or
-- left to the caller (0), the cancelled job's public fields, flat} for a new job
local function create_job(k, a)
  if a.delivery_ttl > 0 then
    local known = redis.call('GET', k.delivery)
    if known then
      return {0, known}
    end
  end
  if a.content_ttl > 0 then
    local active = redis.call('GET', k.content)
    if active then
      if a.delivery_ttl > 0 then
        redis.call('SET', k.delivery, active, 'EX', a.delivery_ttl)
      end
      return {2, active}
    end
    redis.call('SET', k.content, a.job_id, 'EX', a.content_ttl)
  end
  if a.delivery_ttl > 0 then
    redis.call('SET', k.delivery, a.job_id, 'EX', a.delivery_ttl)
  end
  local flat = {}
  for field, value in pairs(a.fields) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  redis.call('HSET', k.job, unpack(flat))
  for i = 1, #k.indexes do
    redis.call('ZADD', k.indexes[i], a.score, a.job_id)
  end
  local entry = redis.call('XADD', k.queue, '*', 'job_id', a.job_id, 'job', a.job_json)
  redis.call('HSET', k.job, '_entry', entry)
  if a.content_ttl > 0 then
    redis.call('HSET', k.job, '_content', k.content)
  end
  return {1, entry}
end

local n_limits = tonumber(ARGV[9])
local limits = {}
for i = 7, 6 + n_limits do
  limits[#limits + 1] = KEYS[i]
end
local indexes = {}
for i = 7 + n_limits, #KEYS do
  indexes[#indexes + 1] = KEYS[i]
end
local job_id = ARGV[1]
local score = tonumber(ARGV[2])
local now = tonumber(ARGV[7])

if n_limits > 0 then
  local refusal = count_request(limits, tonumber(ARGV[6]), now, tonumber(ARGV[8]), job_id)
  if refusal then
    return {3, refusal[2], refusal[3]}
  end
end

local created = create_job(
  {job = KEYS[1], queue = KEYS[2], delivery = KEYS[3], content = KEYS[4], indexes = indexes},
  {job_id = job_id, score = score, job_json = ARGV[3], delivery_ttl = tonumber(ARGV[4]),
   content_ttl = tonumber(ARGV[5]), fields = cjson.decode(ARGV[23])})
if created[1] ~= 1 or tonumber(ARGV[10]) == 0 then
  return created
end

-- the newest job of the line: the later creation wins, even when it reaches Redis first
local superseded = ''
local held = redis.call('GET', KEYS[5])
if held then
  local gap = string.find(held, ' ', 1, true)
  local held_score = tonumber(string.sub(held, 1, gap - 1))
  local held_id = string.sub(held, gap + 1)
  if score > held_score or (score == held_score and job_id > held_id) then
    superseded = held_id
  else
    superseded = job_id
  end
end
if superseded ~= job_id then
  redis.call('SET', KEYS[5], ARGV[2] .. ' ' .. job_id, 'EX', tonumber(ARGV[10]))
end
if superseded == '' then
  return {1, created[2], '', 0}
end

local function fill(template, first, second)
  local at = string.find(template, '\1', 1, true)
  local out = string.sub(template, 1, at - 1) .. first .. string.sub(template, at + 1)
  if second then
    at = string.find(out, '\2', 1, true)
    out = string.sub(out, 1, at - 1) .. second .. string.sub(out, at + 1)
  end
  return out
end

-- a pending job with a content key is ended here; an ended or vanished one needs nothing, nor
-- a running one unless running jobs may be cancelled; the rest (such a running job, a pending
-- job from before content keys were named) is the caller's to end
local job_key = fill(ARGV[18], superseded)
local f = redis.call('HMGET', job_key, 'status', 'repo', 'branch', 'event', '_content')
if f[1] ~= 'pending' and (f[1] ~= 'running' or ARGV[22] ~= '1') then
  return {1, created[2], '', 0}
end
if f[1] ~= 'pending' or not f[5] then
  return {1, created[2], superseded, 0}
end
local sep = ARGV[17]
local ended = transition_job(
  {job = job_key, old_status = fill(ARGV[20], 'pending'), new_status = fill(ARGV[20], 'cancelled'),
   events = fill(ARGV[19], superseded), queue = KEYS[2], expiry = KEYS[6], content = f[5],
   old_status_repo = fill(ARGV[21], 'pending', f[2]),
   new_status_repo = fill(ARGV[21], 'cancelled', f[2])},
  {expected = 'pending', target = 'cancelled', job_id = superseded, terminal = true,
   retention = tonumber(ARGV[13]), events_maxlen = tonumber(ARGV[14]), group = ARGV[15],
   expiry_ms = tonumber(ARGV[16]),
   expiry_member = superseded .. sep .. 'cancelled' .. sep .. f[2] .. sep .. (f[3] or '') .. sep
     .. f[4],
   requeue_json = '', token_hash = '', lease_ended_by = '',
   fields = {'finished_at', ARGV[11], 'reason', ARGV[12], 'exit_code', ''}})
return {1, created[2], superseded, 1, ended[3]}
