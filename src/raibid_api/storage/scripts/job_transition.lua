-- Move a job from the status the caller expects to leave to a new one (lib_job_transition.lua).
-- KEYS[1] job hash  KEYS[2] index of the old status  KEYS[3] index of the new status
-- KEYS[4] job events stream  KEYS[5] queue stream  KEYS[6] expiry index
-- KEYS[7] the content key of what the job builds (deleted when the job ends, if it is the job's)
-- KEYS[8] index of the old status in the job's repo  KEYS[9] index of the new status in its repo
-- KEYS[10] the stream of every job's status changes  KEYS[11] the badge hash of the job's repo
-- ARGV[1] status the caller expects to leave  ARGV[2] new status  ARGV[3] job id
-- ARGV[4] '1' when the new status is terminal  ARGV[5] retention (s)  ARGV[6] MAXLEN of the status changes stream
-- ARGV[7] consumer group  ARGV[8] expiry score (ms)  ARGV[9] expiry member
-- ARGV[10] Job JSON of a fresh queue entry ('' = none; a requeue)
-- ARGV[11] sha256 of the job token the caller holds ('' = no token check)
-- ARGV[12] a time (ms) the job's lease must have ended by ('' = no lease check)
-- ARGV[13] a line for the job's log, written just before the status entry: {t, stream, line} as
-- JSON ('' = none)
-- ARGV[14..] field/value pairs, an empty value deletes the field
-- returns {1, events entry id} on success, {0, current status} when the job is elsewhere,
-- {-1} when the job does not exist, {-2} when the job token is not the job's current one
local fields = {}
for i = 14, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local reply = transition_job(
  {job = KEYS[1], old_status = KEYS[2], new_status = KEYS[3], events = KEYS[4], queue = KEYS[5],
   expiry = KEYS[6], content = KEYS[7], old_status_repo = KEYS[8], new_status_repo = KEYS[9],
   status_events = KEYS[10], badge = KEYS[11]},
  {expected = ARGV[1], target = ARGV[2], job_id = ARGV[3], terminal = ARGV[4] == '1',
   retention = tonumber(ARGV[5]), status_maxlen = tonumber(ARGV[6]), group = ARGV[7],
   expiry_ms = tonumber(ARGV[8]), expiry_member = ARGV[9], requeue_json = ARGV[10],
   token_hash = ARGV[11], lease_ended_by = ARGV[12], note = ARGV[13], fields = fields})
if reply[1] == 1 then
  return {1, reply[2]}
end
return reply
