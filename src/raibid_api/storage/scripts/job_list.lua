-- One page of jobs matching every given index, newest first, and how many match in all.
-- KEYS[1] scratch key (used, then deleted, only to count a `since`-bounded intersection)
-- KEYS[2..] index sets to intersect
-- ARGV[1] upper score bound (ms; the cursor's score, or '+inf')  ARGV[2] cursor job id ('' = none)
-- ARGV[3] lower score bound (ms; `since`, or '-inf')  ARGV[4] how many ids to return
-- returns {total, id, score, id, score, ...}
-- The page walks the smallest set from the cursor down and keeps the ids every other set has, so
-- no intersection is ever materialised for a page; ids with the cursor's score that sort at or
-- above the cursor id were on an earlier page and are skipped.

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

local sets = {}
for i = 2, #KEYS do
  sets[#sets + 1] = {key = KEYS[i], size = redis.call('ZCARD', KEYS[i])}
end
table.sort(sets, function(a, b) return a.size < b.size end)
local driver = sets[1].key

local function count_all()
  if #sets == 1 then
    return redis.call('ZCOUNT', driver, ARGV[3], '+inf')
  end
  local keys = {}
  for i = 1, #sets do
    keys[#keys + 1] = sets[i].key
  end
  if ARGV[3] == '-inf' then
    local ok, n = pcall(redis.call, 'ZINTERCARD', #keys, unpack(keys))
    if ok then
      return n
    end
  end
  -- Redis < 7 has no ZINTERCARD, and it cannot bound a score range: store and count
  local args = {'ZINTERSTORE', KEYS[1], #keys}
  for i = 1, #keys do
    args[#args + 1] = keys[i]
  end
  args[#args + 1] = 'WEIGHTS'  -- every set scores by creation time: keep one set's score
  for i = 1, #keys do
    args[#args + 1] = i == 1 and 1 or 0
  end
  redis.call(unpack(args))
  local n = redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf')
  redis.call('DEL', KEYS[1])
  return n
end

local function in_every_set(id)
  for i = 2, #sets do
    if not redis.call('ZSCORE', sets[i].key, id) then
      return false
    end
  end
  return true
end

local limit = tonumber(ARGV[4])
local lower = tonumber(ARGV[3])  -- -inf parses as -inf
local reply = {count_all()}
local skip_ties = ARGV[2] ~= ''
-- walk the driver by rank: each step costs O(log N + chunk), however deep the page is
local rank = 0
if ARGV[1] ~= '+inf' then
  rank = redis.call('ZCOUNT', driver, '(' .. ARGV[1], '+inf')
end
local chunk = math.max(limit, 256)
local done = false
while not done and (#reply - 1) / 2 < limit do
  local rows = redis.call('ZREVRANGE', driver, rank, rank + chunk - 1, 'WITHSCORES')
  if #rows == 0 then
    break
  end
  for i = 1, #rows, 2 do
    local id, score = rows[i], rows[i + 1]
    if tonumber(score) < lower or (#reply - 1) / 2 >= limit then
      done = true
      break
    end
    local earlier = skip_ties and score == ARGV[1] and at_or_after(id, ARGV[2])
    if not earlier and in_every_set(id) then
      reply[#reply + 1] = id
      reply[#reply + 1] = score
    end
  end
  rank = rank + chunk
end
return reply
