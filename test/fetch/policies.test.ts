import { InjectedFaultError, injectFault, injectLatency, injectOutcome } from '@bulwark/chaos';
import { BrokenCircuitError, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import {
  type ExecutionContext,
  fallback,
  InvalidOptionsError,
  isBulwarkError,
  type Operation,
} from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import { deadline, timeout } from '@bulwark/deadline';
import { createFetch } from '@bulwark/fetch';
import { hedging } from '@bulwark/hedging';
import { RateLimitedError, rateLimit } from '@bulwark/rate-limit';
import { constant, retry } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';
import { fakeFetch, hang, type Script, settle } from './helpers.ts';

const URL_A = 'http://a.test/items?q=1';

function setup(script: Script, options: Parameters<typeof createFetch>[0] = {}, clock = new VirtualClock()) {
  const fake = fakeFetch(script);
  const fetch = createFetch({ clock, fetch: fake.fetch, backoff: constant(100), ...options });
  return { clock, fetch, seen: fake.seen };
}

/** A policy that records the contexts it runs in, in the order it runs. */
class Recording extends BasePolicy {
  readonly seen: ExecutionContext[] = [];
  readonly #log: string[];
  readonly #label: string;
  constructor(clock: VirtualClock, log: string[], label: string) {
    super(clock);
    this.#log = log;
    this.#label = label;
  }
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    this.seen.push(ctx);
    this.#log.push(this.#label);
    return fn(ctx);
  }
}

/** Runs a fetch while the clock moves on, until it settles. */
async function drive(clock: VirtualClock, pending: Promise<Response>, stepMs = 50): Promise<Response> {
  let done = false;
  const result = pending.finally(() => {
    done = true;
  });
  result.catch(() => {});
  for (let i = 0; i < 400 && !done; i++) {
    await settle();
    await clock.advance(stepMs);
  }
  return result;
}

