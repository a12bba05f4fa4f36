import { getEventListeners } from 'node:events';
import { BulkheadRejectedError } from '@bulwark/bulkhead';
import { injectLatency } from '@bulwark/chaos';
import { seededRandom, sleep, VirtualClock } from '@bulwark/clock';
import {
  CallbackError,
  DeadlineExceededError,
  type ExecutionContext,
  InvalidOptionsError,
  isBulwarkError,
  pipeline,
} from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { type HedgeDeniedEvent, type HedgeEvent, HedgeLostError, hedging } from '@bulwark/hedging';
import { retry, retryBudget } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

interface Step {
  readonly ms: number;
  readonly value?: string;
  readonly error?: () => unknown;
}

interface Log {
  starts: { attempt: number; at: number }[];
  aborts: { attempt: number; at: number; reason: unknown }[];
}

/** An operation whose n-th call (0-based) waits plan[n].ms on ctx's clock, honouring ctx.signal, then answers. */
function planned(
  clock: VirtualClock,
  plan: readonly Step[],
): { fn: (ctx: ExecutionContext) => Promise<string>; log: Log } {
  const log: Log = { starts: [], aborts: [] };
  let n = 0;
  const fn = async (ctx: ExecutionContext): Promise<string> => {
    const step = plan[Math.min(n++, plan.length - 1)]!;
    log.starts.push({ attempt: ctx.attempt, at: clock.now() });
    try {
      await sleep(step.ms, { clock, signal: ctx.signal });
    } catch (reason) {
      log.aborts.push({ attempt: ctx.attempt, at: clock.now(), reason });
      throw reason;
    }
    if (step.error !== undefined) throw step.error();
    return step.value ?? `v${ctx.attempt}`;
  };
  return { fn, log };
}

async function settle<T>(
  clock: VirtualClock,
  promise: Promise<T>,
): Promise<{ value?: T; error?: unknown; at: number }> {
  const result = promise.then(
    (value) => ({ value, at: clock.now() }),
    (error: unknown) => ({ error, at: clock.now() }),
  );
  await clock.runAll();
  return result;
}

/** A budget that never runs dry within a test. */
const ample = (clock: VirtualClock) => retryBudget({ ratio: 1000, minRetriesPerSecond: 1000, clock });

