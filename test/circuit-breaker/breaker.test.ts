import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  type CircuitPermit,
  circuitBreaker,
  consecutive,
  failureRate,
  type StateChangeEvent,
  slowCallRate,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import {
  CallbackError,
  type ExecutionContext,
  InvalidOptionsError,
  isBulwarkError,
  pipeline,
} from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { exponential } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

const fail = () => {
  throw new Error('dependency down');
};
const ok = () => 'ok';

async function failTimes(breaker: CircuitBreakerPolicy, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await breaker.execute(fail).catch(() => undefined);
}

function changes(breaker: CircuitBreakerPolicy): string[] {
  const seen: string[] = [];
  breaker.onStateChange((e: StateChangeEvent) => seen.push(`${e.from}->${e.to}:${e.reason}`));
  return seen;
}

describe('circuitBreaker() transitions', () => {
  it('opens after n consecutive failures and refuses with ERR_CIRCUIT_OPEN and retryAfterMs', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(3), openMs: 1_000, name: 'users' });
    const seen = changes(breaker);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(seen).toEqual(['closed->open:trip']);
    await clock.advance(400);
    const error = await breaker.execute(ok).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(isBulwarkError(error, 'ERR_CIRCUIT_OPEN')).toBe(true);
    expect((error as BrokenCircuitError).retryAfterMs).toBe(600);
    expect((error as BrokenCircuitError).message).toContain('circuit "users" is open');
  });

  it('a success resets the consecutive count', async () => {
    const breaker = circuitBreaker({ clock: new VirtualClock(), trip: consecutive(2) });
    await failTimes(breaker, 1);
    await breaker.execute(ok);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('goes half-open when openMs has elapsed, then closes on a probe success', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1), openMs: 500 });
    const seen = changes(breaker);
    await failTimes(breaker, 1);
    await clock.advance(500);
    expect(await breaker.execute(ok)).toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(seen).toEqual([
      'closed->open:trip',
      'open->half-open:open-elapsed',
      'half-open->closed:probe-success',
    ]);
  });

  it('reopens on a probe failure', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1), openMs: 500 });
    const seen = changes(breaker);
    await failTimes(breaker, 1);
    await clock.advance(500);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(seen.at(-1)).toBe('half-open->open:probe-failure');
  });

  it('admits at most maxProbes at once and needs successThreshold successes to close', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: 100,
      halfOpen: { maxProbes: 2, successThreshold: 2 },
    });
    breaker.tryAcquire()!.failure(new Error('x'));
    await clock.advance(100);
    const a = breaker.tryAcquire();
    const b = breaker.tryAcquire();
    expect(a?.probe && b?.probe).toBe(true);
    expect(breaker.tryAcquire()).toBeUndefined();
    a!.success();
    expect(breaker.state).toBe('half-open');
    b!.success();
    expect(breaker.state).toBe('closed');
  });

  it('takes back the permit of a probe that never settles, so it is never stuck half-open', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: 100,
      halfOpen: { probeTimeoutMs: 1_000 },
    });
    const seen = changes(breaker);
    breaker.tryAcquire()!.failure(new Error('x'));
    await clock.advance(100);
    const hung = breaker.tryAcquire();
    expect(hung?.probe).toBe(true);
    await clock.advance(999);
    expect(breaker.tryAcquire()).toBeUndefined(); // the one slot is still taken
    const refused = await breaker.execute(ok).catch((e: unknown) => e);
    expect((refused as BrokenCircuitError).state).toBe('half-open');
    expect((refused as BrokenCircuitError).retryAfterMs).toBe(1); // until the hung probe's permit returns
    expect(breaker.stats().probes).toBe(1);
    await clock.advance(1);
    expect(breaker.stats().probes).toBe(0);
    const next = breaker.tryAcquire(); // the slot went back: the next call probes
    expect(next?.probe).toBe(true);
    expect(breaker.state).toBe('half-open');
    hung!.failure(new Error('late')); // its permit was taken back: the late result changes nothing
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBeUndefined(); // and it did not free the new probe's slot
    next!.success();
    expect(breaker.state).toBe('closed');
    expect(seen).toEqual([
      'closed->open:trip',
      'open->half-open:open-elapsed',
      'half-open->closed:probe-success',
    ]);
  });

  it('counts a timed-out probe’s late success: a dependency slower than probeTimeoutMs still closes it', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: 100,
      halfOpen: { maxProbes: 2, successThreshold: 1, probeTimeoutMs: 500 },
    });
    breaker.tryAcquire()!.failure(new Error('x'));
    await clock.advance(100);
    const a = breaker.tryAcquire()!;
    await clock.advance(200);
    const b = breaker.tryAcquire()!;
    const generation = breaker.stats().generation;
    await clock.advance(300); // a is past its 500 ms, b is not
    expect(breaker.stats().probes).toBe(1);
    expect(breaker.stats().generation).toBe(generation);
    a.success(); // late, but the dependency answered
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().generation).toBe(generation + 1);
    b.failure(new Error('admitted half-open')); // an older generation now: changes nothing
    expect(breaker.state).toBe('closed');
  });

  it('probes a dependency slower than probeTimeoutMs every probeTimeoutMs, and closes on the first answer', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: 100,
      halfOpen: { probeTimeoutMs: 250 },
    });
    breaker.tryAcquire()!.failure(new Error('x'));
    await clock.advance(100);
    const probes: CircuitPermit[] = [];
    for (let i = 0; i < 3; i++) {
      const p = breaker.tryAcquire();
      expect(p?.probe).toBe(true);
      probes.push(p!);
      expect(breaker.tryAcquire()).toBeUndefined(); // one slot, taken
      await clock.advance(250);
    }
    probes[1]!.failure(new Error('slow and failed')); // past its time: changes nothing
    expect(breaker.state).toBe('half-open');
    probes[0]!.success(); // every call takes 600 ms here: the first answer closes it
    expect(breaker.state).toBe('closed');
  });

  it('ignores results from calls admitted before a transition', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1), openMs: 100 });
    const early: CircuitPermit[] = [breaker.tryAcquire()!, breaker.tryAcquire()!];
    breaker.tryAcquire()!.failure(new Error('x'));
    expect(breaker.state).toBe('open');
    await clock.advance(100);
    const probe = breaker.tryAcquire()!;
    probe.success();
    expect(breaker.state).toBe('closed');
    early[0]!.failure(new Error('late'));
    early[1]!.failure(new Error('late'));
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().generation).toBe(3);
  });

  it('counts a permit once, whatever is reported after', () => {
    const breaker = circuitBreaker({ clock: new VirtualClock(), trip: consecutive(2) });
    const permit = breaker.tryAcquire()!;
    permit.failure(new Error('x'));
    permit.failure(new Error('x'));
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().failures).toBe(1);
  });

  it('waits longer after each trip when openMs is a backoff, and starts over once closed', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(1),
      openMs: exponential({ initialMs: 100, maxMs: 350, jitter: 'none' }),
    });
    const opens: number[] = [];
    breaker.onStateChange((e) => {
      if (e.to === 'open') opens.push(breaker.stats().openRemainingMs);
    });
    await failTimes(breaker, 1);
    for (let i = 0; i < 3; i++) {
      await clock.advance(breaker.stats().openRemainingMs);
      await failTimes(breaker, 1);
    }
    expect(opens).toEqual([100, 200, 350, 350]);
    await clock.advance(350);
    await breaker.execute(ok);
    await failTimes(breaker, 1);
    expect(opens.at(-1)).toBe(100);
  });

  it('does not count the caller’s abort, but counts its own deadline', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1) });
    const hang = (ctx: ExecutionContext) =>
      new Promise<never>((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
      );
    const controller = new AbortController();
    const p = breaker.execute(hang, { signal: controller.signal }).catch(() => undefined);
    controller.abort(new Error('user left'));
    await p;
    await clock.runAll();
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().ignored).toBe(1);
    const q = pipeline(deadline(100, { clock }), breaker)
      .execute(hang)
      .catch(() => undefined);
    await clock.advance(100);
    await q;
    expect(breaker.state).toBe('open');
  });

  it('counts what failureOn says, and a failureOn that throws as a failure reported through onError', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: consecutive(2),
      failureOn: (o) => {
        if (o.ok && o.value === 'boom') throw new Error('classifier bug');
        return o.ok ? o.value === 503 : true;
      },
    });
    const errors: unknown[] = [];
    breaker.onError((e) => errors.push(e.error));
    await breaker.execute(() => 503);
    expect(breaker.state).toBe('closed');
    await breaker.execute(() => 'boom');
    expect(breaker.state).toBe('open');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CallbackError);
    expect((errors[0] as CallbackError).cause).toEqual(new Error('classifier bug'));
  });

  it('isolate() holds it open until the last handle is disposed; reset() closes it', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock });
    const seen = changes(breaker);
    const a = breaker.isolate();
    const b = breaker.isolate();
    const refused = await breaker.execute(ok).catch((e: unknown) => e);
    expect((refused as BrokenCircuitError).state).toBe('isolated');
    expect((refused as BrokenCircuitError).retryAfterMs).toBeUndefined();
    a.dispose();
    expect(breaker.state).toBe('isolated');
    b[Symbol.dispose]();
    expect(breaker.state).toBe('closed');
    breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(seen).toEqual([
      'closed->isolated:isolate',
      'isolated->closed:release',
      'closed->isolated:isolate',
      'isolated->closed:reset',
    ]);
  });
});

