// GCRA in one script. The state of a key is one string: its theoretical
// arrival time (TAT) in integer microseconds on the server's clock (TIME), so
// every instance judges by one clock. Only this script writes it.
//
// KEYS[1]  the key's TAT
// ARGV[1]  emission interval, microseconds (may be fractional)
// ARGV[2]  tolerance: burst × interval, microseconds (may be fractional)
// ARGV[3]  horizon, microseconds: the furthest ahead of now a TAT can legitimately be
// ARGV[4]  longest delay the caller accepts for a reserved slot, microseconds
//
// Reply:
//   an integer >= 0        admitted now; the new TAT minus now, microseconds
//   an integer < 0         refused; minus the microseconds until a call would conform
//   {1, delayUs, 0, resetUs}  admitted after delayUs (a slot reserved in wait mode)
//   {'corrupt', what}      the key holds something this script did not write
//
// The common replies are plain integers because the server turns a table into
// a reply field by field; with TIME, GET and SET this keeps the script within
// a few microseconds of server time.
//
// A TAT further ahead than now + horizon can only come from a step back of the
// server's clock: it is clamped to now + horizon, so a step back of any size
// refuses for at most the horizon, instead of for the size of the step.
export const GCRA = `
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local raw = redis.pcall('GET', KEYS[1])
local tat = now
if raw then
  if type(raw) == 'table' then return {'corrupt', 'type'} end
  if not string.match(raw, '^%d+$') then return {'corrupt', 'value'} end
  local stored = tonumber(raw)
  if stored > now then
    local limit = now + ARGV[3]
    if stored > limit then stored = limit end
    tat = stored
  end
end
local nexttat = tat + ARGV[1]
local wait = nexttat - ARGV[2] - now
if wait > 0 and wait > tonumber(ARGV[4]) then return -math.ceil(wait) end
local rounded = math.floor(nexttat + 0.5)
redis.call('SET', KEYS[1], string.format('%d', rounded), 'PX', string.format('%d', (rounded - now) / 1000 + 1))
if wait > 0 then return {1, math.ceil(wait), 0, rounded - now} end
return rounded - now
`;
