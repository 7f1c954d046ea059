-- Batch append: many events of ONE shard (every key carries that shard's hash tag) in one call.
-- This text follows append.lua wrapped as `local function append_one(KEYS, ARGV) ... end` (see
-- streams.py), so each event is appended with exactly append.lua's semantics, in order.
-- KEYS: 4 per event, as append.lua.  ARGV: 12 per event, as append.lua (no increments here).
-- Returns one string, a line per event: "<id> <epoch>" when appended, " <epoch> <terminal type>"
-- when a second terminal event was refused, and "! <message>" when its append raised an error
-- (the events before and after it are still appended). One string instead of nested arrays:
-- parsing 3 replies per event cost the client more than building the event.
local lines = {}
for i = 0, (#KEYS / 4) - 1 do
  local k, a = 4 * i, 12 * i
  local ok, result = pcall(append_one,
    {KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]}, {unpack(ARGV, a + 1, a + 12)})
  if ok then
    lines[#lines + 1] = result[1] .. ' ' .. result[2] .. ' ' .. result[3]
  else
    local message = result
    if type(result) == 'table' then message = result['err'] or 'error' end
    lines[#lines + 1] = '! ' .. string.gsub(tostring(message), '\n', ' ')
  end
end
return table.concat(lines, '\n')
