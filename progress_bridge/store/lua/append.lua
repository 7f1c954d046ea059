-- Atomic append of one event: history + snapshot + live feed (+ owner index, + the job's lease)
-- in one call.
-- KEYS: 1 job stream, 2 snapshot hash, 3 feed shard stream, 4 owner index, 5 the shard's running
--       set (job -> lease deadline, server ms), 6 the shard's running info hash (job -> lease
--       holder's token, a newline, what a reaper needs); all carry the same hash tag
-- ARGV: 1 payload JSON, 2 epoch candidate, 3 stream maxlen, 4 feed maxlen (0: per-job
--       notifications instead of the feed stream, KEYS 3 then being the channel prefix), 5 type,
--       6 terminal "1"/"0", 7 ttl after end (s), 8 idle ttl (s), 9 job id,
--       10 owner-index score ("" = no owner), 11 increments JSON ("" = none),
--       12 snapshot fields: field NUL value NUL field NUL value ... (values are JSON text, which
--          never holds a raw NUL); one argument instead of many keeps client-side packing cheap
--       13 stream budget increment ("" = none): room for more events kept in this job's history
--          (the declared zones' events); the job keeps ARGV 3 + all increments so far, whoever
--          appends, so a writer that knows nothing of the zones never trims them
--       14 lease (ms, "" = none): a processing_started that carries one registers the job as
--          running until now + lease (server time); the running worker renews it (lease.lua)
--       15 lease value (with 14): "<holder token>\n<info JSON>"
--       16 claim ("" = none): append only if the job's lease still holds exactly this value and
--          has expired (a reaper's claim; two reapers never both append). Else nothing is
--          written and the reply is {'', '', '~lease'}.
-- A batch (append_batch.lua) passes KEYS 1-4 and ARGV 1-13 per event, and its shard's running
-- set and info hash once: batches carry no leases and no claims.
-- A terminal event or a processing_retrying ends the attempt: the job leaves the running set.
-- Increments (canvas children writing to their parent job): each counter is HINCRBY'd in the
-- snapshot; zones_completed/zones_total (and any other counter but progress_bp) replace the event's
-- fields of that name. progress_bp (the job's progress in basis points, summed from the children's
-- shares) lives only in the snapshot hash, never in the payload. The event's (and snapshot's)
-- percent is then progress_bp / 100 once the job has a progress_bp, else zones_completed /
-- zones_total; either way capped at 99, because only the terminal event (100) ends the job: a
-- client rounding 99.9 would show 100 % while the job still runs.
-- After a job's terminal event only its export events are appended: a second terminal event, or
-- any other event of its processing (a worker that has not noticed a cancel yet), is refused, so
-- the job's history ends with its terminal event and its numbers stay those of its end.
-- Returns {id, epoch, payload-or-""}; id is "" when an event was refused because the job had
-- ended, and the third element then names the terminal type already recorded.
--
-- The body is one function, append_one(k, a, cache), reading KEYS[k + 1..k + 6] and
-- ARGV[a + 1..a + 16] (with a cache: KEYS[k + 1..k + 4] and ARGV[a + 1..a + 13], the running
-- keys from the cache); this script calls it once with no cache, and append_batch.lua (which
-- follows this text minus its last line) calls it per event with one cache per batch call. The
-- cache carries, per job, what this function itself last wrote: the epoch, the terminal type,
-- the stream budget and the stream/snapshot TTL, which the batch then sets once per job at its
-- end (the whole batch is one script call, so no reader sees the keys between two of its events,
-- and TTLs are computed from the script's frozen time either way), and the owner index ZADD NX
-- + EXPIRE, done at a job's first event only (the later ones change nothing).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function append_one(k, a, cache)
  local stream, snap, feed, owner_idx = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local running, running_info, lease_ms, claim
  if cache then
    running, running_info, lease_ms, claim = cache.running, cache.running_info, '', ''
  else
    running, running_info = KEYS[k + 5], KEYS[k + 6]
    lease_ms, claim = ARGV[a + 14], ARGV[a + 16]
  end
  local payload = ARGV[a + 1]
  local terminal = ARGV[a + 6] == '1'
  local increments = ARGV[a + 11]
  local job_id = ARGV[a + 9]

  if claim ~= '' then
    local deadline = redis.call('ZSCORE', running, job_id)
    if redis.call('HGET', running_info, job_id) ~= claim or (not deadline)
        or tonumber(deadline) > now_ms() then
      return '', '', '~lease'
    end
  end

  local job = cache and cache[stream]
  local epoch, ended, budget
  if job and job.epoch then
    -- Known from this batch's earlier events of the job: the stream exists and holds epoch.
    epoch, ended, budget = job.epoch, job.ended, job.budget
  else
    local state = redis.call('HMGET', snap, 'epoch', 'terminal', 'stream_budget')
    epoch, ended, budget = state[1], state[2], tonumber(state[3]) or 0
    if (not epoch) or redis.call('EXISTS', stream) == 0 then
      -- A new stream, or one that was lost: a new epoch, so no stale cursor is trusted.
      epoch = ARGV[a + 2]
      redis.call('HSET', snap, 'epoch', epoch)
    end
  end

  if terminal then
    if ended then
      if claim ~= '' then
        redis.call('ZREM', running, job_id)
        redis.call('HDEL', running_info, job_id)
      end
      return '', epoch, ended
    end
    redis.call('HSET', snap, 'terminal', ARGV[a + 5])
  elseif ended and string.sub(ARGV[a + 5], 1, 7) ~= 'export_' then
    -- The job has ended: its processing is over, and its numbers stay those of its end. A worker
    -- that has not noticed a cancel yet writes nothing more; only the job's exports go on.
    if claim ~= '' then
      redis.call('ZREM', running, job_id)
      redis.call('HDEL', running_info, job_id)
    end
    return '', epoch, ended
  end

  local rewritten = ''
  if increments ~= '' then
    -- Counters summed across writers (canvas children): incremented here, so no update is lost.
    local event = cjson.decode(payload)
    local bp = nil
    for field, delta in pairs(cjson.decode(increments)) do
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

  local more = tonumber(ARGV[a + 13]) or 0
  if more > 0 then budget = redis.call('HINCRBY', snap, 'stream_budget', more) end
  local maxlen = tonumber(ARGV[a + 3]) + budget
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', payload)

  local batch = {'last_id', id}
  local n = 2
  local field = nil
  for part in string.gmatch(ARGV[a + 12], '([^%z]+)') do
    if field == nil then
      field = part
    else
      -- Once a job has ended its status is final; counters summed above are not overwritten.
      local skip = (ended and field == 'status')
      if increments ~= '' and (field == 'zones_completed' or field == 'zones_total') then
        skip = true
      end
      if not skip then
        batch[n + 1] = field
        batch[n + 2] = part
        n = n + 2
      end
      if n >= 1000 then
        redis.call('HSET', snap, unpack(batch, 1, n))
        n = 0
      end
      field = nil
    end
  end
  if rewritten ~= '' then
    local percent = cjson.decode(rewritten)['percent']
    if percent then
      batch[n + 1] = 'percent'
      batch[n + 2] = tostring(percent)
      n = n + 2
    end
  end
  if n > 0 then redis.call('HSET', snap, unpack(batch, 1, n)) end

  if ARGV[a + 4] == '0' then
    -- Per-job notifications (feed_mode "notify"): KEYS 3 is the shard's channel prefix. The
    -- event goes to its job's channel and to its owner's and document's room channels, all
    -- tagged like this script's keys, so the publishes stay in its slot.
    local message = job_id .. '\0' .. id .. '\0' .. epoch .. '\0' .. payload
    redis.call('SPUBLISH', feed .. ':job:' .. job_id, message)
    local meta = redis.call('HMGET', snap, 'owner', 'document_id')
    if meta[1] then
      redis.call('SPUBLISH', feed .. ':user:' .. cjson.decode(meta[1]), message)
    end
    if meta[2] then
      redis.call('SPUBLISH', feed .. ':doc:' .. cjson.decode(meta[2]), message)
    end
  else
    redis.call('XADD', feed, 'MAXLEN', '~', ARGV[a + 4], '*', 'j', job_id, 'i', id, 'p', epoch,
      'e', payload)
  end

  local kind = ARGV[a + 5]
  if terminal or kind == 'processing_retrying' then
    -- The attempt is over (the job ended, or its next attempt waits in the queue).
    redis.call('ZREM', running, job_id)
    redis.call('HDEL', running_info, job_id)
  elseif lease_ms ~= '' and not ended then
    redis.call('ZADD', running, now_ms() + tonumber(lease_ms), job_id)
    redis.call('HSET', running_info, job_id, ARGV[a + 15])
  end

  if terminal then ended = kind end
  local ttl = ARGV[a + 8]
  if ended then ttl = ARGV[a + 7] end
  local owner_score = ARGV[a + 10]
  if cache then
    if not job then
      job = {snap = snap, owned = {}}
      cache[stream] = job
      cache[#cache + 1] = stream
    end
    job.epoch, job.ended, job.ttl, job.budget = epoch, ended, ttl, budget
    if owner_score ~= '' and not job.owned[owner_idx] then
      job.owned[owner_idx] = true
      redis.call('ZADD', owner_idx, 'NX', owner_score, job_id)
      redis.call('EXPIRE', owner_idx, ARGV[a + 8])
    end
  else
    redis.call('EXPIRE', stream, ttl)
    redis.call('EXPIRE', snap, ttl)
    if owner_score ~= '' then
      redis.call('ZADD', owner_idx, 'NX', owner_score, job_id)
      redis.call('EXPIRE', owner_idx, ARGV[a + 8])
    end
  end
  return id, epoch, rewritten
end

local id, epoch, rewritten = append_one(0, 0, nil)
return {id, epoch, rewritten}
