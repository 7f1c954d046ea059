-- Running jobs whose lease has expired (server time), for a reaper to claim.
-- KEYS: 1 the shard's running set, 2 the shard's running info hash.  ARGV: 1 at most this many.
-- Returns {job, lease value, job, lease value, ...}. An entry without its info (which append.lua
-- always writes with it) is an orphan: it is removed here and not returned.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local jobs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, job in ipairs(jobs) do
  local value = redis.call('HGET', KEYS[2], job)
  if value then
    out[#out + 1] = job
    out[#out + 1] = value
  else
    redis.call('ZREM', KEYS[1], job)
  end
end
return out
