-- A running job's lease, from the worker process that holds it: renew it, or release it.
-- KEYS: 1 the shard's running set, 2 the shard's running info hash, 3 the job's snapshot hash.
-- ARGV: 1 job id, 2 holder token, 3 "renew" | "release", 4 lease (ms), 5 the epoch the holder
--       last wrote in ("" = unknown), 6 the greatest id the holder wrote in it ("" = unknown).
-- Returns one word:
--   "ok"     renewed until now + lease (server time), or released;
--   "lost"   (renew) the job has no snapshot: Redis lost its data (a restart without
--            persistence) or it expired; the holder re-states the job, which registers it again;
--   "moved"  (renew) the snapshot holds another epoch than the holder last wrote in;
--   "behind" (renew) the snapshot is older than what the holder wrote: writes Redis had
--            acknowledged were lost (a failover with asynchronous replication); the holder
--            re-states the job;
--   "ended"  (renew) the job has its terminal event (e.g. a reaper ended it): stop renewing;
--   "taken"  the lease is gone or held by another holder (a reaper or another attempt).
-- Renewing never creates a lease: only processing_started (append.lua) does, so a job a reaper
-- has claimed is never resurrected by a late heartbeat.
local job, token, mode = ARGV[1], ARGV[2], ARGV[3]
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

if mode == 'renew' then
  local state = redis.call('HMGET', KEYS[3], 'epoch', 'terminal', 'last_id')
  if not state[1] then return 'lost' end
  if ARGV[5] ~= '' and state[1] ~= ARGV[5] then return 'moved' end
  if state[2] then return 'ended' end
  if ARGV[6] and ARGV[6] ~= '' and state[3] then
    local wrote_ms, wrote_seq = id_parts(ARGV[6])
    local have_ms, have_seq = id_parts(state[3])
    if wrote_ms and have_ms and (have_ms < wrote_ms or (have_ms == wrote_ms and have_seq < wrote_seq)) then
      return 'behind'
    end
  end
end
local held = redis.call('HGET', KEYS[2], job)
if (not held) or string.sub(held, 1, #token + 1) ~= token .. '\n' then return 'taken' end
if mode == 'release' then
  redis.call('ZREM', KEYS[1], job)
  redis.call('HDEL', KEYS[2], job)
  return 'ok'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[4]), job)
return 'ok'
