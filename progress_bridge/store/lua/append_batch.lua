-- Batch append: many events of ONE shard (every key carries that shard's hash tag) in one call.
-- This text follows append.lua minus its last two lines (see streams.py), so each event is
-- appended by append.lua's own append_one, in order; the per-batch cache only skips reads and
-- writes whose outcome this call already knows (see append.lua's header).
-- KEYS: 1 the shard's running set, 2 its running info hash, then 4 per event, as append.lua's
-- KEYS 1-4.  ARGV: 13 per event, as append.lua's ARGV 1-13 (no increments, leases or claims).
-- Returns one string, a line per event: "<id> <epoch>" when appended, " <epoch> <terminal type>"
-- when a second terminal event was refused, and "! <message>" when its append raised an error
-- (the events before and after it are still appended). One string instead of nested arrays:
-- parsing 3 replies per event cost the client more than building the event.
local cache = {running = KEYS[1], running_info = KEYS[2]}
local lines = {}
for i = 0, ((#KEYS - 2) / 4) - 1 do
  local k = 2 + 4 * i
  local ok, id, epoch, extra = pcall(append_one, k, 13 * i, cache)
  if ok then
    lines[i + 1] = id .. ' ' .. epoch .. ' ' .. extra
  else
    -- What the failed append wrote is unknown here: its job's next event reads its state again.
    local job = cache[KEYS[k + 1]]
    if job then job.epoch = nil end
    local message = id
    if type(id) == 'table' then message = id['err'] or 'error' end
    lines[i + 1] = '! ' .. string.gsub(tostring(message), '\n', ' ')
  end
end
-- Each job's stream and snapshot TTL, once: the one its last appended event called for.
for _, stream in ipairs(cache) do
  local job = cache[stream]
  redis.call('EXPIRE', stream, job.ttl)
  redis.call('EXPIRE', job.snap, job.ttl)
end
return table.concat(lines, '\n')
