// Shared breaker state on a real Redis: the quorum, zero round trips per call on
// the happy path, and fail-static behaviour when Redis fails behind a TCP proxy.
import { type CircuitBreakerPolicy, circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { isBulwarkError } from '@bulwark/core';
import { FleetStoreError, redisBreakerStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { atPort, REDIS_URL, RUN_ID, redisAvailable } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:breaker:`;
let seq = 0;
const key = (name: string) => `${name}-${++seq}`;

type Client = ReturnType<typeof createClient>;

function connect(url: string): Promise<Client> {
  const client = createClient({
    url,
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
  client.on('error', () => {});
  return client.connect();
}

const boom = () => Promise.reject(new Error('downstream failed'));
const ok = () => Promise.resolve('ok');

/** Fails `breaker` until it opens (consecutive(2)). */
async function trip(breaker: CircuitBreakerPolicy): Promise<void> {
  for (let i = 0; i < 2; i++) await breaker.execute(boom).catch(() => {});
  expect(breaker.state).toBe('open');
}

/** Lets background publishes and reads land. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe.skipIf(!available)('redisBreakerStore', () => {
  let client: Client;
  beforeAll(async () => {
    client = await connect(REDIS_URL);
  });
  afterAll(async () => {
    if (client === undefined) return;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys);
    }
    client.destroy();
  });

  function fleet(storeKey: string, clock: VirtualClock, size = 4, quorum = 2) {
    return Array.from({ length: size }, (_, i) => {
      const store = redisBreakerStore(client, {
        quorum,
        windowMs: 60_000,
        prefix,
        instanceId: `instance-${i}`,
      });
      const breaker = circuitBreaker({ name: storeKey, trip: consecutive(2), openMs: 30_000, clock, store });
      const errors: unknown[] = [];
      breaker.onError(({ error }) => errors.push(error));
      return { store, breaker, errors };
    });
  }

  it('with quorum 2 of 4, one failing instance does not open the others and two do', async () => {
    const clock = new VirtualClock();
    const name = key('quorum');
    const [a, b, c, d] = fleet(name, clock);
    await trip(a!.breaker);
    await settle();
    await Promise.all([c!.breaker.syncFromStore(), d!.breaker.syncFromStore()]);
    expect(c!.breaker.state).toBe('closed');
    expect(d!.breaker.state).toBe('closed');
    await trip(b!.breaker);
    await settle();
    await Promise.all([c!.breaker.syncFromStore(), d!.breaker.syncFromStore()]);
    expect(c!.breaker.state).toBe('open');
    expect(d!.breaker.state).toBe('open');
    // Adopted for as long as two of the opens last (30 s on the server's clock).
    const remaining = c!.breaker.stats().openRemainingMs;
    expect(remaining).toBeGreaterThan(28_000);
    expect(remaining).toBeLessThanOrEqual(30_000);
    for (const i of [a, b, c, d]) expect(i!.errors).toEqual([]);
  });

  it('a closed breaker reads the verdict by itself at most once per syncIntervalMs while calls arrive', async () => {
    const clock = new VirtualClock();
    const name = key('lazy');
    const stores = [0, 1, 2].map((i) =>
      redisBreakerStore(client, { quorum: 2, prefix, instanceId: `lazy-${i}`, syncIntervalMs: 1_000 }),
    );
    const [a, b, c] = stores.map((store) =>
      circuitBreaker({ name, trip: consecutive(2), openMs: 30_000, clock, store }),
    );
    await c!.execute(ok); // the first call starts a read (nothing published yet)
    await settle();
    expect(stores[2]!.stats().roundTrips).toBe(1);
    await trip(a!);
    await trip(b!);
    await settle();
    for (let i = 0; i < 100; i++) await c!.execute(ok); // within the interval: no round trip, still closed
    expect(stores[2]!.stats().roundTrips).toBe(1);
    expect(c!.state).toBe('closed');
    await clock.advance(1_000);
    await c!.execute(ok); // starts a read; this call is not held up by it
    await settle();
    expect(stores[2]!.stats().roundTrips).toBe(2);
    expect(c!.state).toBe('open');
  });

  it('sends no round trip per call on the happy path: only transitions are published', async () => {
    const clock = new VirtualClock();
    const store = redisBreakerStore(client, { prefix, syncIntervalMs: 60_000 });
    const breaker = circuitBreaker({ name: key('happy'), trip: consecutive(2), openMs: 1_000, clock, store });
    for (let i = 0; i < 1_000; i++) await breaker.execute(ok);
    expect(store.stats().roundTrips).toBe(1); // the one background read of the first call
    await trip(breaker); // closed -> open: one publish
    await clock.advance(1_000);
    await breaker.execute(ok); // open -> half-open (sends nothing) -> closed: one publish
    await settle();
    expect(breaker.state).toBe('closed');
    expect(store.stats()).toEqual({ roundTrips: 3, failures: 0, timeouts: 0 });
  });

  it('a close withdraws only its own open, and an adopted open elapses without being published again', async () => {
    const clock = new VirtualClock();
    const name = key('withdraw');
    const [a, b, c] = fleet(name, clock, 3);
    await trip(a!.breaker);
    await trip(b!.breaker);
    await settle();
    await c!.breaker.syncFromStore();
    expect(c!.breaker.state).toBe('open');
    const fields = await client.hKeys(a!.store.redisKey(name));
    expect(fields.sort()).toEqual(['instance-0', 'instance-1']); // c adopted; it did not vote
    await clock.advance(30_000);
    await a!.breaker.execute(ok); // a probes for itself and closes: withdraws its open
    await settle();
    expect(await client.hKeys(a!.store.redisKey(name))).toEqual(['instance-1']);
    await b!.breaker.syncFromStore();
    expect(b!.breaker.state).toBe('half-open'); // closing stays local: a's close did not close b
    await c!.breaker.execute(ok); // c probes for itself and closes
    await settle();
    await c!.breaker.syncFromStore(); // b's open has elapsed: nothing to adopt again
    expect(c!.breaker.state).toBe('closed');
    expect(await client.hKeys(a!.store.redisKey(name))).toEqual(['instance-1']);
  });

  it('after a step back of the server clock, an open lasts its own duration, not the size of the step', async () => {
    const store = redisBreakerStore(client, { prefix, quorum: 1, windowMs: 60_000 });
    const name = key('stepped');
    // An open of 5 s recorded an hour ahead of the server's clock: what a step back of an hour
    // leaves behind.
    const [s] = (await client.sendCommand(['TIME'])) as [string, string];
    const openedAt = Number(s) * 1000 + 3_600_000;
    await client.hSet(store.redisKey(name), 'instance-0', `${openedAt}:${openedAt + 5_000}:1`);
    const snapshot = await store.read(name);
    expect(snapshot?.state).toBe('open');
    expect(snapshot!.openRemainingMs).toBeGreaterThan(4_000);
    expect(snapshot!.openRemainingMs).toBeLessThanOrEqual(5_000);
    // The open is moved to the server's present, so it elapses 5 s from now.
    const [field] = Object.values(await client.hGetAll(store.redisKey(name)));
    const [a, u] = field!.split(':').map(Number) as [number, number];
    const [s2] = (await client.sendCommand(['TIME'])) as [string, string];
    expect(a).toBeLessThanOrEqual(Number(s2) * 1000 + 1_000);
    expect(u - a).toBe(5_000);
  });

  it('a foreign or corrupt value fails the read with a typed error and leaves the breaker deciding locally', async () => {
    const clock = new VirtualClock();
    const store = redisBreakerStore(client, { prefix });
    const foreign = key('foreign');
    const corrupt = key('corrupt');
    await client.set(store.redisKey(foreign), 'not a hash');
    await client.hSet(store.redisKey(corrupt), 'someone', 'garbage');
    await expect(store.read(foreign)).rejects.toSatisfy(
      (e) => e instanceof FleetStoreError && e.reason === 'corrupt' && /holds a string/.test(e.message),
    );
    await expect(store.read(corrupt)).rejects.toSatisfy(
      (e) => isBulwarkError(e, 'ERR_STORE_UNAVAILABLE') && /"someone"/.test((e as Error).message),
    );
    const breaker = circuitBreaker({ name: foreign, trip: consecutive(2), clock, store });
    const errors: unknown[] = [];
    breaker.onError(({ error }) => errors.push(error));
    await breaker.syncFromStore();
    await trip(breaker);
    await settle();
    expect(breaker.state).toBe('open');
    // The reads and the publish are each reported, as typed errors.
    await vi.waitFor(() =>
      expect(errors.some((e) => (e as FleetStoreError).operation === 'publish')).toBe(true),
    );
    expect(errors.some((e) => (e as FleetStoreError).operation === 'read')).toBe(true);
    expect(errors.every((e) => e instanceof FleetStoreError && e.reason === 'corrupt')).toBe(true);
  });

  it('refuses invalid options with one error listing every violation', () => {
    let error: unknown;
    try {
      redisBreakerStore(client, {
        quorum: 0,
        windowMs: -1,
        syncIntervalMs: Number.NaN,
        timeoutMs: 0,
        instanceId: '',
        prefix: 7 as unknown as string,
      });
    } catch (e) {
      error = e;
    }
    expect(isBulwarkError(error, 'ERR_INVALID_OPTIONS')).toBe(true);
    const message = (error as Error).message;
    for (const option of ['quorum', 'windowMs', 'syncIntervalMs', 'timeoutMs', 'instanceId', 'prefix'])
      expect(message).toContain(option);
    expect(() => redisBreakerStore({} as never)).toThrow(/client/);
  });

  it('a frozen or reset Redis changes nothing locally: failures are counted, reported, and the process goes on', async () => {
    const url = new URL(REDIS_URL);
    const proxy = await startProxy(url.hostname, Number(url.port || 6379));
    const proxied = await connect(atPort(REDIS_URL, proxy.port));
    try {
      const name = key('faults');
      const store = redisBreakerStore(proxied, { prefix, timeoutMs: 200, syncIntervalMs: 1 });
      const breaker = circuitBreaker({ name, trip: consecutive(2), openMs: 200, store });
      const errors: unknown[] = [];
      breaker.onError(({ error }) => errors.push(error));
      proxy.freeze();
      const started = performance.now();
      for (let i = 0; i < 50; i++) expect(await breaker.execute(ok)).toBe('ok');
      expect(performance.now() - started).toBeLessThan(500); // nothing waited for the frozen store
      await trip(breaker); // opens locally, the publish hangs
      await expect(breaker.execute(ok)).rejects.toSatisfy((e) => isBulwarkError(e, 'ERR_CIRCUIT_OPEN'));
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(store.stats().timeouts).toBeGreaterThanOrEqual(2);
      expect(errors.some((e) => e instanceof FleetStoreError && e.reason === 'timeout')).toBe(true);
      // Connection reset: commands fail at once, the breaker still probes and closes by itself.
      await proxy.reset();
      expect(await breaker.execute(ok)).toBe('ok');
      expect(breaker.state).toBe('closed');
      await settle();
      expect(store.stats().failures).toBeGreaterThan(store.stats().timeouts);
      expect(errors.some((e) => e instanceof FleetStoreError && e.reason === 'unavailable')).toBe(true);
    } finally {
      if (proxied.isOpen) proxied.destroy();
      await proxy.cut();
    }
  });
});
