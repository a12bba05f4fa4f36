// GCRA in one script. The state of a key is one string: its theoretical
// arrival time (TAT) in integer microseconds on the server's clock (TIME), so
// every instance judges by one clock. Only this script writes it.
//
// KEYS[1]  the key's TAT
// ARGV[1]  emission interval, microseconds (may be fractional)
// ARGV[2]  burst (calls admitted at once on an idle key)
// ARGV[3]  horizon, microseconds: the furthest ahead of now a TAT can legitimately be
// ARGV[4]  longest delay the caller accepts for a reserved slot, microseconds
//
// Reply: {1, delayUs, remaining, resetUs} admitted (after delayUs),
//        {0, retryAfterUs, 0, resetUs} refused,
//        {'corrupt', what} when the key holds something this script did not write.
//
// A TAT further ahead than now + horizon can only come from a step back of the
// server's clock: it is clamped to now + horizon, so a step back of any size
// refuses for at most the horizon, instead of for the size of the step.
export const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'table' then return {'corrupt', 'type'} end
local tat = now
if raw then
  if not string.match(raw, '^%d+$') then return {'corrupt', 'value'} end
  local stored = tonumber(raw)
  if stored > now + horizon then stored = now + horizon end
  if stored > now then tat = stored end
end
local nexttat = tat + interval
local wait = nexttat - tolerance - now
if wait <= 0 or wait <= tonumber(ARGV[4]) then
  if wait < 0 then wait = 0 end
  local rounded = math.floor(nexttat + 0.5)
  redis.call('SET', KEYS[1], string.format('%d', rounded), 'PX', math.floor((rounded - now) / 1000) + 1)
  local remaining = 0
  if wait == 0 then remaining = math.floor((now + tolerance - nexttat) / interval + 0.000001) end
  return {1, math.ceil(wait), remaining, math.ceil(nexttat - now)}
end
return {0, math.ceil(wait), 0, math.ceil(tat - now)}
`;
