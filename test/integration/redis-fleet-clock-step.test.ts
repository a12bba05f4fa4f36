// The fleet stores on a Redis whose wall clock steps (NTP, a VM resumed, an
// operator) while limits and opens are recorded: a server of this test's own
// under libfaketime (stepped-server.ts). The rate limit and the shared breaker
// judge by the server's TIME, so a step reaches them; the design bounds it: a
// step back refuses a key for at most its horizon, not for the step, and keeps
// an adopted open for at most its own duration.
import { circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { systemClock } from '@bulwark/clock';
import { isBulwarkError } from '@bulwark/core';
import { rateLimit } from '@bulwark/rate-limit';
import { redisBreakerStore, redisRateLimitStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from './services.ts';
import { findFaketime, type SteppedServer, startSteppedRedis } from './stepped-server.ts';

const preload = findFaketime();
if (typeof preload === 'string') {
  if (process.env.CI === 'true') throw new Error(`${preload}. CI requires it: run scripts/services.sh.`);
  console.log(`skipping the fleet clock step tests: ${preload}`);
}

describe.skipIf(typeof preload === 'string')('fleet stores on a Redis whose clock steps', () => {
  let server: SteppedServer;
  let client: ReturnType<typeof createClient>;
  beforeAll(async () => {
    server = await startSteppedRedis(preload as Exclude<typeof preload, string>);
    client = createClient({
      url: `redis://127.0.0.1:${server.port}`,
      socket: { connectTimeout: 2_000, reconnectStrategy: false },
    });
    client.on('error', () => {});
    await client.connect();
  }, 20_000);
  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  }, 20_000);

  const admitted = (call: Promise<unknown>) =>
    call.then(
      () => true,
      (error: unknown) => {
        if (!isBulwarkError(error, 'ERR_RATE_LIMITED')) throw error;
        return false;
      },
    );

  it('a step back of an hour refuses a rate-limited key for at most its horizon', async () => {
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', timeoutMs: 2_000 });
    // 10/s, burst 2: the horizon is 200 ms.
    const limit = rateLimit({ ratePerSecond: 10, burst: 2, store, key: 'stepped-back' });
    expect(await admitted(limit.execute(() => 1))).toBe(true);
    expect(await admitted(limit.execute(() => 1))).toBe(true);
    try {
      server.step(-3_600);
      const stepped = systemClock.now();
      let firstAdmittedMs: number | undefined;
      while (firstAdmittedMs === undefined && systemClock.now() - stepped < 5_000) {
        if (await admitted(limit.execute(() => 1))) firstAdmittedMs = systemClock.now() - stepped;
        else await sleep(20);
      }
      // The horizon (200 ms) plus one interval (100 ms), and room for a slow machine.
      expect(firstAdmittedMs).toBeDefined();
      expect(firstAdmittedMs!).toBeLessThan(1_000);
      // Then the limit holds as before: the burst was spent, one call per 100 ms.
      let more = 0;
      for (let i = 0; i < 5; i++) if (await admitted(limit.execute(() => 1))) more++;
      expect(more).toBeLessThanOrEqual(1);
    } finally {
      server.step(0);
    }
  }, 20_000);

  it('a step forward gives an active key at most one extra burst', async () => {
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', timeoutMs: 2_000 });
    // One call per 10 s, burst 3: nothing refills within the test but the step.
    const limit = rateLimit({ ratePerSecond: 0.1, burst: 3, store, key: 'stepped-forward' });
    let before = 0;
    for (let i = 0; i < 6; i++) if (await admitted(limit.execute(() => 1))) before++;
    expect(before).toBe(3);
    try {
      server.step(120);
      // The store's refused-key cache holds the key for its retry-after; the store
      // is asked afresh so that the step is what decides.
      const fresh = rateLimit({
        ratePerSecond: 0.1,
        burst: 3,
        store: redisRateLimitStore(client, { onStoreError: 'fail-closed', timeoutMs: 2_000 }),
        key: 'stepped-forward',
      });
      let after = 0;
      for (let i = 0; i < 10; i++) if (await admitted(fresh.execute(() => 1))) after++;
      expect(after).toBe(3);
    } finally {
      server.step(0);
    }
  }, 20_000);

  it('a step back of an hour keeps an adopted open for at most its own duration', async () => {
    const publisher = redisBreakerStore(client, { quorum: 1, instanceId: 'a' });
    const reader = redisBreakerStore(client, { quorum: 1, instanceId: 'b' });
    const a = circuitBreaker({ name: 'stepped', trip: consecutive(1), openMs: 1_500, store: publisher });
    const errors: unknown[] = [];
    a.onError(({ error }) => errors.push(error));
    await a.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    expect(a.state).toBe('open');
    // The publish is fire-and-forget: wait until it is in Redis.
    const started = systemClock.now();
    while ((await client.hLen(publisher.redisKey('stepped'))) === 0 && systemClock.now() - started < 2_000)
      await sleep(10);
    try {
      server.step(-3_600);
      const snapshot = await reader.read('stepped');
      expect(snapshot?.state).toBe('open');
      expect(snapshot!.openRemainingMs).toBeLessThanOrEqual(1_500);
      // Adopted by another instance's breaker, the open elapses like its own would.
      const b = circuitBreaker({ name: 'stepped', trip: consecutive(1), openMs: 1_500, store: reader });
      b.onError(({ error }) => errors.push(error));
      await b.syncFromStore();
      expect(b.state).toBe('open');
      await sleep(1_700);
      await expect(b.execute(() => 'probe')).resolves.toBe('probe');
      expect(b.state).toBe('closed');
      expect(errors).toEqual([]);
    } finally {
      server.step(0);
    }
  }, 20_000);
});