describe('createFetch() policies: composition by place', () => {
  it('runs call policies once per call, outside the retries, and attempt policies once per attempt', async () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const outer = new Recording(clock, log, 'call');
    const inner = new Recording(clock, log, 'attempt');
    const { fetch, seen } = setup(
      (_, n) => new Response(n === 1 ? 'busy' : 'ok', { status: n === 1 ? 503 : 200 }),
      { policies: { call: [outer], attempt: [inner] } },
      clock,
    );
    const response = await drive(clock, fetch(URL_A));
    expect(await response.text()).toBe('ok');
    expect(seen).toHaveLength(2);
    expect(log).toEqual(['call', 'attempt', 'attempt']);
    // The call policy sees the call's deadline; the attempts carry their numbers.
    expect(outer.seen[0]!.deadline).toBe(30_000);
    expect(inner.seen.map((c) => c.attempt)).toEqual([1, 2]);
  });

  it('retries a fault injected at attempt level, and the origin breaker counts it', async () => {
    const clock = new VirtualClock();
    let faults = 1;
    // A transient fault (a reset connection), as isRetryableError knows it.
    const reset = () => Object.assign(new Error('injected reset'), { code: 'ECONNRESET' });
    const chaos = injectFault({ rate: 1, clock, enabled: () => faults-- > 0, error: reset });
    const { fetch, seen } = setup(() => new Response('ok'), { policies: { attempt: [chaos] } }, clock);
    const failures: unknown[] = [];
    fetch.retry.onRetry(({ outcome }) => failures.push(outcome.ok ? outcome.value : outcome.error));
    const response = await drive(clock, fetch(URL_A));
    expect(await response.text()).toBe('ok');
    // The faulted attempt never reached the transport; the retry did.
    expect(seen).toHaveLength(1);
    expect(seen[0]!.request.headers.get('x-retry-attempt')).toBe('2');
    expect(failures).toHaveLength(1);
    expect((failures[0] as Error).message).toBe('injected reset');

    // injectFault()'s own error is not transient: it is not retried, and it counts against the origin.
    const always = injectFault({ rate: 1, clock });
    const broken = setup(
      () => new Response('ok'),
      { breakers: { trip: consecutive(2) }, policies: { attempt: [always] } },
      clock,
    );
    await expect(broken.fetch(URL_A)).rejects.toBeInstanceOf(InjectedFaultError);
    await expect(broken.fetch(URL_A)).rejects.toBeInstanceOf(InjectedFaultError);
    // Two injected failures opened the origin's breaker: the next call is refused without sending.
    await expect(broken.fetch(URL_A)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(broken.seen).toHaveLength(0);
  });

  it('bounds latency injected at attempt level by the attempt timeout, and retries it', async () => {
    const clock = new VirtualClock();
    let slow = 1;
    const chaos = injectLatency({ rate: 1, latencyMs: 5_000, clock, enabled: () => slow-- > 0 });
    const { fetch, seen } = setup(
      () => new Response('ok'),
      { attemptTimeoutMs: 1_000, policies: { attempt: [chaos] } },
      clock,
    );
    const started = clock.now();
    const response = await drive(clock, fetch(URL_A));
    expect(response.status).toBe(200);
    expect(seen).toHaveLength(1);
    // Cut at 1 s, then the 100 ms backoff: far less than the injected 5 s.
    expect(clock.now() - started).toBeLessThan(2_000);
  });

  it('refuses a call over a call-level rate limit without sending or retrying it', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 1, burst: 1, clock });
    const { fetch, seen } = setup(() => new Response('ok'), { policies: { call: [limit] } }, clock);
    const retries: unknown[] = [];
    fetch.retry.onRetry((e) => retries.push(e));
    expect((await fetch(URL_A)).status).toBe(200);
    const refused = await fetch(URL_A).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(isBulwarkError(refused, 'ERR_RATE_LIMITED')).toBe(true);
    expect(seen).toHaveLength(1);
    expect(retries).toHaveLength(0);
    await clock.advance(1_000);
    expect((await fetch(URL_A)).status).toBe(200);
  });

  it('neither retries an attempt-level rate limit refusal nor counts it against the origin', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 1, burst: 1, clock });
    const { fetch, seen } = setup(
      () => new Response('ok'),
      { breakers: { trip: consecutive(2) }, policies: { attempt: [limit] } },
      clock,
    );
    const retries: unknown[] = [];
    fetch.retry.onRetry((e) => retries.push(e));
    expect((await fetch(URL_A)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const refused = await fetch(URL_A).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RateLimitedError);
    }
    expect(seen).toHaveLength(1);
    expect(retries).toHaveLength(0);
    // Three local refusals in a row: the origin's breaker (two failures open it) saw none.
    expect(fetch.breakers!.get('http://a.test').state).toBe('closed');
  });

  it('answers from a call-level fallback when the call fails', async () => {
    const clock = new VirtualClock();
    const cached = fallback(() => new Response('cached', { status: 200 }), { clock });
    const { fetch, seen } = setup(
      () => Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })),
      { maxAttempts: 2, policies: { call: [cached] } },
      clock,
    );
    const response = await drive(clock, fetch(URL_A));
    expect(await response.text()).toBe('cached');
    expect(seen).toHaveLength(2);
  });

  it('retries a 503 injected at attempt level as it would a real one', async () => {
    const clock = new VirtualClock();
    let injections = 1;
    const chaos = injectOutcome({
      rate: 1,
      clock,
      enabled: () => injections-- > 0,
      outcome: () => ({ ok: true, value: new Response('injected', { status: 503 }) }),
    });
    const { fetch, seen } = setup(() => new Response('ok'), { policies: { attempt: [chaos] } }, clock);
    const response = await drive(clock, fetch(URL_A));
    expect(await response.text()).toBe('ok');
    expect(seen).toHaveLength(1);
  });

  it('throws a TypeError when a policy answers with something other than a Response', async () => {
    const clock = new VirtualClock();
    const chaos = injectOutcome({ rate: 1, clock, outcome: { ok: true, value: 42 } });
    const { fetch } = setup(
      () => new Response('ok'),
      { maxAttempts: 1, policies: { attempt: [chaos] } },
      clock,
    );
    await expect(fetch(URL_A)).rejects.toThrow(/policies\.attempt answered 42, not a Response/);
  });

  it('aborts an attempt policy with the caller’s reason', async () => {
    const clock = new VirtualClock();
    const chaos = injectLatency({ rate: 1, latencyMs: 5_000, clock });
    const { fetch } = setup(hang, { policies: { attempt: [chaos] } }, clock);
    const controller = new AbortController();
    const pending = fetch(URL_A, { signal: controller.signal });
    await settle();
    const reason = new Error('caller left');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});