describe('a breaker around a timeout', () => {
  it('judges each attempt as it ends: a success, an error and an expiry, and opens on the failures', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(2) });
    const guarded = pipeline(breaker, timeout(100, { clock }));
    expect(await guarded.execute(async () => 'ok')).toBe('ok');
    await expect(guarded.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    const slow = guarded.execute(() => new Promise<never>(() => {})).catch((e: unknown) => e);
    await clock.advance(100);
    expect(isBulwarkError(await slow, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(breaker.stats()).toMatchObject({ admitted: 3, successes: 1, failures: 2 });
    expect(breaker.state).toBe('open');
    await expect(guarded.execute(async () => 'ok')).rejects.toBeInstanceOf(BrokenCircuitError);
  });

  it('ignores an attempt the caller gave up on', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1) });
    const caller = new AbortController();
    const call = pipeline(breaker, timeout(100, { clock }))
      .execute(() => new Promise<never>(() => {}), { signal: caller.signal })
      .catch((e: unknown) => e);
    caller.abort('gone');
    expect(await call).toBe('gone');
    await clock.advance(100);
    expect(breaker.stats()).toMatchObject({ admitted: 1, ignored: 1, failures: 0 });
    expect(breaker.state).toBe('closed');
  });
});

describe('windows', () => {
  it('a count window judges the last `size` calls once minimumCalls is reached', async () => {
    const breaker = circuitBreaker({
      clock: new VirtualClock(),
      trip: failureRate({ threshold: 0.5, minimumCalls: 4, window: { kind: 'count', size: 4 } }),
    });
    await failTimes(breaker, 2);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed'); // 3 calls < minimumCalls
    await breaker.execute(ok);
    expect(breaker.state).toBe('open'); // [F, F, ok, ok]: 50% once the window holds 4 calls
  });

  it('judges the rate at the call that completes minimumCalls, even when it succeeds', async () => {
    for (const window of [
      { kind: 'count', size: 4 },
      { kind: 'time', ms: 1_000, buckets: 4 },
    ] as const) {
      const breaker = circuitBreaker({
        clock: new VirtualClock(),
        trip: failureRate({ threshold: 0.5, minimumCalls: 4, window }),
      });
      await failTimes(breaker, 3);
      expect(breaker.state).toBe('closed'); // 3 calls < minimumCalls
      await breaker.execute(ok);
      expect(breaker.state).toBe('open'); // [F, F, F, ok]: 75%, in either kind of window
    }
  });

  it('a count window forgets calls that slide out of it', async () => {
    const breaker = circuitBreaker({
      clock: new VirtualClock(),
      trip: failureRate({ threshold: 0.5, minimumCalls: 4, window: { kind: 'count', size: 4 } }),
    });
    await failTimes(breaker, 1);
    for (let i = 0; i < 4; i++) await breaker.execute(ok);
    await failTimes(breaker, 1); // window [ok, ok, ok, F]: 25%
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1); // [ok, ok, F, F]: 50%
    expect(breaker.state).toBe('open');
  });

  it('a time window counts only the calls of the last ms, in buckets', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: failureRate({
        threshold: 0.6,
        minimumCalls: 3,
        window: { kind: 'time', ms: 1_000, buckets: 10 },
      }),
    });
    await failTimes(breaker, 2);
    await clock.advance(1_000); // both failures slide out
    await breaker.execute(ok);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed'); // 1 of 2 calls, below minimumCalls
    await clock.advance(999);
    await failTimes(breaker, 1); // 2 failures of 3 calls in the window = 0.67
    expect(breaker.state).toBe('open');
  });

  it('a slow-call trip opens on slow successes too', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: slowCallRate({ threshold: 1, slowerThanMs: 200, minimumCalls: 2 }),
    });
    const slow = async () => {
      await clock.advance(0);
      return 'late';
    };
    const permit = breaker.tryAcquire()!;
    permit.success(250);
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.success(199);
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.success(200);
    expect(breaker.state).toBe('closed'); // window [250, 199, 200]: 2 of 3 slow
    const b2 = circuitBreaker({
      clock,
      trip: slowCallRate({ threshold: 0.5, slowerThanMs: 200, minimumCalls: 2 }),
    });
    b2.tryAcquire()!.success(300);
    b2.tryAcquire()!.success(300);
    expect(b2.state).toBe('open');
    expect(await slow()).toBe('late');
  });

  it('any one of several trips opens it', async () => {
    const breaker = circuitBreaker({
      clock: new VirtualClock(),
      trip: [failureRate({ threshold: 0.9, minimumCalls: 100 }), consecutive(2)],
    });
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
  });
});

