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
