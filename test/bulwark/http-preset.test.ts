import { sleep, VirtualClock } from '@bulwark/clock';
import { HTTP_CLIENT_DEFAULTS, isBulwarkError, presets } from 'bulwark';
import { describe, expect, it } from 'vitest';
import { fakeFetch, hang } from '../fetch/helpers.ts';

const origin = 'http://inventory.test';

describe('presets.httpClient()', () => {
  it('has the documented defaults', () => {
    expect(HTTP_CLIENT_DEFAULTS).toEqual({
      deadlineMs: 10_000,
      attemptTimeoutMs: 2_000,
      adaptiveAttemptTimeout: true,
      maxAttempts: 4,
      idempotencyKeys: true,
      consecutiveFailures: 20,
      failureRateThreshold: 0.75,
      minimumCalls: 10,
      failureWindowMs: 2_000,
      openMs: { initialMs: 250, maxMs: 500 },
      probeTimeoutMs: 250,
      rideThroughMaxWaiters: 256,
      maxConcurrentPerOrigin: 64,
      maxQueuePerOrigin: 256,
      queueTimeoutMs: 1_000,
    });
    expect(Object.isFrozen(HTTP_CLIENT_DEFAULTS)).toBe(true);
  });

  it('gives each attempt 2 s and the whole call 10 s, then gives up with the deadline', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = fakeFetch(hang);
    const api = presets.httpClient({ fetch, clock, random: () => 0 });
    const result = api(`${origin}/items/1`).then(
      () => ({ at: clock.now(), error: undefined as unknown }),
      (error: unknown) => ({ at: clock.now(), error }),
    );
    await clock.runAll();
    const { at, error } = await result;
    // Four attempts of 2 s each (full jitter with random 0 waits 0 ms): the attempts ran out first.
    expect(seen).toHaveLength(4);
    expect(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(at).toBe(8_000);
  });

  it('adds one Idempotency-Key to a POST and keeps it on every attempt', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = fakeFetch((_, attempt) =>
      attempt === 1 ? new Response('busy', { status: 503 }) : new Response('{"id":7}', { status: 201 }),
    );
    const api = presets.httpClient({ fetch, clock, random: () => 0 });
    const response = api(`${origin}/reservations`, { method: 'POST', body: '{"sku":"A-1"}' });
    await clock.runAll();
    expect((await response).status).toBe(201);
    expect(seen).toHaveLength(2);
    const keys = seen.map((s) => s.request.headers.get('idempotency-key'));
    expect(keys[0]).toMatch(/^"[0-9A-Z]{26}"$/);
    expect(keys[1]).toBe(keys[0]);
    expect(seen.map((s) => s.body)).toEqual(['{"sku":"A-1"}', '{"sku":"A-1"}']);
  });

  it('opens the origin breaker after 20 failures in a row, and not on fewer', async () => {
    const clock = new VirtualClock();
    let n = 0;
    // 30 answers, then failures only: the rate (75% of the last 2 s) would open
    // it at the 90th failure, the run of 20 opens it at the 20th.
    const { fetch } = fakeFetch(() => new Response('', { status: ++n <= 30 ? 200 : 500 }));
    const api = presets.httpClient({ fetch, clock, maxAttempts: 1 });
    for (let i = 0; i < 30; i++) expect((await api(`${origin}/x`)).status).toBe(200);
    for (let i = 0; i < 19; i++) expect((await api(`${origin}/x`)).status).toBe(500);
    expect(api.breakers?.peek(origin)?.state).toBe('closed');
    expect((await api(`${origin}/x`)).status).toBe(500);
    expect(api.breakers?.peek(origin)?.state).toBe('open');
    expect(api.breakers?.peek(origin)?.stats().openRemainingMs).toBe(250);
  });

  it('opens when three quarters of the calls in the last 2 s fail, and stays closed while one in three answers', async () => {
    const run = async (answerEvery: number): Promise<{ state: string | undefined; calls: number }> => {
      const clock = new VirtualClock();
      let n = 0;
      // Never 10 failures in a row: only the rate can open it.
      const { fetch } = fakeFetch(() => new Response('', { status: ++n % answerEvery === 0 ? 200 : 503 }));
      const api = presets.httpClient({ fetch, clock, maxAttempts: 1 });
      let calls = 0;
      while (calls < 200 && api.breakers!.peek(origin)?.state !== 'open') {
        await api(`${origin}/x`);
        calls++;
        await clock.advance(20);
      }
      return { state: api.breakers!.peek(origin)?.state, calls };
    };
    // 4 of 5 fail (80%): open once the rate over at least 10 calls reaches 75%.
    expect(await run(5)).toEqual({ state: 'open', calls: 10 });
    // 2 of 3 fail (67%): 200 calls over 4 s, and it never opens.
    expect(await run(3)).toEqual({ state: 'closed', calls: 200 });
  });

  it('trips within a few calls after a long healthy stretch', async () => {
    const clock = new VirtualClock();
    let down = false;
    const { fetch } = fakeFetch(() => new Response(down ? 'down' : 'ok', { status: down ? 500 : 200 }));
    const api = presets.httpClient({ fetch, clock, maxAttempts: 1 });
    // 10 s of healthy calls, 50 a second.
    for (let i = 0; i < 500; i++) {
      await api(`${origin}/x`);
      await clock.advance(20);
    }
    down = true;
    let failed = 0;
    while (api.breakers!.peek(origin)!.state === 'closed') {
      await api(`${origin}/x`);
      failed++;
      await clock.advance(20);
    }
    // 20 in a row, whatever the window holds (the rate alone would need 1.5 s of them: 75).
    expect(failed).toBe(20);
  });

  it('probes a slow origin again after 250 ms, and closes on the first answer, even a late one', async () => {
    const clock = new VirtualClock();
    let slow = false;
    const { fetch, seen } = fakeFetch(async (request) => {
      if (!slow) return new Response('down', { status: 500 });
      await sleep(600, { clock, signal: request.signal });
      return new Response('ok');
    });
    const api = presets.httpClient({
      fetch,
      clock,
      maxAttempts: 1,
      deadlineMs: 5_000,
      adaptiveAttemptTimeout: false,
    });
    for (let i = 0; i < 10; i++) await api(`${origin}/x`); // 10 of 10 failed: the rate opens it
    const breaker = api.breakers!.peek(origin)!;
    expect(breaker.state).toBe('open');
    slow = true; // the origin works again, but each answer takes 600 ms
    await clock.advance(250);
    const sent = seen.length;
    const first = api(`${origin}/x`); // the probe
    await clock.advance(100);
    expect(breaker.state).toBe('half-open');
    await clock.advance(150); // 250 ms without an answer: the next call probes too
    const second = api(`${origin}/x`);
    expect(seen.length - sent).toBe(2);
    await clock.advance(350); // the first probe answers, 350 ms past its slot
    expect((await first).status).toBe(200);
    expect(breaker.state).toBe('closed');
    await clock.advance(250);
    expect((await second).status).toBe(200);
  });

  it("cuts an attempt at 1.5 × the p99.9 of the origin's answers once 100 are known, and retries it", async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const { fetch, seen } = fakeFetch(async (request) => {
      calls++;
      if (calls === 101) return hang(request);
      await sleep(200, { clock, signal: request.signal });
      return new Response('ok');
    });
    const api = presets.httpClient({ fetch, clock, random: () => 0, deadlineMs: 1_500 });
    for (let i = 0; i < 100; i++) {
      const call = api(`${origin}/x`);
      await clock.advance(200);
      expect((await call).status).toBe(200);
    }
    await clock.advance(3_000);
    const started = clock.now();
    const call = api(`${origin}/x`);
    await clock.advance(299);
    expect(seen).toHaveLength(101);
    await clock.advance(1);
    await clock.advance(200);
    expect((await call).status).toBe(200);
    expect(seen).toHaveLength(102);
    expect(clock.now() - started).toBe(500);
  });

  it('recovers within half a second of a long outage ending, and lets waiting calls ride through', async () => {
    const clock = new VirtualClock();
    let down = true;
    const { fetch, seen } = fakeFetch(() => new Response(down ? 'down' : 'ok', { status: down ? 500 : 200 }));
    const api = presets.httpClient({ fetch, clock, maxAttempts: 1 });
    for (let i = 0; i < 10; i++) await api(`${origin}/x`);
    const breaker = api.breakers!.peek(origin)!;
    expect(breaker.state).toBe('open');
    // A 15 s outage: the breaker probes, fails, and stays open at most 500 ms each time.
    const sent = seen.length;
    while (clock.now() < 15_000) {
      const probe = api(`${origin}/x`);
      await clock.advance(breaker.stats().openRemainingMs);
      expect((await probe).status).toBe(500);
      expect(breaker.stats().openRemainingMs).toBeLessThanOrEqual(500);
    }
    const probes = seen.length - sent;
    expect(probes).toBeLessThanOrEqual(Math.ceil(15_000 / 250));
    // The fault ends; calls arriving now wait for the next probe instead of failing.
    down = false;
    const end = clock.now();
    const waiting = [api(`${origin}/a`), api(`${origin}/b`), api(`${origin}/c`)];
    expect(breaker.stats().waiting).toBe(3);
    await clock.advance(500);
    const statuses = await Promise.all(waiting.map(async (r) => (await r).status));
    expect(statuses).toEqual([200, 200, 200]);
    expect(breaker.state).toBe('closed');
    expect(clock.now() - end).toBeLessThanOrEqual(500);
  });

  it('answers the callers of an outage’s last second when it ends, slow as the origin is then, with little load on it', async () => {
    const clock = new VirtualClock();
    const outage = { from: 6_000, to: 11_000 };
    const down = (): boolean => clock.now() >= outage.from && clock.now() < outage.to;
    let duringOutage = 0;
    const { fetch } = fakeFetch(async (request) => {
      if (down()) {
        duringOutage++;
        return new Response('down', { status: 503 });
      }
      // Back, but slow for a second (a queue behind the fault): 150 ms, where
      // the healthy 20 ms had brought the adaptive attempt timeout to 100 ms.
      const recovering = clock.now() >= outage.to && clock.now() < outage.to + 1_000;
      await sleep(recovering ? 150 : 20, { clock, signal: request.signal });
      return new Response('ok');
    });
    const api = presets.httpClient({ fetch, clock, deadlineMs: 1_500, random: () => 0.5 });
    // One caller every 20 ms (50 a second) from 0 to 13 s, each waiting 1.5 s at most.
    const calls: { at: number; result: Promise<{ status: number; ms: number } | { error: unknown }> }[] = [];
    for (let at = 0; at < 13_000; at += 20) {
      const started = clock.now();
      calls.push({
        at,
        result: api(`${origin}/x`).then(
          (r) => ({ status: r.status, ms: clock.now() - started }),
          (error: unknown) => ({ error }),
        ),
      });
      await clock.advance(20);
    }
    await clock.advance(3_000);
    const outcomes = await Promise.all(calls.map(async (c) => ({ at: c.at, ...(await c.result) })));
    const answered = (from: number, to: number) => {
      const inRange = outcomes.filter((o) => o.at >= from && o.at < to);
      const ok = inRange.filter((o) => 'status' in o && o.status === 200 && o.ms <= 1_500);
      return ok.length / inRange.length;
    };
    // Every caller of the healthy stretches, and every caller of the outage
    // with time left for the first probe after its end (up to 500 ms, the open
    // time, and 150 ms more for the probe) and for its own 150 ms call: those
    // of its last 700 ms, who waited through failed probes.
    expect(answered(0, outage.from)).toBe(1);
    expect(answered(outage.to - 700, outage.to)).toBe(1);
    expect(answered(outage.to, 13_000)).toBe(1);
    // Earlier callers of the outage run out of time (nothing answers them), refused by the open breaker.
    const early = outcomes.filter((o) => o.at >= outage.from + 500 && o.at < outage.to - 1_500);
    expect(early.every((o) => 'error' in o && isBulwarkError(o.error, 'ERR_CIRCUIT_OPEN'))).toBe(true);
    // 250 callers arrived during the outage: the origin saw a few probes and the first failures.
    expect(duringOutage / 250).toBeLessThan(0.2);
  });

  it('refuses at once a call whose deadline cannot outlive the next probe', async () => {
    const clock = new VirtualClock();
    const { fetch } = fakeFetch(() => new Response('down', { status: 500 }));
    const api = presets.httpClient({ fetch, clock, maxAttempts: 1, deadlineMs: 300 });
    for (let i = 0; i < 10; i++) await api(`${origin}/x`);
    expect(api.breakers?.peek(origin)?.state).toBe('open');
    // 250 ms until the probe, plus the probe and the call itself: more than 300 ms.
    const refused = await api(`${origin}/x`).catch((error: unknown) => error);
    expect(isBulwarkError(refused, 'ERR_CIRCUIT_OPEN')).toBe(true);
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBe(250);
  });

  it('lets any createFetch option replace a default', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = fakeFetch(() => new Response('busy', { status: 503 }));
    const api = presets.httpClient({ fetch, clock, maxAttempts: 1, idempotencyKeys: false });
    const response = await api(`${origin}/reservations`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(503);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.request.headers.has('idempotency-key')).toBe(false);
  });
});