describe('save and restore', () => {
  it('round-trips through toJSON() and initialState, keeping the time left open', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: consecutive(1), openMs: 1_000 });
    await failTimes(breaker, 1);
    await clock.advance(300);
    const saved = JSON.parse(JSON.stringify(breaker));
    expect(saved).toEqual({ version: 1, state: 'open', openRemainingMs: 700, trips: 1 });
    const other = new VirtualClock(50_000);
    const restored = circuitBreaker({
      clock: other,
      trip: consecutive(1),
      openMs: 1_000,
      initialState: saved,
    });
    expect(restored.state).toBe('open');
    await other.advance(699);
    expect(restored.state).toBe('open');
    await other.advance(1);
    expect(restored.state).toBe('half-open');
  });

  it('rejects a malformed snapshot or one from an unknown version, saying which', () => {
    expect(() => circuitBreaker({ initialState: 'open' as never })).toThrow(
      /initialState must be a snapshot/,
    );
    expect(() =>
      circuitBreaker({ initialState: { version: 2, state: 'open', openRemainingMs: 1, trips: 0 } as never }),
    ).toThrow(/initialState.version must be 1 .*got 2/);
    expect(() =>
      circuitBreaker({
        initialState: { version: 1, state: 'ajar', openRemainingMs: -1, trips: 0.5 } as never,
      }),
    ).toThrow(/\(3\)/);
  });
});

