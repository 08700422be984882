-- Create a job, all or nothing: its hash, its indexes and its queue entry. For a webhook delivery,
-- in the same step: count it against the rate limits (lib_rate_limit.lua), claim its delivery
-- key (a redelivery finds its job) and its content key (the same build while a job building it
-- is pending or running finds that job; the key lives exactly as long as that job is active:
-- the job's transition to an end deletes it, and the job names it in its `_content` field),
-- make the job the newest of its branch or pull request, and cancel the pending job it
-- supersedes (lib_job_transition.lua).
--
-- A dry run (`dry_run`) takes every decision a real run would take, on the same reads, and
-- writes nothing at all: the rate limits are checked without counting the request, and the reply
-- tells what a real run would do (`/webhook/{forge}/explain`).
--
-- The one caller is `raibid_api.storage.scripts.Scripts.create_job`, which owns this layout.
-- KEYS[1] the new job's hash  KEYS[2] the queue stream
-- KEYS[3] the delivery key (not read without `delivery_ttl`)
-- KEYS[4] the content key (not read without `content_ttl`)
-- KEYS[5] the line's newest-job key, '<creation score> <job id>' (not read without `line_ttl`)
-- KEYS[6] the expiry index  KEYS[7] the stream of every job's status changes
-- KEYS[8 .. 7+n] the rate-limit keys (n = `limits`)  KEYS[8+n ..] the new job's index sets
-- ARGV[1] the call, one JSON object:
--   job_id     the new job's id
--   score      its creation time (ms, a string): the score in every index, the time the rate
--              limits count, and when the retention of a job it cancels starts
--   fields     the new job's hash fields, an object of strings (`created_at` is the end time
--              written on a job it cancels)
--   dry_run    true: decide, write nothing
--   delivery_ttl  the delivery key's TTL (s); 0: no delivery key
--   content_ttl   the content key's TTL (s); 0: no content key
--   limits     n, the number of rate-limit keys (0: not limited)
--   per_window the limit per window   window  the window (ms)
--   line_ttl   the newest-job key's TTL (s); 0: the job supersedes nothing
--   reason     the reason written on a job it cancels
--   cancel_running  true: a running superseded job is to be cancelled too (by the caller)
--   retention  (s): of a job it cancels   group: the queue's consumer group
--   status_maxlen  MAXLEN of the status changes stream, which gets the new job's creation
--   separator  between the parts of an expiry index member
--   templates  [job hash, job events, status index, status index of a repo] (`Keys.job_templates`:
--              byte 1 stands for the job id or the status, byte 2 for the repo); the superseded
--              job's keys are filled in from them here, since only this script learns its id
--              (with a {hash tag} prefix every one of them is in the slot of KEYS[1])
-- ARGV[2] the Job JSON of the queue entry, as the agents read it
-- Replies, tagged by their first element:
--   {'rate_limited', i, ms until there is room}: rate-limit key i is full; nothing is written
--   {'duplicate', 'delivery' | 'content', job id}: a known delivery, or content an active job
--     is building
--   {'created', queue entry id ('' in a dry run), superseded job id ('' none to end), its fate,
--     its public fields after, flat ({} unless a real run cancelled it)}: a new job; the fate
--     is 'cancelled' (ended in this step) or 'caller' (left to the caller to end: running, with
--     `cancel_running`; or pending without a named content key), '' with no superseded job;
--     a call for a job id that exists already (the same call, sent again) changes nothing and
--     answers {'created', its entry id, '', '', {}}

local p = cjson.decode(ARGV[1])
local dry = p.dry_run
local job_id = p.job_id
local score = tonumber(p.score)
local job_key = KEYS[1]
local queue = KEYS[2]

-- the same call sent again (its reply was lost) finds the job it made and writes nothing twice:
-- one job, one queue entry, one count against the rate limits
if not dry and redis.call('EXISTS', job_key) == 1 then
  return {'created', redis.call('HGET', job_key, '_entry') or '', '', '', {}}