describe('createFetch() policies: bad values', () => {
  const clock = new VirtualClock();
  const refuse = (policies: unknown, pattern: RegExp) => {
    const make = () => createFetch({ clock, policies: policies as never });
    expect(make).toThrow(InvalidOptionsError);
    expect(make).toThrow(pattern);
  };

  it('refuses values that are not policies, naming them', () => {
    refuse([injectFault({ clock })], /policies must be \{ call\?: Policy\[\], attempt\?: Policy\[\] \}/);
    refuse({ call: injectFault({ clock }) }, /policies\.call must be an array of policies/);
    refuse({ attempt: [{ run: 1 }] }, /policies\.attempt\[0\] must be a policy .*got \{/);
    refuse({ around: [] }, /policies\.around: is not a place: use call or attempt/);
  });

  it('refuses a policy on another clock', () => {
    refuse(
      { call: [rateLimit({ ratePerSecond: 1, burst: 1 })] },
      /policies\.call\[0\]\.clock must be createFetch\(\)'s clock/,
    );
  });

  it('refuses policies that cannot work at their place', () => {
    refuse({ call: [retry({ clock })] }, /policies\.call\[0\]: createFetch\(\) retries already/);
    refuse({ call: [timeout(1_000, { clock })] }, /policies\.call\[0\]: a timeout\(\) around the call/);
    refuse({ attempt: [retry({ clock })] }, /policies\.attempt\[0\]: a retry\(\) inside each attempt/);
    refuse(
      { attempt: [deadline(1_000, { clock })] },
      /policies\.attempt\[0\]: a deadline\(\) inside the retries/,
    );
  });

  it('refuses hedging() at either place: it would send a POST without a key more than once', () => {
    refuse({ call: [hedging({ clock })] }, /policies\.call\[0\]: .*use the hedging option/);
    refuse({ attempt: [hedging({ clock })] }, /policies\.attempt\[0\]: .*use the hedging option/);
  });

  it('sends a POST without an Idempotency-Key once, whatever its policies', async () => {
    const { fake, fetch } = (() => {
      const fake = fakeFetch((request) => hang(request));
      let made: ReturnType<typeof createFetch> | undefined;
      try {
        made = createFetch({
          clock,
          fetch: fake.fetch,
          policies: { attempt: [hedging({ clock, delayMs: 10 })] },
        });
      } catch {
        // Refused: nothing can send it twice.
      }
      return { fake, fetch: made };
    })();
    if (fetch !== undefined) {
      const controller = new AbortController();
      const call = fetch(URL_A, { method: 'POST', body: 'charge', signal: controller.signal });
      call.catch(() => {});
      await clock.advance(50);
      await settle();
      controller.abort(new Error('done'));
      await settle();
    }
    expect(fake.seen.length).toBeLessThanOrEqual(1);
  });

  it('accepts a deadline() around the call and a timeout() around each attempt', () => {
    const fetch = createFetch({
      clock,
      policies: { call: [deadline(1_000, { clock })], attempt: [timeout(500, { clock })] },
    });
    expect(typeof fetch).toBe('function');
  });
});
