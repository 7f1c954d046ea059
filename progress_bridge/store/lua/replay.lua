-- Everything a resume needs, read atomically: the epoch, how much history was trimmed, the
-- newest id, and the entries after a position.
-- KEYS: 1 job stream, 2 snapshot hash.  ARGV: 1 exclusive start ("-" = from the beginning).
-- Returns {} for an unknown job, else
-- {epoch, last_generated_id, first_kept_id, removed_count, entries}; removed_count is -1 on
-- Redis < 7, which does not report how many entries were ever added.
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if (not epoch) or redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local fields = {}
for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
local first = fields['recorded-first-entry-id']
if not first then
  first = ''
  if fields['first-entry'] then first = fields['first-entry'][1] end
end
local removed = -1
if fields['entries-added'] then removed = fields['entries-added'] - fields['length'] end
local start = ARGV[1]
if start ~= '-' then start = '(' .. start end
-- An exclusive start at the greatest possible id has nothing after it (Redis refuses the
-- range): no entries, and the caller finds the position "ahead" of the stream.
local entries = redis.pcall('XRANGE', KEYS[1], start, '+')
if entries['err'] then entries = {} end
return {epoch, fields['last-generated-id'], first, removed, entries}