describe('bad options', () => {
  it('lists every violation with its value in one RangeError', () => {
    let caught: unknown;
    try {
      circuitBreaker({
        openMs: -1,
        halfOpen: { maxProbes: 0, successThreshold: Number.NaN, probeTimeoutMs: 0 },
        trip: [],
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect(caught).toBeInstanceOf(RangeError);
    const options = (caught as InvalidOptionsError).violations.map((v) => v.option).sort();
    expect(options).toEqual([
      'halfOpen.maxProbes',
      'halfOpen.probeTimeoutMs',
      'halfOpen.successThreshold',
      'openMs',
      'trip',
    ]);
    expect(() => failureRate({ threshold: 0 })).toThrow(/threshold must be .*> 0 .*got 0/);
    expect(() => failureRate({ threshold: 1.5 })).toThrow(/got 1.5/);
    expect(() => failureRate({ threshold: 0.5, window: { kind: 'count', size: 0 } })).toThrow(/window.size/);
    expect(() => failureRate({ threshold: 0.5, window: { kind: 'time', ms: 1000, buckets: 0 } })).toThrow(
      /window.buckets/,
    );
    expect(() => consecutive(0)).toThrow(/n must be an integer >= 1, got 0/);
    expect(() => slowCallRate({ threshold: 0.5, slowerThanMs: Number.NaN })).toThrow(/slowerThanMs/);
  });
});
