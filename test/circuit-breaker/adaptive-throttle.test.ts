import { BulkheadRejectedError } from '@bulwark/bulkhead';
import {
  adaptiveThrottle,
  BrokenCircuitError,
  ThrottledError,
  type ThrottleEvent,
} from '@bulwark/circuit-breaker';
import { type Clock, seededRandom, sleep, VirtualClock } from '@bulwark/clock';
import { BulwarkError, InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { RateLimitedError } from '@bulwark/rate-limit';
import { describe, expect, it } from 'vitest';

const fail = () => Promise.reject(new Error('503'));
const ok = () => 'ok';

/** Reports `requests` outcomes through permits, `accepts` of them accepted (no refusal: random never fires). */
function load(t: ReturnType<typeof adaptiveThrottle>, requests: number, accepts: number): void {
  for (let i = 0; i < requests; i++) {
    const permit = t.tryAcquire();
    if (permit === undefined) throw new Error('unexpected refusal');
    if (i < accepts) permit.accepted();
    else permit.rejected();
  }
}

describe('adaptiveThrottle()', () => {
  it('refuses nothing while the backend accepts every request', async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: seededRandom(1) });
    for (let i = 0; i < 1000; i++) expect(await t.execute(ok)).toBe('ok');
    expect(t.stats()).toEqual({ requests: 1000, accepts: 1000, probability: 0 });
  });

  it('computes max(0, (requests − K·accepts) / (requests + 1)), capped at maxRejectionProbability', () => {
    const clock = new VirtualClock();
    const never = () => 1; // random() < p never holds: every call passes
    const t = adaptiveThrottle({ clock, random: never, maxRejectionProbability: 1 });
    load(t, 10, 4);
    expect(t.probability()).toBeCloseTo((10 - 2 * 4) / 11, 12);
    load(t, 10, 0);
    expect(t.probability()).toBeCloseTo((20 - 8) / 21, 12);
    const k3 = adaptiveThrottle({ clock, random: never, k: 3, maxRejectionProbability: 1 });
    load(k3, 10, 4);
    expect(k3.probability()).toBe(0);
    const capped = adaptiveThrottle({ clock, random: never });
    load(capped, 100, 0);
    expect(capped.probability()).toBe(0.9);
  });

  it('refuses at the computed rate, within binomial bounds, for fixed seeds', () => {
    for (const seed of [1, 2, 3]) {
      const clock = new VirtualClock();
      let draw = seededRandom(seed);
      const t = adaptiveThrottle({ clock, random: () => draw(), maxRejectionProbability: 1 });
      const pass = () => 1;
      draw = pass;
      load(t, 10_000, 2_000); // p = (10000 − 4000) / 10001 ≈ 0.600
      draw = seededRandom(seed);
      let refused = 0;
      const n = 1000;
      for (let i = 0; i < n; i++) {
        const permit = t.tryAcquire();
        if (permit === undefined) refused++;
        else permit.ignore();
      }
      // Each refusal is counted as a request, so p drifts from 0.600 to at most
      // (10000 + 1000 − 4000) / 11001 ≈ 0.636. 4 σ of a binomial(1000, 0.6) is ±62.
      expect(refused).toBeGreaterThan(600 - 62);
      expect(refused).toBeLessThan(636 + 62);
    }
  });

  it('lets the backend see about K times what it accepts under a sustained overload (seeded)', async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: seededRandom(7), k: 2, maxRejectionProbability: 1 });
    // 1000 calls/s; the backend accepts at most 2 per 10 ms (200/s) and rejects the rest.
    let sent = 0;
    let acceptedThisTick = 0;
    const calls = 50_000;
    for (let i = 0; i < calls; i++) {
      await t
        .execute(() => {
          sent++;
          if (acceptedThisTick < 2) {
            acceptedThisTick++;
            return 'ok';
          }
          throw new Error('overloaded');
        })
        .catch(() => undefined);
      if (i % 10 === 9) {
        await clock.advance(10);
        acceptedThisTick = 0;
      }
    }
    // In equilibrium requests ≈ K × accepts: p ≈ (1000 − 2·200) / 1001 ≈ 0.6, so
    // the backend sees about 400 calls/s (K times what it accepts) instead of 1000.
    expect(sent / calls).toBeGreaterThan(0.36);
    expect(sent / calls).toBeLessThan(0.44);
    expect(t.probability()).toBeGreaterThan(0.55);
    expect(t.probability()).toBeLessThan(0.65);
  });

  it('forgets the past after one window without traffic', async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: () => 1, windowMs: 1000, buckets: 10 });
    load(t, 50, 0);
    expect(t.probability()).toBe(0.9);
    await clock.advance(500);
    expect(t.probability()).toBe(0.9);
    await clock.advance(600);
    expect(t.probability()).toBe(0);
    // A jump of many windows clears every bucket without visiting each one.
    load(t, 50, 0);
    await clock.advance(1e12);
    expect(t.stats()).toEqual({ requests: 0, accepts: 0, probability: 0 });
  });

  it('is O(1) per call: the clock reads per call do not grow with history', async () => {
    const base = new VirtualClock();
    let reads = 0;
    const clock: Clock = {
      now: () => {
        reads++;
        return base.now();
      },
      setTimeout: (cb, ms) => base.setTimeout(cb, ms),
    };
    const t = adaptiveThrottle({ clock, random: seededRandom(3) });
    const perCall = async (): Promise<number> => {
      const before = reads;
      await t.execute(fail).catch(() => undefined);
      return reads - before;
    };
    const early = await perCall();
    for (let i = 0; i < 10_000; i++) await t.execute(ok);
    const late = await perCall();
    expect(late).toBe(early);
    expect(early).toBeLessThanOrEqual(4);
  });

  it('refuses with a typed ThrottledError carrying the probability, and emits onThrottle', async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: () => 0, name: 'search' });
    const events: ThrottleEvent[] = [];
    const sub = t.onThrottle((e) => events.push(e));
    await t.execute(fail).catch(() => undefined); // p = 1/2 after this
    let calls = 0;
    const error = await t
      .execute(
        () => {
          calls++;
          return 'ok';
        },
        { operation: 'q' },
      )
      .catch((e: unknown) => e);
    expect(calls).toBe(0);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(isBulwarkError(error, 'ERR_THROTTLED')).toBe(true);
    expect((error as ThrottledError).throttle).toBe('search');
    expect((error as ThrottledError).probability).toBeCloseTo(1 / 2, 12);
    expect((error as ThrottledError).retryAfterMs).toBeUndefined();
    expect((error as Error).message).toContain('adaptive throttle "search"');
    expect(events).toEqual([{ probability: 0.5, name: 'search', operation: 'q' }]);
    sub.dispose();
    await t.execute(ok).catch(() => undefined);
    expect(events).toHaveLength(1);
  });

  it("does not count the caller's abort, nor local refusals that never reached the backend", async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: () => 1 });
    await t.execute(() => Promise.reject(new BrokenCircuitError('open', 1000))).catch(() => undefined);
    await t
      .execute(() => Promise.reject(new BulkheadRejectedError('queue-full', { limit: 1, maxQueue: 0 })))
      .catch(() => undefined);
    const controller = new AbortController();
    const call = t
      .execute((ctx) => sleep(100, { clock, signal: ctx.signal }), { signal: controller.signal })
      .catch(() => undefined);
    controller.abort(new Error('left'));
    await call;
    await clock.runAll();
    expect(t.stats()).toEqual({ requests: 0, accepts: 0, probability: 0 });
  });

  it('does not count any refusal (isRefusal): a rate limit, or a new policy that marks its errors', async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: () => 1 });
    await t
      .execute(() => Promise.reject(new RateLimitedError('api', 250, { ratePerSecond: 1, burst: 1 })))
      .catch(() => undefined);
    await t
      .execute(() => Promise.reject(new BulwarkError('ERR_CONCURRENCY_LIMIT', 'shed', { refusal: true })))
      .catch(() => undefined);
    expect(t.stats()).toEqual({ requests: 0, accepts: 0, probability: 0 });
    // An error that is not a refusal still counts as rejected.
    await t.execute(fail).catch(() => undefined);
    expect(t.stats()).toMatchObject({ requests: 1, accepts: 0 });
  });

  it('takes a classifier: a 503 result counts as rejected', async () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({
      clock,
      random: () => 1,
      classify: (outcome) =>
        outcome.ok && (outcome.value as { status: number }).status === 503 ? 'rejected' : 'accepted',
    });
    await t.execute(() => ({ status: 503 }));
    await t.execute(() => ({ status: 200 }));
    expect(t.stats()).toMatchObject({ requests: 2, accepts: 1 });
  });

  it('counts a permit once, whatever is reported after', () => {
    const clock = new VirtualClock();
    const t = adaptiveThrottle({ clock, random: () => 1 });
    const permit = t.tryAcquire()!;
    permit.accepted();
    permit.rejected();
    permit.accepted();
    expect(t.stats()).toMatchObject({ requests: 1, accepts: 1 });
  });

  it('refuses bad options, listing each with its value', () => {
    let error: unknown;
    try {
      adaptiveThrottle({
        k: 0.5,
        windowMs: 0,
        buckets: 1.5,
        maxRejectionProbability: 2,
        random: 'x' as never,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => [v.option, v.value])).toEqual([
      ['k', 0.5],
      ['windowMs', 0],
      ['buckets', 1.5],
      ['maxRejectionProbability', 2],
      ['random', 'x'],
    ]);
  });
});