describe('hedging(): the race', () => {
  it('refuses a latency sample that is not a number of milliseconds >= 0, naming it', () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delay: 'adaptive', delayMs: 50, minSamples: 1, sampleSize: 8 });
    expect(() => policy.recordLatency(Number.NaN)).toThrow(RangeError);
    expect(() => policy.recordLatency(-3)).toThrow(/recordLatency.*-3/);
    expect(policy.delayMs()).toBe(50);
  });

  it('starts no hedge when the first attempt answers within the delay, and leaves no timer', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, budget: ample(clock) });
    const { fn, log } = planned(clock, [{ ms: 99 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v1', at: 99 });
    expect(log.starts).toEqual([{ attempt: 1, at: 0 }]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('starts a hedge after the delay; the first good result wins and the loser is aborted with HedgeLostError', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, budget: ample(clock) });
    const { fn, log } = planned(clock, [{ ms: 500 }, { ms: 50 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v2', at: 150 });
    expect(log.starts).toEqual([
      { attempt: 1, at: 0 },
      { attempt: 2, at: 100 },
    ]);
    expect(log.aborts).toHaveLength(1);
    expect(log.aborts[0]!.attempt).toBe(1);
    expect(log.aborts[0]!.at).toBe(150);
    expect(log.aborts[0]!.reason).toBeInstanceOf(HedgeLostError);
    expect(isBulwarkError(log.aborts[0]!.reason, 'ERR_HEDGE_LOST')).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets the first attempt win after a hedge started, and aborts the hedge', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, budget: ample(clock) });
    const { fn, log } = planned(clock, [{ ms: 120 }, { ms: 500 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v1', at: 120 });
    expect(log.aborts.map((a) => [a.attempt, a.at])).toEqual([[2, 120]]);
  });

  it('starts the next hedge at once when an attempt fails with a transient error', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, maxHedgedAttempts: 2, budget: ample(clock) });
    const triggers: HedgeEvent[] = [];
    policy.onHedge((e) => triggers.push(e));
    const { fn, log } = planned(clock, [{ ms: 10, error: reset }, { ms: 30 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v2', at: 40 });
    expect(log.starts.map((s) => s.at)).toEqual([0, 10]);
    expect(triggers.map((t) => [t.attempt, t.trigger, t.elapsedMs])).toEqual([[2, 'failure', 10]]);
  });

  it('ends the call with a fatal (non-transient) error at once and aborts the other attempts', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, budget: ample(clock) });
    const fatal = new TypeError('bad request');
    const { fn, log } = planned(clock, [{ ms: 500 }, { ms: 20, error: () => fatal }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r.error).toBe(fatal);
    expect(r.at).toBe(120);
    expect(log.aborts.map((a) => a.attempt)).toEqual([1]);
  });

  it('keeps racing the attempts still running when a hedge is refused without running (a full bulkhead, an open breaker)', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, budget: ample(clock) });
    const refused = new BulkheadRejectedError('queue-full', { limit: 1, maxQueue: 0 });
    const { fn, log } = planned(clock, [{ ms: 300 }, { ms: 0, error: () => refused }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v1', at: 300 });
    expect(log.aborts).toEqual([]);
  });

  it('ends the call with the refusal when no other attempt is running', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, budget: ample(clock) });
    const refused = new BulkheadRejectedError('queue-full', { limit: 1, maxQueue: 0 });
    const { fn } = planned(clock, [
      { ms: 10, error: reset },
      { ms: 0, error: () => refused },
    ]);
    const r = await settle(clock, policy.execute(fn));
    expect(r.error).toBe(refused);
    expect(r.at).toBe(10);
  });

  it('throws the error of the attempt that finished last when every attempt failed', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, maxHedgedAttempts: 2, budget: ample(clock) });
    const errors = [reset(), reset(), reset()];
    const { fn } = planned(clock, [
      { ms: 400, error: () => errors[0] },
      { ms: 100, error: () => errors[1] },
      { ms: 500, error: () => errors[2] },
    ]);
    // Attempt 1 starts at 0 and fails at 400; attempt 2 starts at 100 and fails at 200,
    // which starts attempt 3 at once (fails at 700). Last to finish: attempt 3.
    const r = await settle(clock, policy.execute(fn));
    expect(r.error).toBe(errors[2]);
    expect(r.at).toBe(700);
  });

  it('returns the last result hedgeOn rejected when no attempt produced a good one', async () => {
    const clock = new VirtualClock();
    const policy = hedging({
      clock,
      delayMs: 50,
      budget: ample(clock),
      hedgeOn: (outcome) => outcome.ok && outcome.value === 'busy',
    });
    const { fn } = planned(clock, [
      { ms: 10, value: 'busy' },
      { ms: 10, value: 'busy' },
    ]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'busy', at: 20 });
  });

  it('treats a result hedgeOn accepts as a failure and lets a good one win', async () => {
    const clock = new VirtualClock();
    const policy = hedging({
      clock,
      delayMs: 50,
      budget: ample(clock),
      hedgeOn: (outcome) => outcome.ok && outcome.value === 'busy',
    });
    const { fn } = planned(clock, [
      { ms: 10, value: 'busy' },
      { ms: 10, value: 'fine' },
    ]);
    expect(await settle(clock, policy.execute(fn))).toEqual({ value: 'fine', at: 20 });
  });

  it('never starts more than maxHedgedAttempts hedges, one per delay', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, maxHedgedAttempts: 3, budget: ample(clock) });
    const { fn, log } = planned(clock, [{ ms: 1000 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v1', at: 1000 });
    expect(log.starts.map((s) => [s.attempt, s.at])).toEqual([
      [1, 0],
      [2, 100],
      [3, 200],
      [4, 300],
    ]);
    expect(log.aborts).toHaveLength(3);
  });

  it('rejects with a CallbackError when hedgeOn throws, and aborts the rest', async () => {
    const clock = new VirtualClock();
    const boom = new Error('classifier bug');
    const policy = hedging({
      clock,
      delayMs: 10,
      budget: ample(clock),
      hedgeOn: () => {
        throw boom;
      },
    });
    const { fn, log } = planned(clock, [{ ms: 100 }, { ms: 50 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r.error).toBeInstanceOf(CallbackError);
    expect((r.error as CallbackError).cause).toBe(boom);
    expect(log.aborts.map((a) => a.attempt)).toEqual([1]);
  });
});

describe('hedging(): budget and deadline', () => {
  it('starts no hedge once the budget is empty, and reports the denial', async () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.2, windowMs: 10_000, clock }); // 2 in the window
    const policy = hedging({ clock, delayMs: 100, budget });
    const denied: HedgeDeniedEvent[] = [];
    policy.onDenied((e) => denied.push(e));
    let calls = 0;
    const fn = async (ctx: ExecutionContext) => {
      calls++;
      await sleep(300, { clock, signal: ctx.signal });
      return 'ok';
    };
    for (let i = 0; i < 4; i++) {
      const r = await settle(clock, policy.execute(fn));
      expect(r.value).toBe('ok');
    }
    // Two calls hedged (2 attempts each), two were refused the hedge (1 attempt each).
    expect(calls).toBe(6);
    expect(denied.map((d) => [d.reason, d.trigger, d.attempt])).toEqual([
      ['budget', 'delay', 2],
      ['budget', 'delay', 2],
    ]);
  });

  it('shares one budget with retry(): hedges and retries draw from the same allowance', async () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000, clock }); // 1 in the window
    const hedge = hedging({ clock, delayMs: 10, budget });
    const retrying = retry({ clock, maxAttempts: 3, budget });
    // A retry spends the only token...
    let n = 0;
    await settle(
      clock,
      retrying.execute(() => {
        if (n++ === 0) throw reset();
        return 'ok';
      }),
    );
    expect(n).toBe(2);
    // ...so the hedge that comes due is refused.
    const { fn, log } = planned(clock, [{ ms: 100 }]);
    expect((await settle(clock, hedge.execute(fn))).value).toBe('v1');
    expect(log.starts).toHaveLength(1);
  });

  it('counts no request with countRequests: false, leaving that to an enclosing retry() on the same budget', async () => {
    const clock = new VirtualClock();
    const counted = retryBudget({ ratio: 0.1, minRetriesPerSecond: 0, clock });
    const quiet = retryBudget({ ratio: 0.1, minRetriesPerSecond: 0, clock });
    const fn = async () => 'ok';
    for (let i = 0; i < 32; i++) {
      await hedging({ clock, budget: counted }).execute(fn);
      await hedging({ clock, budget: quiet, countRequests: false }).execute(fn);
    }
    expect(counted.stats().requests).toBe(32);
    expect(quiet.stats().requests).toBe(0);
    expect(() => hedging({ countRequests: 1 as never })).toThrow(/countRequests must be a boolean, got 1/);
  });

  it('counts every call as a request, so sustained hedging stays within the ratio', async () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0.1, minRetriesPerSecond: 0, windowMs: 100_000, clock });
    const policy = hedging({ clock, delayMs: 10, budget });
    let attempts = 0;
    const fn = async (ctx: ExecutionContext) => {
      attempts++;
      await sleep(50, { clock, signal: ctx.signal });
      return 'ok';
    };
    for (let i = 0; i < 320; i++) await settle(clock, policy.execute(fn));
    // Every call wanted a hedge; at most 10% of the 320 calls (counted in batches of 16) got one.
    expect(attempts - 320).toBeGreaterThan(0);
    expect(attempts - 320).toBeLessThanOrEqual(32);
  });

  it('starts no hedge when the deadline leaves minAttemptMs or less', async () => {
    const clock = new VirtualClock();
    const policy = pipeline(
      deadline(150, { clock }),
      hedging({ clock, delayMs: 100, minAttemptMs: 60, budget: ample(clock) }),
    );
    const { fn, log } = planned(clock, [{ ms: 120 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r).toEqual({ value: 'v1', at: 120 });
    expect(log.starts).toHaveLength(1);
  });

  it("passes an enclosing deadline's error through and aborts every attempt", async () => {
    const clock = new VirtualClock();
    const policy = pipeline(deadline(150, { clock }), hedging({ clock, delayMs: 100, budget: ample(clock) }));
    const { fn, log } = planned(clock, [{ ms: 1000 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(r.error).toBeInstanceOf(DeadlineExceededError);
    expect(r.at).toBe(150);
    expect(log.aborts.map((a) => a.attempt).sort()).toEqual([1, 2]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("rejects with the caller's abort reason, unchanged, aborts every attempt and starts no later hedge", async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 100, maxHedgedAttempts: 3, budget: ample(clock) });
    const controller = new AbortController();
    const { fn, log } = planned(clock, [{ ms: 1000 }]);
    const p = policy.execute(fn, { signal: controller.signal });
    const r = p.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await clock.advance(150);
    const reason = new Error('caller left');
    controller.abort(reason);
    await clock.runAll();
    expect(await r).toEqual({ error: reason });
    expect(log.starts).toHaveLength(2);
    expect(log.aborts.map((a) => a.reason)).toEqual([reason, reason]);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('leaves no listener on a long-lived caller signal across many calls', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 10, budget: ample(clock) });
    const controller = new AbortController();
    const { fn } = planned(clock, [{ ms: 5 }, { ms: 50 }, { ms: 5 }]);
    for (let i = 0; i < 20; i++) await settle(clock, policy.execute(fn, { signal: controller.signal }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('hedging(): adaptive delay', () => {
  /** Runs calls whose first attempt takes each latency in turn (no hedge fires: the delay is large). */
  async function feed(clock: VirtualClock, policy: ReturnType<typeof hedging>, latencies: number[]) {
    for (const ms of latencies) {
      const call = policy.execute((ctx) => sleep(ms, { clock, signal: ctx.signal }).then(() => ms));
      await clock.advance(ms);
      expect(await call).toBe(ms);
    }
  }

  it('uses delayMs until minSamples latencies are known, then the percentile', async () => {
    const clock = new VirtualClock();
    const policy = hedging({
      clock,
      delay: 'adaptive',
      delayMs: 5000,
      percentile: 0.9,
      minSamples: 20,
      sampleSize: 64,
      budget: ample(clock),
    });
    expect(policy.delayMs()).toBe(5000);
    await feed(clock, policy, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(policy.delayMs()).toBe(5000);
    // 100 latencies 1..100 in shuffled order: p90 by nearest rank is 90.
    const values = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
    const policy2 = hedging({
      clock,
      delay: 'adaptive',
      delayMs: 5000,
      percentile: 0.9,
      sampleSize: 160, // recomputed every 160 / 8 = 20 samples: at the 100th
      budget: ample(clock),
    });
    await feed(clock, policy2, values);
    expect(policy2.delayMs()).toBe(90);
  });

  it('picks the nearest-rank percentile of arbitrary latencies (seeded, several percentiles)', async () => {
    for (const [seed, percentile] of [
      [1, 0.5],
      [2, 0.73],
      [3, 0.9],
      [4, 0.99],
    ] as const) {
      const clock = new VirtualClock();
      const draw = seededRandom(seed);
      const values = Array.from({ length: 200 }, () => Math.floor(draw() * 500) + 1);
      const policy = hedging({
        clock,
        delay: 'adaptive',
        delayMs: 5000,
        percentile,
        sampleSize: 200, // recomputed every 25 samples: at the 200th
        sampleTtlMs: 1e9,
        budget: ample(clock),
      });
      await feed(clock, policy, values);
      const sorted = [...values].sort((a, b) => a - b);
      expect(policy.delayMs()).toBe(sorted[Math.ceil(percentile * 200) - 1]);
    }
  });

  it('follows the distribution as it moves, forgetting samples past the ring and the TTL', async () => {
    const clock = new VirtualClock();
    const policy = hedging({
      clock,
      delay: 'adaptive',
      delayMs: 5000,
      percentile: 0.5,
      sampleSize: 64,
      sampleTtlMs: 60_000,
      budget: ample(clock),
    });
    await feed(
      clock,
      policy,
      Array.from({ length: 64 }, () => 10),
    );
    expect(policy.delayMs()).toBe(10);
    await feed(
      clock,
      policy,
      Array.from({ length: 64 }, () => 30),
    );
    expect(policy.delayMs()).toBe(30);
    // After the TTL with no traffic, every sample is stale: back to delayMs.
    await clock.advance(61_000);
    expect(policy.delayMs()).toBe(5000);
  });

  it('fires the hedge at the adaptive delay, clamped to [minDelayMs, maxDelayMs]', async () => {
    const clock = new VirtualClock();
    const policy = hedging({
      clock,
      delay: 'adaptive',
      delayMs: 5000,
      percentile: 0.9,
      minSamples: 8,
      sampleSize: 8,
      maxDelayMs: 40,
      budget: ample(clock),
    });
    await feed(clock, policy, [100, 100, 100, 100, 100, 100, 100, 100]);
    expect(policy.delayMs()).toBe(40);
    const { fn, log } = planned(clock, [{ ms: 1000 }, { ms: 5 }]);
    const r = await settle(clock, policy.execute(fn));
    expect(log.starts.map((s) => s.at - log.starts[0]!.at)).toEqual([0, 40]);
    expect(r.value).toBe('v2');
  });

  it('counts a first attempt beaten by a hedge as at least its elapsed time, so the delay does not collapse', async () => {
    const clock = new VirtualClock();
    const policy = hedging({
      clock,
      delay: 'adaptive',
      delayMs: 100,
      percentile: 0.5,
      minSamples: 8,
      sampleSize: 8,
      budget: ample(clock),
    });
    // First attempts are slow (1 s); hedges answer in 10 ms. Every call hedges,
    // and the beaten first attempt is recorded at its elapsed time, never at
    // the fast hedge's latency: calls 1-8 (delay 100) record 110, calls 9-16
    // (delay 110) record 120. The delay follows the evidence that first
    // attempts take longer than it, instead of chasing the hedges down.
    for (let i = 0; i < 16; i++) {
      let n = 0;
      await settle(
        clock,
        policy.execute((ctx) => sleep(n++ === 0 ? 1000 : 10, { clock, signal: ctx.signal }).then(() => 'ok')),
      );
    }
    expect(policy.delayMs()).toBe(120);
  });
});

describe('hedging(): options and composition', () => {
  it('cuts injected tail latency: with 20% of attempts delayed 1 s, every call answers within delay + 10 ms', async () => {
    const clock = new VirtualClock();
    const slow = injectLatency({ rate: 0.2, latencyMs: 1000, clock, random: seededRandom(5) });
    const policy = pipeline(
      hedging({ clock, delayMs: 50, maxHedgedAttempts: 2, budget: ample(clock) }),
      slow,
    );
    const latencies = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      const start = clock.now();
      const r = await settle(
        clock,
        policy.execute((ctx) => sleep(10, { clock, signal: ctx.signal }).then(() => 'ok')),
      );
      expect(r.value).toBe('ok');
      latencies.set(r.at - start, (latencies.get(r.at - start) ?? 0) + 1);
    }
    // 10 ms: the first attempt was not delayed; 60: it was and the first hedge
    // won; 110: two in a row; 1010: all three (P = 0.8%), the first attempt wins.
    expect([...latencies.keys()].every((ms) => [10, 60, 110, 1010].includes(ms))).toBe(true);
    expect(latencies.get(10)).toBeGreaterThan(140);
    expect(latencies.get(60)).toBeGreaterThan(20);
    expect(latencies.get(1010) ?? 0).toBeLessThanOrEqual(5);
  });

  it('lists every invalid option with its value', () => {
    let error: unknown;
    try {
      hedging({
        delay: 'sometimes' as never,
        delayMs: -1,
        maxHedgedAttempts: 0,
        minAttemptMs: Number.NaN,
        hedgeOn: 3 as never,
        budget: {} as never,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const options = (error as InvalidOptionsError).violations.map((v) => v.option);
    expect(options).toEqual(['delay', 'delayMs', 'maxHedgedAttempts', 'minAttemptMs', 'hedgeOn', 'budget']);
    expect((error as Error).message).toContain('got -1');
  });

  it('refuses adaptive-only options with a fixed delay, and inconsistent bounds', () => {
    expect(() => hedging({ percentile: 0.9 })).toThrow(/percentile must be unset unless delay is 'adaptive'/);
    expect(() => hedging({ delay: 'adaptive', minDelayMs: 50, maxDelayMs: 10 })).toThrow(
      /minDelayMs must be <= maxDelayMs/,
    );
    expect(() => hedging({ delay: 'adaptive', percentile: 1 })).toThrow(/percentile/);
    expect(() => hedging({ delay: 'adaptive', minSamples: 100, sampleSize: 16 })).toThrow(/minSamples/);
    expect(() => hedging({ maxHedgedAttempts: 11 })).toThrow(
      /maxHedgedAttempts must be an integer >= 1 <= 10, got 11/,
    );
  });

  it('composes inside retry(): each retry is a hedged call', async () => {
    const clock = new VirtualClock();
    const policy = pipeline(
      retry({ clock, maxAttempts: 2, budget: ample(clock) }),
      hedging({ clock, delayMs: 100, budget: ample(clock) }),
    );
    let n = 0;
    const starts: number[] = [];
    const r = await settle(
      clock,
      policy.execute(async (ctx) => {
        starts.push(ctx.attempt);
        const me = n++;
        await sleep(me === 0 ? 50 : 20, { clock, signal: ctx.signal });
        if (me === 0) throw reset();
        return `call ${me}`;
      }),
    );
    // The first attempt fails at 50 and starts a hedge at once, which succeeds.
    expect(r.value).toBe('call 1');
    expect(starts).toEqual([1, 2]);
  });

  it('returns disposers from onHedge and onDenied', async () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 10, budget: ample(clock) });
    const seen: number[] = [];
    const sub = policy.onHedge((e) => seen.push(e.attempt));
    const { fn } = planned(clock, [{ ms: 50 }, { ms: 5 }]);
    await settle(clock, policy.execute(fn));
    sub.dispose();
    await settle(clock, policy.execute(fn));
    expect(seen).toEqual([2]);
  });

  it('decide() is usable without the policy: attempts, deadline, budget, in that order', () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000, clock });
    const policy = hedging({ clock, maxHedgedAttempts: 1, budget });
    const ctx = {
      attempt: 1,
      deadline: undefined,
      clock,
      operation: undefined,
      idempotencyKey: undefined,
    } as never;
    expect(policy.decide(2, ctx)).toEqual({ hedge: false, reason: 'attempts' });
    expect(policy.decide(1, { ...(ctx as object), deadline: 0 } as never)).toEqual({
      hedge: false,
      reason: 'deadline',
    });
    expect(policy.decide(1, ctx)).toEqual({ hedge: true });
    expect(policy.decide(1, ctx)).toEqual({ hedge: false, reason: 'budget' });
  });
});
