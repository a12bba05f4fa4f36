import { createHash } from 'node:crypto';

// Records are hashes: s = state ('p' in progress, 'c' completed), f = fingerprint,
// o = owner token, n = renewal counter, p = payload. Whether an owner is alive
// is judged by the guard from the counter, on its own monotonic clock; the
// server's clock only drives the key's PX TTL (retention, garbage collection).
// l (milliseconds on the server's clock, now + retention) is written only for
// guards of earlier versions sharing the prefix, which read it as a lease
// expiry: it keeps them from taking over a live record.

/** KEYS[1] record; ARGV fingerprint, token, retainMs, takeover owner ('' for none), takeover renewals. */
export const BEGIN = `
local r = redis.call('HMGET', KEYS[1], 's', 'f', 'o', 'n', 'p')
local n = tonumber(r[4]) or 0
if r[1] == 'p' and ARGV[4] ~= '' and r[3] == ARGV[4] and n == tonumber(ARGV[5]) then r[1] = false end
if not r[1] then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 's', 'p', 'f', ARGV[1], 'o', ARGV[2], 'n', '0', 'l', string.format('%d', now + tonumber(ARGV[3])))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'acquired'}
end
if r[2] ~= ARGV[1] then return {'mismatch'} end
if r[1] == 'c' then return {'completed', r[5]} end
return {'in-progress', r[3], string.format('%d', n)}
`;

/** KEYS[1] record; ARGV token, retainMs. */
export const RENEW = `
local r = redis.call('HMGET', KEYS[1], 's', 'o')
if r[1] ~= 'p' or r[2] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'l', string.format('%d', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** KEYS[1] record; ARGV token, payload, ttlMs. */
export const COMPLETE = `
local r = redis.call('HMGET', KEYS[1], 's', 'o')
if r[1] ~= 'p' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'c', 'p', ARGV[2])
redis.call('HDEL', KEYS[1], 'o', 'l', 'n')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** KEYS[1] record; ARGV token. */
export const RELEASE = `
local r = redis.call('HMGET', KEYS[1], 's', 'o')
if r[1] ~= 'p' or r[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

export function sha1(script: string): string {
  return createHash('sha1').update(script).digest('hex');
}

// Shared breaker state: one hash per breaker key, one field per instance that
// has opened: "openedAt:until:trips", milliseconds on the server's clock (TIME
// inside the script, so every instance judges by one clock).

/** KEYS[1] breaker hash; ARGV instance, openMs, windowMs, trips. */
export const BREAKER_OPEN = `
local ty = redis.call('TYPE', KEYS[1]).ok
if ty ~= 'hash' and ty ~= 'none' then return {'foreign', ty} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open = math.floor(tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d:%d', now, now + open, tonumber(ARGV[4])))
local ttl = math.max(tonumber(ARGV[3]), open)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {'ok'}
`;

/** KEYS[1] breaker hash; ARGV instance. */
export const BREAKER_CLOSE = `
local ty = redis.call('TYPE', KEYS[1]).ok
if ty == 'none' then return {'ok'} end
if ty ~= 'hash' then return {'foreign', ty} end
redis.call('HDEL', KEYS[1], ARGV[1])
return {'ok'}
`;

/**
 * KEYS[1] breaker hash; ARGV quorum, windowMs. Drops opens older than the
 * window; answers 'open' with the time until fewer than quorum opens are still
 * open, or 'closed' with the number of opens counted. An open recorded after
 * the server's now (its clock stepped back) is moved to now with its duration,
 * so a step back lengthens no open by more than the open's own duration.
 */
export const BREAKER_READ = `
local ty = redis.call('TYPE', KEYS[1]).ok
if ty == 'none' then return {'closed', 0} end
if ty ~= 'hash' then return {'foreign', ty} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local quorum = tonumber(ARGV[1])
local since = now - tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
local left = {}
local trips = 0
for i = 1, #all, 2 do
  local a, u, n = string.match(all[i + 1], '^(%d+):(%d+):(%d+)$')
  if not a then return {'corrupt', all[i]} end
  a = tonumber(a)
  u = tonumber(u)
  if a > now then
    -- Opened after now: the server's clock stepped back since. The open is
    -- moved to start now, keeping its duration, instead of lasting the step.
    u = now + (u - a)
    a = now
    redis.call('HSET', KEYS[1], all[i], string.format('%d:%d:%s', a, u, n))
  end
  if a < since then
    redis.call('HDEL', KEYS[1], all[i])
  elseif u > now then
    left[#left + 1] = u - now
    if tonumber(n) > trips then trips = tonumber(n) end
  end
end
if #left < quorum then return {'closed', #left} end
table.sort(left, function(x, y) return x > y end)
return {'open', left[quorum], #left, trips}
`;

// Distributed semaphore: one hash per limit, one field per permit holder, its
// value the holder's renewal counter. Liveness is judged by contenders from the
// counters on their own clocks; the server's clock only drives the key's TTL.

/** KEYS[1] semaphore hash; ARGV holder, limit, ttlMs, then suspect/renewals pairs. */
export const SEMAPHORE_ACQUIRE = `
local ty = redis.call('TYPE', KEYS[1]).ok
if ty ~= 'hash' and ty ~= 'none' then return {'foreign', ty} end
for i = 4, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'acquired'}
end
return {'full', redis.call('HGETALL', KEYS[1])}
`;

/** KEYS[1] semaphore hash; ARGV holder, ttlMs. */
export const SEMAPHORE_RENEW = `
local ty = redis.call('TYPE', KEYS[1]).ok
if ty ~= 'hash' and ty ~= 'none' then return {'foreign', ty} end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'lost'} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok'}
`;

/** KEYS[1] semaphore hash; ARGV holder. */
export const SEMAPHORE_RELEASE = `
local ty = redis.call('TYPE', KEYS[1]).ok
if ty ~= 'hash' and ty ~= 'none' then return {'foreign', ty} end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return {'lost'} end
return {'ok'}
`;
