-- One page of jobs matching every given index, newest first, and how many match in all.
-- KEYS[1] scratch key (lives only inside this call)  KEYS[2..] index sets to intersect
-- ARGV[1] upper score bound (ms; the cursor's score, or '+inf')  ARGV[2] cursor job id ('' = none)
-- ARGV[3] lower score bound (ms; `since`, or '-inf')  ARGV[4] how many ids to return
-- returns {total, id, score, id, score, ...}; ids with the cursor's score that sort at or above the
-- cursor id were on an earlier page and are skipped
-- Lua's `>=` on strings follows the server's locale; Redis orders members by bytes.
local function at_or_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x > y
    end
  end
  return #a >= #b
end

local source = KEYS[2]
if #KEYS > 2 then
  local args = {'ZINTERSTORE', KEYS[1], #KEYS - 1}
  for i = 2, #KEYS do
    args[#args + 1] = KEYS[i]
  end
  args[#args + 1] = 'WEIGHTS'
  args[#args + 1] = 1
  for i = 3, #KEYS do
    args[#args + 1] = 0
  end
  redis.call(unpack(args))
  source = KEYS[1]
end

local total = redis.call('ZCOUNT', source, ARGV[3], '+inf')
local skip = 0
if ARGV[2] ~= '' then
  local ties = redis.call('ZREVRANGEBYSCORE', source, ARGV[1], ARGV[1])
  for _, id in ipairs(ties) do
    if at_or_after(id, ARGV[2]) then
      skip = skip + 1
    end
  end
end
local page = redis.call('ZREVRANGEBYSCORE', source, ARGV[1], ARGV[3], 'WITHSCORES', 'LIMIT', skip,
  tonumber(ARGV[4]))
if source == KEYS[1] then
  redis.call('DEL', KEYS[1])
end
local reply = {total}
for i = 1, #page do
  reply[#reply + 1] = page[i]
end
return reply
