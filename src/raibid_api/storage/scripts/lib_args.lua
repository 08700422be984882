-- Library (prepended first to every script that uses another library): reading ARGV.
-- The values of ARGV from index `first` on, as a list.
local function argv_from(first)
  local out = {}
  for i = first, #ARGV do
    out[#out + 1] = ARGV[i]
  end
  return out
end
