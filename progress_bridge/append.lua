-- Atomic append of one event: history + snapshot + live feed (+ owner index) in one call.
-- KEYS: 1 job stream, 2 snapshot hash, 3 feed shard stream, 4 owner index (same hash tag)
-- ARGV: 1 payload JSON, 2 epoch candidate, 3 stream maxlen, 4 feed maxlen, 5 event type,
--       6 terminal "1"/"0", 7 ttl after end (s), 8 idle ttl (s), 9 job id,
--       10 owner-index score ("" = no owner), 11 increments JSON ("" = none),
--       12 snapshot fields: field NUL value NUL field NUL value ... (values are JSON text, which
--          never holds a raw NUL); one argument instead of many keeps client-side packing cheap
-- Increments (canvas children writing to their parent job): each counter is HINCRBY'd in the
-- snapshot; zones_completed/zones_total (and any other counter but progress_bp) replace the event's
-- fields of that name. progress_bp (the job's progress in basis points, summed from the children's
-- shares) lives only in the snapshot hash, never in the payload. The event's (and snapshot's)
-- percent is then progress_bp / 100 once the job has a progress_bp, else zones_completed /
-- zones_total; either way capped at 99, because only the terminal event (100) ends the job: a
-- client rounding 99.9 would show 100 % while the job still runs.
-- Returns {id, epoch, payload-or-""}; id is "" when a second terminal event was refused, and the
-- third element then names the terminal type already recorded.
local stream, snap, feed, owner_idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local payload = ARGV[1]

local epoch = redis.call('HGET', snap, 'epoch')
if (not epoch) or redis.call('EXISTS', stream) == 0 then
  -- A new stream, or one that was lost: a new epoch, so no stale cursor is trusted.
  epoch = ARGV[2]
  redis.call('HSET', snap, 'epoch', epoch)
end

local ended = redis.call('HGET', snap, 'terminal')
if ARGV[6] == '1' then
  if ended then return {'', epoch, ended} end
  redis.call('HSET', snap, 'terminal', ARGV[5])
end

local rewritten = ''
if ARGV[11] ~= '' then
  -- Counters summed across writers (canvas children): incremented here, so no update is lost.
  local event = cjson.decode(payload)
  local bp = nil
  for field, delta in pairs(cjson.decode(ARGV[11])) do
    local value = redis.call('HINCRBY', snap, field, delta)
    if field == 'progress_bp' then bp = value else event[field] = value end
  end
  if bp == nil then
    local stored = redis.call('HGET', snap, 'progress_bp')
    if stored then bp = tonumber(stored) end
  end
  local done, total = event['zones_completed'], event['zones_total']
  if bp ~= nil then
    event['percent'] = math.min(99, math.max(0, bp) / 100)
  elseif type(done) == 'number' and type(total) == 'number' and total > 0 then
    event['percent'] = math.min(99, math.floor(10000 * done / total) / 100)
  end
  payload = cjson.encode(event)
  rewritten = payload
end

local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], '*', 'e', payload)

local batch = {'last_id', id}
local field = nil
for part in string.gmatch(ARGV[12], '([^%z]+)') do
  if field == nil then
    field = part
  else
    -- Once a job has ended its status is final; counters summed above are not overwritten.
    local skip = (ended and field == 'status')
    if ARGV[11] ~= '' and (field == 'zones_completed' or field == 'zones_total') then
      skip = true
    end
    if not skip then
      batch[#batch + 1] = field
      batch[#batch + 1] = part
    end
    if #batch >= 1000 then
      redis.call('HSET', snap, unpack(batch))
      batch = {}
    end
    field = nil
  end
end
if rewritten ~= '' then
  local percent = cjson.decode(rewritten)['percent']
  if percent then
    batch[#batch + 1] = 'percent'
    batch[#batch + 1] = tostring(percent)
  end
end
if #batch > 0 then redis.call('HSET', snap, unpack(batch)) end

redis.call('XADD', feed, 'MAXLEN', '~', ARGV[4], '*', 'j', ARGV[9], 'i', id, 'p', epoch, 'e', payload)

local ttl = ARGV[8]
if ended or ARGV[6] == '1' then ttl = ARGV[7] end
redis.call('EXPIRE', stream, ttl)
redis.call('EXPIRE', snap, ttl)
if ARGV[10] ~= '' then
  redis.call('ZADD', owner_idx, 'NX', ARGV[10], ARGV[9])
  redis.call('EXPIRE', owner_idx, ARGV[8])
end
return {id, epoch, rewritten}
