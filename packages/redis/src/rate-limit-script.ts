import { RATE_LIMIT_MAX_WAIT_MS } from '@bulwark/rate-limit';

// GCRA in one script. The state of a key is one string: its theoretical
// arrival time (TAT) in integer microseconds on the server's clock (TIME), so
// every instance judges by one clock. Only this script writes it.
//
// KEYS[1]  the key's TAT
// ARGV[1]  emission interval, microseconds (may be fractional)
// ARGV[2]  tolerance: burst × interval, microseconds (may be fractional)
// ARGV[3]  horizon, microseconds: the furthest ahead of now a TAT can legitimately be
// ARGV[4]  longest delay the caller accepts for a reserved slot, microseconds
// ARGV[5]  expiry period, microseconds: a whole number of milliseconds
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
// A TAT further ahead than now + horizon is judged as now + horizon. Another
// limiter on the key may reserve longer waits (a larger horizon), so that
// alone changes nothing stored. A TAT further ahead than any limiter may
// reserve (the drain time plus RATE_LIMIT_MAX_WAIT_MS) can only come from a
// step back of the server's clock: then the clamped TAT is written, even when
// the call is refused, so a step back of any size refuses a key for at most
// about a minute plus its drain time, and at most the horizon once it is
// beyond that, instead of for the size of the step.
//
// Expiry: the key expires at the end of the period (ARGV[5]) that holds its
// TAT, so it outlives its TAT by less than one period. A write whose TAT stays
// in the period of the stored TAT keeps the key's expiry (KEEPTTL: that expiry
// is the end of this period already); a write that leaves it sets the end of
// the new TAT's period (PXAT). Setting an expiry costs the server about as
// much as the rest of the write, and a busy key leaves a period once per
// period, not once per decision. The period comes from the rule (the key's
// drain time, between 1 ms and 1 s), so every instance sharing a limit uses
// the same periods. The stored TAT is compared before it is clamped: a TAT
// beyond the horizon gets a new expiry.
export const GCRA = `
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local raw = redis.pcall('GET', KEYS[1])
local tat = now
local stored = -1
local clamped = false
if raw then
  if type(raw) == 'table' then return {'corrupt', 'type'} end
  if not string.match(raw, '^%d+$') then return {'corrupt', 'value'} end
  stored = tonumber(raw)
  if stored > now then
    tat = stored
    local limit = now + ARGV[3]
    if tat > limit then
      tat = limit
      clamped = stored > now + ARGV[2] + ARGV[1] + ${RATE_LIMIT_MAX_WAIT_MS * 1000}
    end
  end
end
local period = tonumber(ARGV[5])
local nexttat = tat + ARGV[1]
local wait = nexttat - ARGV[2] - now
if wait > 0 and wait > tonumber(ARGV[4]) then
  if clamped then
    local at = tat - tat % period + period
    redis.call('SET', KEYS[1], string.format('%d', tat), 'PXAT', string.format('%d', at / 1000))
  end
  return -math.ceil(wait)
end
local rounded = math.floor(nexttat + 0.5)
local from = rounded - rounded % period
if stored >= from and stored < from + period then
  redis.call('SET', KEYS[1], string.format('%d', rounded), 'KEEPTTL')
else
  redis.call('SET', KEYS[1], string.format('%d', rounded), 'PXAT', string.format('%d', (from + period) / 1000))
end
if wait > 0 then return {1, math.ceil(wait), 0, rounded - now} end
return rounded - now
`;