end

if p.limits > 0 then
  local limits = {}
  for i = 8, 7 + p.limits do
    limits[#limits + 1] = KEYS[i]
  end
  local refusal = count_request(limits, p.per_window, score, p.window, job_id, dry)
  if refusal then
    return {'rate_limited', refusal[2], refusal[3]}
  end
end

if p.delivery_ttl > 0 then
  local known = redis.call('GET', KEYS[3])
  if known then
    return {'duplicate', 'delivery', known}
  end
end
if p.content_ttl > 0 then
  local active = redis.call('GET', KEYS[4])
  if active then
    if p.delivery_ttl > 0 and not dry then
      redis.call('SET', KEYS[3], active, 'EX', p.delivery_ttl)
    end
    return {'duplicate', 'content', active}
  end
end

local entry = ''
if not dry then
  if p.content_ttl > 0 then
    redis.call('SET', KEYS[4], job_id, 'EX', p.content_ttl)
  end
  if p.delivery_ttl > 0 then
    redis.call('SET', KEYS[3], job_id, 'EX', p.delivery_ttl)
  end
  local flat = {}
  for field, value in pairs(p.fields) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  redis.call('HSET', job_key, unpack(flat))
  for i = 8 + p.limits, #KEYS do
    redis.call('ZADD', KEYS[i], p.score, job_id)
  end
  local public = {}
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 1) ~= '_' then
      public[#public + 1] = flat[i]
      public[#public + 1] = flat[i + 1]
    end
  end
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', p.status_maxlen, '*', 'job_id', job_id,
    unpack(public))
  entry = redis.call('XADD', queue, '*', 'job_id', job_id, 'job', ARGV[2])
  redis.call('HSET', job_key, '_entry', entry)
  if p.content_ttl > 0 then
    redis.call('HSET', job_key, '_content', KEYS[4])
  end
end
if p.line_ttl == 0 then
  return {'created', entry, '', '', {}}
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
if superseded ~= job_id and not dry then
  redis.call('SET', KEYS[5], p.score .. ' ' .. job_id, 'EX', p.line_ttl)
end
if superseded == '' then
  return {'created', entry, '', '', {}}
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
local t = p.templates
local old_key = fill(t[1], superseded)
local f
if superseded == job_id and dry then
  -- the new job itself, which a dry run did not write: as a real run would have written it
  f = {'pending', false, false, false, p.content_ttl > 0}
else
  f = redis.call('HMGET', old_key, 'status', 'repo', 'branch', 'event', '_content')
end
if f[1] ~= 'pending' and (f[1] ~= 'running' or not p.cancel_running) then
  return {'created', entry, '', '', {}}
end
if f[1] ~= 'pending' or not f[5] then
  return {'created', entry, superseded, 'caller', {}}
end
if dry then
  return {'created', entry, superseded, 'cancelled', {}}
end
local sep = p.separator
local ended = transition_job(
  {job = old_key, old_status = fill(t[3], 'pending'), new_status = fill(t[3], 'cancelled'),
   events = fill(t[2], superseded), queue = queue, expiry = KEYS[6], content = f[5],
   status_events = KEYS[7],
   old_status_repo = fill(t[4], 'pending', f[2]), new_status_repo = fill(t[4], 'cancelled', f[2])},
  {expected = 'pending', target = 'cancelled', job_id = superseded, terminal = true,
   retention = p.retention, status_maxlen = p.status_maxlen, group = p.group,
   expiry_ms = score + p.retention * 1000,
   expiry_member = superseded .. sep .. 'cancelled' .. sep .. f[2] .. sep .. (f[3] or '') .. sep
     .. f[4],
   requeue_json = '', token_hash = '', lease_ended_by = '',
   fields = {'finished_at', p.fields.created_at, 'reason', p.reason, 'exit_code', ''}})
return {'created', entry, superseded, 'cancelled', ended[3]}
