import { createHash } from 'node:crypto';

// Records are hashes: s = state ('p' in progress, 'c' completed), f = fingerprint,
// o = owner token, l = lease expiry (milliseconds on the Redis server's clock),
// p = payload. The key's PX TTL bounds the record's life. Every time is read
// from the server (TIME), never from a client.

/** KEYS[1] record; ARGV fingerprint, token, leaseMs, ttlMs. */
export const BEGIN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 's', 'f', 'l', 'p')
local lease = tonumber(ARGV[3])
if r[1] == 'p' and tonumber(r[3]) <= now then r[1] = false end
if not r[1] then
  redis.call('HSET', KEYS[1], 's', 'p', 'f', ARGV[1], 'o', ARGV[2], 'l', string.format('%d', now + lease))
  redis.call('PEXPIRE', KEYS[1], math.max(lease, tonumber(ARGV[4])))
  return {'acquired'}
end
if r[2] ~= ARGV[1] then return {'mismatch'} end
if r[1] == 'c' then return {'completed', r[4]} end
return {'in-progress', string.format('%d', tonumber(r[3]) - now)}
`;

/** KEYS[1] record; ARGV token, payload, ttlMs. */
export const COMPLETE = `
local r = redis.call('HMGET', KEYS[1], 's', 'o')
if r[1] ~= 'p' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'c', 'p', ARGV[2])
redis.call('HDEL', KEYS[1], 'o', 'l')
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
