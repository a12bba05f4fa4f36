import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  circuitBreaker,
  consecutive,
  RIDE_THROUGH_DEFAULTS,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { type ExecutionContext, InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { runWithDeadline } from '@bulwark/core/authoring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** A breaker opened by one failure, open for `openMs`, with ride-through. */
function opened(
  clock: VirtualClock,
  openMs = 1_000,
  rideThrough: Parameters<typeof circuitBreaker>[0] extends infer O
    ? O extends { rideThrough?: infer R }
      ? R
      : never
    : never = { probeEstimateMs: 100 },
  maxProbes = 1,
): CircuitBreakerPolicy {
  const breaker = circuitBreaker({
    clock,
    trip: consecutive(1),
    openMs,
    rideThrough,
    halfOpen: { maxProbes },
  });
  breaker.tryAcquire()!.failure(new Error('down'));
  expect(breaker.state).toBe('open');
  return breaker;
}

/** Settles `promise` into an observable result without leaving it unhandled. */
function track<T>(promise: Promise<T>): { done: boolean; value?: T; error?: unknown } {
  const result: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => {
      result.done = true;
      result.value = value;
    },
    (error: unknown) => {
      result.done = true;
      result.error = error;
    },
  );
  return result;
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ride-through', () => {
  it('is off by default: an open breaker refuses at once and holds no timer', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1) });
    breaker.tryAcquire()!.failure(new Error('down'));
    expect(breaker.rideThrough).toBeUndefined();
    await expect(breaker.execute(() => 'ok')).rejects.toBeInstanceOf(BrokenCircuitError);
    await expect(breaker.acquire()).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(clock.pendingTimers).toBe(0);
    expect(breaker.stats().refused).toBe(2);
  });

  it('lets a waiter become the probe when the open time ends, and admits the rest once it succeeds', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock);
    let probeDone: (() => void) | undefined;
    const calls: string[] = [];
    const first = track(
      breaker.execute(
        () =>
          new Promise<string>((resolve) => {
            calls.push('probe');
            probeDone = () => resolve('probe ok');
          }),
      ),
    );
    const second = track(
      breaker.execute(() => {
        calls.push('waiter');
        return 'waiter ok';
      }),
    );
    expect(breaker.stats().waiting).toBe(2);
    expect(clock.pendingTimers).toBe(1); // one timer, however many wait
    await clock.advance(999);
    expect(calls).toEqual([]);
    await clock.advance(1);
    await flush();
    // The first waiter is the probe; the second waits for its verdict.
    expect(calls).toEqual(['probe']);
    expect(breaker.state).toBe('half-open');
    expect(breaker.stats().waiting).toBe(1);
    probeDone!();
    await flush();
    expect(breaker.state).toBe('closed');
    expect(first).toEqual({ done: true, value: 'probe ok' });
    expect(second).toEqual({ done: true, value: 'waiter ok' });
    expect(clock.pendingTimers).toBe(0);
    expect(breaker.stats()).toMatchObject({ waiting: 0, refused: 0, admitted: 3 });
  });

  it('makes the waiter with the most time left the probe, so that a deadline about to end cannot decide the verdict', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock);
    const ran: string[] = [];
    const call = (name: string, deadline: number) =>
      track(
        runWithDeadline(deadline, clock, () =>
          breaker.execute(() => {
            ran.push(name);
            return name === 'fresh' ? new Promise<string>(() => {}) : name;
          }),
        ),
      );
    // Both can outlive the probe at 1 s (probeEstimateMs 100); the first only just.
    const old = call('old', 1_250);
    await clock.advance(500);
    const fresh = call('fresh', 3_000);
    expect(breaker.stats().waiting).toBe(2);
    await clock.advance(500);
    await flush();
    expect(ran).toEqual(['fresh']); // the probe: 2 s left, not 250 ms
    expect(breaker.stats().waiting).toBe(1);
    expect(old.done).toBe(false);
    // The probe has not answered when the old waiter's time runs out: it gives
    // up without a call, and the breaker stays half-open for the probe.
    await clock.advance(200);
    await flush();
    expect(old.error).toBeInstanceOf(BrokenCircuitError);
    expect(breaker.state).toBe('half-open');
    expect(fresh.done).toBe(false);
  });

  it('keeps a waiter whose deadline outlives the next probe waiting through a failed probe; it is that probe', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock, 1_000, { probeEstimateMs: 100, maxWaitMs: 5_000 });
    let failProbe: (() => void) | undefined;
    const probe = track(
      breaker.execute(
        () => new Promise<string>((_, reject) => (failProbe = () => reject(new Error('still down')))),
      ),
    );
    const ran: number[] = [];
    const waiter = track(
      breaker.execute(() => {
        ran.push(clock.now());
        return 'answered';
      }),
    );
    // Too short a deadline for a second verdict: refused when the first probe fails.
    const short = track(runWithDeadline(clock.now() + 1_500, clock, () => breaker.execute(() => 'never')));
    await clock.advance(1_000);
    await flush();
    failProbe!();
    await flush();
    expect((probe.error as Error).message).toBe('still down');
    expect(breaker.state).toBe('open');
    expect(short.done).toBe(true);
    expect(short.error).toBeInstanceOf(BrokenCircuitError);
    expect(waiter.done).toBe(false);
    expect(breaker.stats().waiting).toBe(1);
    await clock.advance(1_000);
    await flush();
    expect(waiter.value).toBe('answered');
    expect(ran).toEqual([2_000]);
    expect(breaker.state).toBe('closed');
    expect(clock.pendingTimers).toBe(0);
  });

  it('refuses a waiter without time for the next probe with the open-circuit error and its retryAfterMs when the probe fails', async () => {
    const clock = new VirtualClock();
    // Gives up at 1,500: the next verdict (open again until 2,000) comes too late for it.
    const breaker = opened(clock, 1_000, { probeEstimateMs: 100, maxWaitMs: 1_500 });
    let failProbe: (() => void) | undefined;
    const probe = track(
      breaker.execute(
        () => new Promise<string>((_, reject) => (failProbe = () => reject(new Error('still down')))),
      ),
    );
    const waiter = track(breaker.execute(() => 'never'));
    await clock.advance(1_000);
    await flush();
    failProbe!();
    await flush();
    expect(breaker.state).toBe('open');
    expect((probe.error as Error).message).toBe('still down');
    expect(waiter.done).toBe(true);
    expect(waiter.error).toBeInstanceOf(BrokenCircuitError);
    expect((waiter.error as BrokenCircuitError).retryAfterMs).toBe(1_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('refuses at once a caller whose deadline is shorter than the wait for the probe plus its call', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock, 1_000, { probeEstimateMs: 100 });
    // The probe may start in 1,000 ms, its verdict in ~1,100 ms, the call after it needs ~100 ms more.
    const short = track(runWithDeadline(clock.now() + 1_150, clock, () => breaker.execute(() => 'x')));
    await flush();
    expect(short.error).toBeInstanceOf(BrokenCircuitError);
    expect(breaker.stats().waiting).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    const long = track(breaker.acquire({ deadline: clock.now() + 1_250 }));
    expect(breaker.stats().waiting).toBe(1);
    await clock.advance(1_000);
    await flush();
    expect(long.done).toBe(true);
    expect(long.value?.probe).toBe(true);
    long.value!.success();
    expect(breaker.state).toBe('closed');
  });

  it('bounds the waiters: beyond maxWaiters a caller is refused at once', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock, 1_000, { maxWaiters: 2, probeEstimateMs: 10 });
    const a = track(breaker.acquire());
    const b = track(breaker.acquire());
    const c = track(breaker.acquire());
    await flush();
    expect(c.error).toBeInstanceOf(BrokenCircuitError);
    expect(a.done || b.done).toBe(false);
    expect(breaker.stats().waiting).toBe(2);
    breaker.reset();
    await flush();
    expect(a.value?.probe).toBe(false);
    expect(b.value?.probe).toBe(false);
    expect(breaker.stats().waiting).toBe(0);
  });

  it("leaves at once with the caller's abort reason, unchanged, and drops its timer", async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock);
    const controller = new AbortController();
    const waiter = track(breaker.acquire({ signal: controller.signal }));
    expect(clock.pendingTimers).toBe(1);
    const reason = new Error('caller left');
    controller.abort(reason);
    await flush();
    expect(waiter.error).toBe(reason);
    expect(breaker.stats().waiting).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    // The next call is still the probe when the open time ends.
    await clock.advance(1_000);
    expect(breaker.tryAcquire()?.probe).toBe(true);
  });

  it('gives up with the open-circuit error when maxWaitMs passes before a verdict', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock, 1_000, { maxWaitMs: 1_500, probeEstimateMs: 100 });
    // The probe is taken by a permit user that never reports quickly.
    await clock.advance(1_000);
    const probe = breaker.tryAcquire()!;
    expect(probe.probe).toBe(true);
    const waiter = track(breaker.acquire());
    await clock.advance(1_499);
    expect(waiter.done).toBe(false);
    await clock.advance(1);
    await flush();
    expect(waiter.error).toBeInstanceOf(BrokenCircuitError);
    expect((waiter.error as BrokenCircuitError).state).toBe('half-open');
    expect(clock.pendingTimers).toBe(0);
    probe.success();
    expect(breaker.state).toBe('closed');
  });

  it('hands a probe slot freed by an ignored probe to the next waiter, within maxProbes', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock, 1_000, { probeEstimateMs: 10 }, 1);
    await clock.advance(1_000);
    const probe = breaker.tryAcquire()!;
    const waiter = track(breaker.acquire());
    const other = track(breaker.acquire());
    await flush();
    expect(breaker.stats()).toMatchObject({ probes: 1, waiting: 2 });
    probe.ignore();
    await flush();
    expect(waiter.value?.probe).toBe(true);
    expect(other.done).toBe(false);
    expect(breaker.stats()).toMatchObject({ probes: 1, waiting: 1 });
    // A newcomer does not jump the queue.
    expect(breaker.tryAcquire()).toBeUndefined();
    waiter.value!.success();
    await flush();
    expect(other.value?.probe).toBe(false);
  });

  it('refuses waiters when the breaker is isolated', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock);
    const waiter = track(breaker.acquire());
    breaker.isolate();
    await flush();
    expect((waiter.error as BrokenCircuitError).state).toBe('isolated');
    expect(clock.pendingTimers).toBe(0);
  });

  it('a caller that aborts between the hand-off and its turn runs nothing and counts neither way', async () => {
    const clock = new VirtualClock();
    const breaker = opened(clock);
    const controller = new AbortController();
    let ran = false;
    const run = track(
      breaker.run(
        () => {
          ran = true;
          return 'x';
        },
        { signal: controller.signal, deadline: undefined, clock } as unknown as ExecutionContext,
      ),
    );
    breaker.reset(); // admitted at once; its continuation has not run yet
    controller.abort(new Error('gone'));
    await flush();
    expect(ran).toBe(false);
    expect((run.error as Error).message).toBe('gone');
    expect(breaker.stats()).toMatchObject({ ignored: 1, waiting: 0 });
    expect(breaker._inFlight()).toBe(0);
  });

  it('rejects bad options with one error naming each value', () => {
    expect(() =>
      circuitBreaker({ rideThrough: { maxWaiters: 0, maxWaitMs: -1, probeEstimateMs: Number.NaN } }),
    ).toThrow(InvalidOptionsError);
    try {
      circuitBreaker({ rideThrough: { maxWaiters: 0, maxWaitMs: -1 } });
    } catch (error) {
      expect(String((error as Error).message)).toMatch(/rideThrough\.maxWaiters/);
      expect(String((error as Error).message)).toMatch(/rideThrough\.maxWaitMs/);
    }
    expect(() => circuitBreaker({ rideThrough: 'yes' as unknown as boolean })).toThrow(/rideThrough/);
    expect(circuitBreaker({ rideThrough: true }).rideThrough).toEqual(RIDE_THROUGH_DEFAULTS);
  });

  it('settles every waiter and leaves no timer, whatever happens (property)', async () => {
    type Step =
      | { kind: 'wait'; deadline: number | undefined }
      | { kind: 'abort'; index: number }
      | { kind: 'advance'; ms: number }
      | { kind: 'probe'; ok: boolean }
      | { kind: 'isolate' }
      | { kind: 'reset' };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('wait' as const),
        deadline: fc.option(fc.integer({ min: 0, max: 3_000 }), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('abort' as const), index: fc.nat(20) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 800 }) }),
      fc.record({ kind: fc.constant('probe' as const), ok: fc.boolean() }),
      fc.constant({ kind: 'isolate' as const }),
      fc.constant({ kind: 'reset' as const }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(step, { maxLength: 60 }),
        async (maxWaiters, maxProbes, steps) => {
          const clock = new VirtualClock();
          const breaker = opened(
            clock,
            500,
            { maxWaiters, maxWaitMs: 2_000, probeEstimateMs: 50 },
            maxProbes,
          );
          const waiters: Array<{ controller: AbortController; result: ReturnType<typeof track> }> = [];
          const permits: Array<{ success(): void; failure(e: unknown): void }> = [];
          for (const s of steps) {
            if (s.kind === 'wait') {
              const controller = new AbortController();
              const deadline = s.deadline === undefined ? undefined : clock.now() + s.deadline;
              const result = track(breaker.acquire({ signal: controller.signal, deadline }));
              waiters.push({ controller, result });
            } else if (s.kind === 'abort') {
              waiters[s.index % Math.max(1, waiters.length)]?.controller.abort(new Error('left'));
            } else if (s.kind === 'advance') {
              await clock.advance(s.ms);
            } else if (s.kind === 'probe') {
              const permit = permits.shift();
              if (permit !== undefined) {
                if (s.ok) permit.success();
                else permit.failure(new Error('down'));
              }
            } else if (s.kind === 'isolate') {
              breaker.isolate()[Symbol.dispose]();
            } else {
              breaker.reset();
            }
            await flush();
            for (const w of waiters) {
              const value = w.result.value as { success(): void; failure(e: unknown): void } | undefined;
              if (value !== undefined && !permits.includes(value)) permits.push(value);
            }
            const stats = breaker.stats();
            expect(stats.waiting).toBeLessThanOrEqual(maxWaiters);
            expect(stats.probes).toBeLessThanOrEqual(maxProbes);
            expect(clock.pendingTimers).toBeLessThanOrEqual(stats.waiting > 0 ? 1 : 0);
          }
          // Every wait ends within maxWaitMs, and then nothing is left behind.
          await clock.advance(2_000);
          await flush();
          for (const w of waiters) expect(w.result.done).toBe(true);
          expect(breaker.stats().waiting).toBe(0);
          expect(clock.pendingTimers).toBe(0);
          for (const w of waiters) {
            if (
              w.result.error !== undefined &&
              !(w.result.error instanceof Error && w.result.error.message === 'left')
            )
              expect(isBulwarkError(w.result.error, 'ERR_CIRCUIT_OPEN')).toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
