-- Move the reports whose retry time has come from the delayed set into the outbox stream.
-- KEYS[1] delayed reports (zset, scored by not_before)  KEYS[2] outbox stream
-- ARGV[1] now (ms)  ARGV[2] most reports to move
-- returns how many reports moved
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]),
  'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local report = cjson.decode(member)
  local fields = {}
  for name, value in pairs(report) do
    fields[#fields + 1] = name
    fields[#fields + 1] = tostring(value)
  end
  redis.call('XADD', KEYS[2], '*', unpack(fields))
  redis.call('ZREM', KEYS[1], member)
end
return #due
