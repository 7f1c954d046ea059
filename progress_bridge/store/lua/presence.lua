-- Who watches the jobs of one shard: one sorted set per job, member = one watcher
-- ("<bridge>:<n>:<user>"), score = when it expires (server ms). A bridge adds its watchers when
-- they subscribe, refreshes them while they stay and removes them when they leave; a killed
-- bridge stops refreshing, so its watchers expire by themselves and the set with them.
-- KEYS: the jobs' presence sets (one slot).
-- ARGV: 1 ttl ms, 2 at most this many distinct users returned per job (0: only counts), then
-- for each key:
--   number of members to add or refresh, number to remove, the members to add, the members to remove.
-- Adds come first, then removes: a member both added and removed in one call (a join and its
-- leave queued together, e.g. after a failed call) ends removed.
-- Returns for each key {watchers, user, user, ...} after the change, expired members removed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local max_users = tonumber(ARGV[2])
local out = {}
local a = 3
for i, key in ipairs(KEYS) do
  local adds, removes = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  for j = a, a + adds - 1 do
    redis.call('ZADD', key, now + ttl, ARGV[j])
  end
  a = a + adds
  for j = a, a + removes - 1 do
    redis.call('ZREM', key, ARGV[j])
  end
  a = a + removes
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local count = redis.call('ZCARD', key)
  local row = {count}
  if count > 0 and adds > 0 then
    redis.call('PEXPIRE', key, ttl)
  end
  if count > 0 and max_users > 0 then
    local seen = {}
    local users = 0
    -- the users of the first thousand watchers: enough to name who watches, bounded per call
    for _, member in ipairs(redis.call('ZRANGE', key, 0, 999)) do
      if users >= max_users then break end
      local user = string.match(member, '^[^:]*:[^:]*:(.*)$') or ''
      if not seen[user] then
        seen[user] = true
        users = users + 1
        row[#row + 1] = user
      end
    end
  end
  out[i] = row
end
return out
