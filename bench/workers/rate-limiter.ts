// One instance of a service in the rate-limit accuracy benchmark: it shares one
// limit of 200 calls/s with the other instances through Redis, with bulwark's
// rateLimit (GCRA, burst 20) or rate-limiter-flexible's RateLimiterRedis (a fixed
// window of 200 points per second, its nearest setting: it has no burst). It
// connects, prints "ready", waits for "go" on stdin, then runs the load shape and
// prints one JSON line: admitted and refused counts and the time of every
// admission (milliseconds since the epoch, from this process's monotonic clock
// and time origin, so the processes of one host share the scale).
//
// Shapes:
//   greedy <seconds>  8 calls in flight, each next call as soon as the last answered
//   edge              instance 0 makes one call at 0 s; then every instance calls
//                     as fast as it can from 0.8 s to 1.2 s (across a window edge)
//
// Usage: node --conditions=bulwark-source rate-limiter.ts <bulwark|rlf> <url> <prefix> <key> <shape> <seconds> <index>
import { createInterface } from 'node:readline';
import { isBulwarkError } from '@bulwark/core';
import { rateLimit } from '@bulwark/rate-limit';
import { redisRateLimitStore } from '@bulwark/redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';

const [library, url, prefix, key, shape, seconds, index] = process.argv.slice(2) as [
  'bulwark' | 'rlf',
  string,
  string,
  string,
  'greedy' | 'edge',
  string,
  string,
];

const client = createClient({ url, socket: { connectTimeout: 2_000, reconnectStrategy: false } });
client.on('error', () => {});
await client.connect();

/** One call: resolves true when admitted, false when refused. */
let attempt: () => Promise<boolean>;
if (library === 'bulwark') {
  // A generous timeout: on a loaded machine a slow answer must not count as a refusal.
  const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 5_000 });
  const limit = rateLimit({ ratePerSecond: 200, burst: 20, store, key });
  attempt = () =>
    limit
      .execute(() => true)
      .catch((error: unknown) => {
        if (!isBulwarkError(error, 'ERR_RATE_LIMITED')) throw error;
        return false;
      });
} else {
  const limiter = new RateLimiterRedis({
    storeClient: client,
    useRedisPackage: true,
    keyPrefix: prefix,
    points: 200,
    duration: 1,
    // Refusals are answered in process until the window ends, as bulwark's are
    // from its refused-key cache; admissions are unchanged by it.
    inMemoryBlockOnConsumed: 200,
  });
  attempt = () =>
    limiter.consume(key).then(
      () => true,
      (rejection: unknown) => {
        if (rejection instanceof Error) throw rejection;
        return false;
      },
    );
}

const lines = createInterface({ input: process.stdin });
const go = new Promise<void>((resolve) => lines.on('line', (line) => line === 'go' && resolve()));
process.stdout.write('ready\n');
await go;
const start = performance.now();
const times: number[] = [];
let refused = 0;

async function one(): Promise<void> {
  if (await attempt()) times.push(Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000);
  else {
    refused++;
    // Let the event loop breathe: a refusal answered in process is immediate.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function callUntil(endMs: number): Promise<void> {
  while (performance.now() - start < endMs) await one();
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
if (shape === 'greedy') {
  await Promise.all(Array.from({ length: 8 }, () => callUntil(Number(seconds) * 1000)));
} else {
  if (index === '0') await one();
  await pause(800 - (performance.now() - start));
  await Promise.all(Array.from({ length: 8 }, () => callUntil(1_200)));
}
process.stdout.write(`${JSON.stringify({ admitted: times.length, refused, times })}\n`);
lines.close();
client.destroy();
