-- Library (prepended to job_transition.lua and job_create.lua): move a job from the status
-- the caller expects to leave to a new one: the hash, the status indexes, the queue entry, the
-- retention TTLs and a `status` entry in the job's event stream.
-- k.job  hash   k.old_status / k.new_status  index of the old / new status
-- k.events  the job's event stream   k.queue  queue stream   k.expiry  expiry index
-- k.status_events  the stream of every job's status changes (capped at a.status_maxlen)
-- k.content  the content key of what the job builds (deleted when the job ends, if it is the
-- job's)   k.old_status_repo / k.new_status_repo  index of the old / new status in its repo
-- k.badge  the badge hash of the job's repo (nil = none): a success or failure of a branch's job
-- (not a pull request's) newer than the one it holds becomes the branch's badge, and the job's
-- `_default_branch` the repo's default branch
-- a.expected  status the caller expects to leave   a.target  new status   a.job_id
-- a.terminal  the new status is terminal   a.retention (s)   a.status_maxlen
-- a.group  consumer group   a.expiry_ms  expiry score   a.expiry_member
-- a.requeue_json  Job JSON of a fresh queue entry ('' = none; a requeue)
-- a.token_hash  sha256 of the job token the caller holds ('' = no token check)
-- a.lease_ended_by  a time (ms) the job's lease must have ended by ('' = no lease check)
-- a.note  a line for the job's log ({t, stream, line} as JSON), written just before the status
-- entry, so a reader sees why the status changed ('' or nil = none)
-- a.fields  field/value pairs, flat; an empty value deletes the field
-- The job's own stream is not trimmed here: agent_append_logs.lua keeps it within logs.max_lines.
-- returns {1, events entry id, the job's public fields after, flat} on success,
-- {0, current status} when the job is elsewhere, {-1} when the job does not exist,
-- {-2} when the job token is not the job's current one
local function record_badge(badge, job, target, job_id, score)
  if target ~= 'success' and target ~= 'failed' then
    return
  end
  local found = redis.call('HMGET', job, 'branch', 'event', '_default_branch')
  local default = found[3]
  if default and default ~= '' then
    redis.call('HSET', badge, 'default', default)
  end
  local branch = found[1]
  if not branch or branch == '' or found[2] == 'pull_request' then
    return
  end
  local field = 'branch:' .. branch
  local held = redis.call('HGET', badge, field)
  if held and tonumber(string.match(held, '^%d+')) > tonumber(score) then
    return
  end
  redis.call('HSET', badge, field, score .. ' ' .. target .. ' ' .. job_id)
end

local function transition_job(k, a)
  local current = redis.call('HGET', k.job, 'status')
  if not current then
    return {-1}
  end
  if a.token_hash ~= '' and redis.call('HGET', k.job, '_token') ~= a.token_hash then
    return {-2}
  end
  if current ~= a.expected then
    return {0, current}
  end
  if a.lease_ended_by ~= '' and
      tonumber(redis.call('HGET', k.job, '_lease_until') or '0') >= tonumber(a.lease_ended_by) then
    return {0, current}
  end

  local job_id = a.job_id
  redis.call('HSET', k.job, 'status', a.target)
  for i = 1, #a.fields, 2 do
    if a.fields[i + 1] == '' then
      redis.call('HDEL', k.job, a.fields[i])
    else
      redis.call('HSET', k.job, a.fields[i], a.fields[i + 1])
    end
  end

  local score = redis.call('HGET', k.job, '_created_ms')
  redis.call('ZREM', k.old_status, job_id)
  redis.call('ZADD', k.new_status, score, job_id)
  redis.call('ZREM', k.old_status_repo, job_id)
  redis.call('ZADD', k.new_status_repo, score, job_id)

  local requeue = a.requeue_json ~= ''
  if a.terminal or requeue then
    local entry = redis.call('HGET', k.job, '_entry')
    if entry then
      -- pcall: a group Redis lost (NOGROUP) has nothing to acknowledge; the rest goes on
      redis.pcall('XACK', k.queue, a.group, entry)
      redis.call('XDEL', k.queue, entry)
      redis.call('HDEL', k.job, '_entry')
    end
  end
  if requeue then
    local entry = redis.call('XADD', k.queue, '*', 'job_id', job_id, 'job', a.requeue_json)
    redis.call('HSET', k.job, '_entry', entry)
  end

  local public = {}
  local flat = redis.call('HGETALL', k.job)
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 1) ~= '_' then
      public[#public + 1] = flat[i]
      public[#public + 1] = flat[i + 1]
    end
  end
  if a.note and a.note ~= '' then
    local note = cjson.decode(a.note)
    local n = redis.call('HINCRBY', k.job, '_log_n', 1)
    redis.call('XADD', k.events, '*', 'type', 'log', 'n', n, 't', note.t, 'stream', note.stream,
      'line', note.line)
  end
  local event = redis.call('XADD', k.events, '*', 'type', 'status', unpack(public))
  redis.call('XADD', k.status_events, 'MAXLEN', '~', a.status_maxlen, '*', 'job_id', job_id,
    unpack(public))

  if a.terminal then
    if redis.call('GET', k.content) == job_id then
      redis.call('DEL', k.content)
    end
    redis.call('EXPIRE', k.job, a.retention)
    redis.call('EXPIRE', k.events, a.retention)
    redis.call('ZADD', k.expiry, a.expiry_ms, a.expiry_member)
    if k.badge then
      record_badge(k.badge, k.job, a.target, job_id, score)
    end
  end
  return {1, event, public}
end
