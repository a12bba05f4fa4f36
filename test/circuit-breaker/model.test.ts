// A model test: random sequences of calls, settlements (success, failure,
// abort), time advances and concurrent probes, run against the breaker and
// against a small reference model written from the contract. After every step
// the two must agree on the state, half-open never holds more than maxProbes,
// and results from an older generation (or from a probe whose permit was taken
// back after probeTimeoutMs) change nothing. At the end, waiting openMs +
// probeTimeoutMs always lets the next call through: the breaker is never stuck.

import {
  type CallOutcome,
  type CircuitPermit,
  type CircuitState,
  circuitBreaker,
  consecutive,
  failureRate,
  slowCallRate,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError, type Disposable, isBulwarkError } from '@bulwark/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

interface ModelPermit {
  readonly generation: number;
  readonly probe: boolean;
  readonly id: number;
  /** Its admission number: a failure admitted before a later-admitted success does not count. */
  readonly admission: number;
}

class Model {
  state: CircuitState = 'closed';
  generation = 0;
  inRow = 0;
  openUntil = 0;
  /** Probes in flight: [id, admitted at], oldest first. */
  probes: Array<[number, number]> = [];
  seq = 0;
  successes = 0;
  admissions = 0;
  lastSuccess = 0;
  readonly n: number;
  readonly openMs: number;
  readonly maxProbes: number;
  readonly successThreshold: number;
  readonly probeTimeoutMs: number;
  constructor(
    n: number,
    openMs: number,
    maxProbes: number,
    successThreshold: number,
    probeTimeoutMs: number,
  ) {
    this.n = n;
    this.openMs = openMs;
    this.maxProbes = maxProbes;
    this.successThreshold = successThreshold;
    this.probeTimeoutMs = probeTimeoutMs;
  }

  #to(state: CircuitState): void {
    this.state = state;
    this.generation++;
    this.probes = [];
    this.successes = 0;
  }
  #open(now: number): void {
    this.openUntil = now + this.openMs;
    this.#to('open');
  }
  observe(now: number): CircuitState {
    if (this.state === 'open' && now >= this.openUntil) this.#to('half-open');
    return this.state;
  }
  /** Probes still holding a permit: those admitted less than probeTimeoutMs ago. */
  liveProbes(now: number): number {
    this.probes = this.probes.filter(([, at]) => at + this.probeTimeoutMs > now);
    return this.probes.length;
  }
  acquire(now: number): ModelPermit | undefined {
    if (this.state === 'isolated') return undefined;
    if (this.state === 'open') {
      if (now < this.openUntil) return undefined;
      this.#to('half-open');
    }
    if (this.state === 'half-open') {
      if (this.liveProbes(now) >= this.maxProbes) return undefined;
      const id = ++this.seq;
      this.probes.push([id, now]);
      return { generation: this.generation, probe: true, id, admission: ++this.admissions };
    }
    return { generation: this.generation, probe: false, id: 0, admission: ++this.admissions };
  }
  settle(p: ModelPermit, kind: 'success' | 'failure' | 'ignore', now: number): void {
    if (p.generation !== this.generation) return;
    if (p.probe) {
      const at = this.probes.findIndex(([id]) => id === p.id);
      // Timed out: its permit was taken back; only a late success still counts.
      if (at < 0 && kind !== 'success') return;
      if (at >= 0) this.probes.splice(at, 1);
      if (kind === 'ignore') return;
      if (kind === 'failure') this.#open(now);
      else if (++this.successes >= this.successThreshold) this.#close();
      return;
    }
    if (this.state !== 'closed' || kind === 'ignore') return;
    if (kind === 'success') {
      this.inRow = 0;
      this.lastSuccess = Math.max(this.lastSuccess, p.admission);
    } else if (p.admission < this.lastSuccess) return;
    else if (++this.inRow >= this.n) this.#open(now);
  }
  /** isolate(): held open by hand; a handle id. */
  handles = new Set<number>();
  isolate(): number {
    const id = ++this.seq;
    this.handles.add(id);
    if (this.state !== 'isolated') this.#to('isolated');
    return id;
  }
  release(id: number): void {
    if (!this.handles.delete(id)) return;
    if (this.handles.size === 0 && this.state === 'isolated') this.#close();
  }
  reset(): void {
    this.handles.clear();
    this.#close();
  }
  #close(): void {
    this.inRow = 0;
    this.#to('closed');
  }
}

type Command =
  | { readonly kind: 'acquire' }
  | { readonly kind: 'settle'; readonly index: number; readonly how: 'success' | 'failure' | 'ignore' }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'isolate' }
  | { readonly kind: 'release'; readonly index: number }
  | { readonly kind: 'reset' };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'acquire' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      index: fc.nat(20),
      how: fc.constantFrom('success' as const, 'failure' as const, 'ignore' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 700 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'isolate' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('release' as const), index: fc.nat(5) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

describe('circuit breaker model', () => {
  it('agrees with the reference model, bounds probes, honours generations and is never stuck', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 900 }),
        fc.array(command, { minLength: 30, maxLength: 150, size: 'max' }),
        async (n, maxProbes, successThreshold, openMs, probeTimeoutMs, commands) => {
          const clock = new VirtualClock();
          const breaker = circuitBreaker({
            clock,
            trip: consecutive(n),
            openMs,
            halfOpen: { maxProbes, successThreshold, probeTimeoutMs },
          });
          const model = new Model(n, openMs, maxProbes, successThreshold, probeTimeoutMs);
          const outstanding: { real: CircuitPermit; model: ModelPermit }[] = [];
          const handles: { real: Disposable; model: number }[] = [];
          for (const c of commands) {
            if (c.kind === 'acquire') {
              const real = breaker.tryAcquire();
              const expected = model.acquire(clock.now());
              expect(real === undefined).toBe(expected === undefined);
              if (real !== undefined && expected !== undefined) {
                expect(real.probe).toBe(expected.probe);
                expect(real.generation).toBe(expected.generation);
                outstanding.push({ real, model: expected });
              }
            } else if (c.kind === 'settle') {
              if (outstanding.length === 0) continue;
              const [p] = outstanding.splice(c.index % outstanding.length, 1);
              if (c.how === 'success') p!.real.success(1);
              else if (c.how === 'failure') p!.real.failure(new Error('x'), 1);
              else p!.real.ignore();
              model.settle(p!.model, c.how, clock.now());
            } else if (c.kind === 'advance') {
              await clock.advance(c.ms);
            } else if (c.kind === 'isolate') {
              handles.push({ real: breaker.isolate(), model: model.isolate() });
            } else if (c.kind === 'release') {
              // Releasing a handle twice, or one from before a reset, must change nothing.
              if (handles.length === 0) continue;
              const h = handles[c.index % handles.length]!;
              h.real.dispose();
              model.release(h.model);
            } else {
              breaker.reset();
              model.reset();
            }
            const state = model.observe(clock.now());
            expect(breaker.state).toBe(state);
            const stats = breaker.stats();
            expect(stats.probes).toBeLessThanOrEqual(maxProbes);
            expect(stats.probes).toBe(state === 'half-open' ? model.liveProbes(clock.now()) : 0);
            expect(stats.generation).toBe(model.generation);
          }
          // Never stuck: whatever is outstanding (hung probes included), once the
          // hand-made isolations are released, waiting openMs + probeTimeoutMs
          // lets the very next call through.
          for (const h of handles) h.real.dispose();
          await clock.advance(openMs + probeTimeoutMs);
          expect(breaker.tryAcquire()).toBeDefined();
        },
      ),
      { numRuns: 300 },
    );
  });
});

// The second model: the policy (`run()` through `execute()`) and the permit
// (`tryAcquire()`) driven in lockstep by the same commands, with every kind
// of trip, a `failureOn`, callers that abort, deadlines of ours that fire,
// and durations measured on the clock. Both breakers must agree with the
// reference model and with each other (state, generation, and how many
// calls were admitted, judged a success, a failure, ignored or refused)
// after every step: the two paths classify alike.

type TripKind = 'consecutive' | 'failure-rate' | 'slow-call-rate';
type How = 'value' | 'bad-value' | 'error' | 'benign-error' | 'abort' | 'deadline';

class Benign extends Error {}

interface TripModel {
  record(failure: boolean, durationMs: number): void;
  shouldOpen(): boolean;
}

/** The last `size` calls, judged as the contract states: a share of `threshold` from `minimumCalls` on. */
class RateModel implements TripModel {
  calls: Array<{ failure: boolean; slow: boolean }> = [];
  readonly size: number;
  readonly threshold: number;
  readonly minimumCalls: number;
  readonly slowerThanMs: number | undefined;
  constructor(size: number, threshold: number, minimumCalls: number, slowerThanMs: number | undefined) {
    this.size = size;
    this.threshold = threshold;
    this.minimumCalls = minimumCalls;
    this.slowerThanMs = slowerThanMs;
  }
  record(failure: boolean, durationMs: number): void {
    this.calls.push({ failure, slow: this.slowerThanMs !== undefined && durationMs >= this.slowerThanMs });
    if (this.calls.length > this.size) this.calls.shift();
  }
  shouldOpen(): boolean {
    const n = this.calls.length;
    if (n < this.minimumCalls || n === 0) return false;
    const bad = this.calls.filter((c) => (this.slowerThanMs === undefined ? c.failure : c.slow)).length;
    return bad / n >= this.threshold;
  }
}

class InRowModel implements TripModel {
  inRow = 0;
  readonly n: number;
  constructor(n: number) {
    this.n = n;
  }
  record(failure: boolean): void {
    this.inRow = failure ? this.inRow + 1 : 0;
  }
  shouldOpen(): boolean {
    return this.inRow >= this.n;
  }
}

interface Counts {
  admitted: number;
  successes: number;
  failures: number;
  ignored: number;
  refused: number;
}

class PolicyModel {
  state: CircuitState = 'closed';
  generation = 0;
  openUntil = 0;
  probes: Array<[number, number]> = [];
  seq = 0;
  successes = 0;
  trip: TripModel;
  readonly counts: Counts = { admitted: 0, successes: 0, failures: 0, ignored: 0, refused: 0 };
  readonly makeTrip: () => TripModel;
  readonly withFailureOn: boolean;
  readonly openMs: number;
  readonly maxProbes: number;
  readonly successThreshold: number;
  readonly probeTimeoutMs: number;
  constructor(
    makeTrip: () => TripModel,
    withFailureOn: boolean,
    openMs: number,
    maxProbes: number,
    successThreshold: number,
    probeTimeoutMs: number,
  ) {
    this.makeTrip = makeTrip;
    this.withFailureOn = withFailureOn;
    this.openMs = openMs;
    this.maxProbes = maxProbes;
    this.successThreshold = successThreshold;
    this.probeTimeoutMs = probeTimeoutMs;
    this.trip = makeTrip();
  }
  #to(state: CircuitState): void {
    this.state = state;
    this.generation++;
    this.probes = [];
    this.successes = 0;
  }
  observe(now: number): CircuitState {
    if (this.state === 'open' && now >= this.openUntil) this.#to('half-open');
    return this.state;
  }
  liveProbes(now: number): number {
    this.probes = this.probes.filter(([, at]) => at + this.probeTimeoutMs > now);
    return this.probes.length;
  }
  lastSuccess = 0;
  acquire(now: number): { generation: number; probe: number; at: number; admission: number } | undefined {
    this.observe(now);
    if (this.state === 'open' || this.state === 'isolated') {
      this.counts.refused++;
      return undefined;
    }
    let probe = 0;
    if (this.state === 'half-open') {
      if (this.liveProbes(now) >= this.maxProbes) {
        this.counts.refused++;
        return undefined;
      }
      probe = ++this.seq;
      this.probes.push([probe, now]);
    }
    this.counts.admitted++;
    return { generation: this.generation, probe, at: now, admission: this.counts.admitted };
  }
  /** How the contract judges an outcome: the caller's abort is ignored; failureOn decides the rest. */
  verdict(how: How): 'success' | 'failure' | 'ignore' {
    if (how === 'abort') return 'ignore';
    if (!this.withFailureOn) return how === 'value' || how === 'bad-value' ? 'success' : 'failure';
    return how === 'bad-value' || how === 'error' || how === 'deadline' ? 'failure' : 'success';
  }
  settle(
    p: { generation: number; probe: number; at: number; admission: number },
    how: How,
    now: number,
  ): void {
    const kind = this.verdict(how);
    if (kind === 'success') this.counts.successes++;
    else if (kind === 'failure') this.counts.failures++;
    else this.counts.ignored++;
    if (p.generation !== this.generation) return;
    if (p.probe !== 0) {
      const at = this.probes.findIndex(([id]) => id === p.probe);
      if (at < 0 && kind !== 'success') return; // timed out: only a late success counts
      if (at >= 0) this.probes.splice(at, 1);
      if (kind === 'ignore') return;
      if (kind === 'failure') this.#open(now);
      else if (++this.successes >= this.successThreshold) this.#close();
      return;
    }
    if (this.state !== 'closed' || kind === 'ignore') return;
    if (kind === 'success') this.lastSuccess = Math.max(this.lastSuccess, p.admission);
    else if (p.admission < this.lastSuccess) return; // admitted before a later call succeeded
    this.trip.record(kind === 'failure', now - p.at);
    if (this.trip.shouldOpen()) this.#open(now);
  }
  #open(now: number): void {
    this.openUntil = now + this.openMs;
    this.#to('open');
  }
  #close(): void {
    this.trip = this.makeTrip();
    this.#to('closed');
  }
  isolate(): void {
    if (this.state !== 'isolated') this.#to('isolated');
  }
  reset(): void {
    this.#close();
  }
}

type LockstepCommand =
  | { readonly kind: 'call' }
  | { readonly kind: 'settle'; readonly index: number; readonly how: How }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'isolate' }
  | { readonly kind: 'reset' };

const lockstepCommand: fc.Arbitrary<LockstepCommand> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'call' as const }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      index: fc.nat(20),
      how: fc.constantFrom<How>('value', 'bad-value', 'error', 'benign-error', 'abort', 'deadline'),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 300 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'isolate' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

/** One call in flight on both breakers and in the model. */
interface InFlight {
  readonly permit: CircuitPermit;
  readonly permitAbort: AbortController;
  readonly settleRun: (how: How, reason: unknown) => void;
  readonly runAbort: AbortController;
  readonly done: Promise<unknown>;
  readonly model: { generation: number; probe: number; at: number; admission: number };
}

/** The error (or value) a call settles with, the same for both paths. */
function outcomeOf(how: How, abortReason: unknown): { ok: boolean; result: unknown } {
  switch (how) {
    case 'value':
      return { ok: true, result: 'good' };
    case 'bad-value':
      return { ok: true, result: 'bad' };
    case 'error':
      return { ok: false, result: new Error('down') };
    case 'benign-error':
      return { ok: false, result: new Benign('not the dependency') };
    case 'deadline':
      return { ok: false, result: abortReason };
    default:
      return { ok: false, result: abortReason };
  }
}

describe('circuit breaker policy and permit', () => {
  it('judge every outcome alike: failureOn, aborts, deadlines, rate and slow-call trips, probes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<TripKind>('consecutive', 'failure-rate', 'slow-call-rate'),
        fc.boolean(),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 1, max: 600 }),
        fc.array(lockstepCommand, { minLength: 30, maxLength: 150, size: 'max' }),
        async (tripKind, withFailureOn, n, maxProbes, successThreshold, openMs, probeTimeoutMs, commands) => {
          const clock = new VirtualClock();
          const size = n + 2;
          const minimumCalls = n;
          const threshold = 0.5;
          const slowerThanMs = 50;
          const trip =
            tripKind === 'consecutive'
              ? consecutive(n)
              : tripKind === 'failure-rate'
                ? failureRate({ threshold, minimumCalls, window: { kind: 'count', size } })
                : slowCallRate({ threshold, slowerThanMs, minimumCalls, window: { kind: 'count', size } });
          const makeTrip = (): TripModel =>
            tripKind === 'consecutive'
              ? new InRowModel(n)
              : new RateModel(
                  size,
                  threshold,
                  minimumCalls,
                  tripKind === 'slow-call-rate' ? slowerThanMs : undefined,
                );
          const options = {
            clock,
            trip,
            openMs,
            halfOpen: { maxProbes, successThreshold, probeTimeoutMs },
            failureOn: withFailureOn
              ? (o: CallOutcome) => (o.ok ? o.value === 'bad' : !(o.error instanceof Benign))
              : undefined,
          };
          const byPermit = circuitBreaker(options);
          const byPolicy = circuitBreaker(options);
          const model = new PolicyModel(
            makeTrip,
            withFailureOn,
            openMs,
            maxProbes,
            successThreshold,
            probeTimeoutMs,
          );
          const inFlight: InFlight[] = [];
          const isolations: Disposable[] = [];
          for (const c of commands) {
            if (c.kind === 'call') {
              const permitAbort = new AbortController();
              const permit = byPermit.tryAcquire({ signal: permitAbort.signal });
              const runAbort = new AbortController();
              let settleRun: ((how: How, reason: unknown) => void) | undefined;
              const done = byPolicy
                .execute(
                  () =>
                    new Promise<unknown>((resolve, reject) => {
                      settleRun = (how, reason) => {
                        const { ok, result } = outcomeOf(how, reason);
                        if (ok) resolve(result);
                        else reject(result);
                      };
                    }),
                  { signal: runAbort.signal },
                )
                .catch((error: unknown) => error);
              const expected = model.acquire(clock.now());
              expect(permit === undefined).toBe(expected === undefined);
              // The policy ran the function exactly when the permit was granted.
              expect(settleRun === undefined).toBe(expected === undefined);
              if (expected === undefined) {
                const refusal = await done;
                expect(isBulwarkError(refusal, 'ERR_CIRCUIT_OPEN')).toBe(true);
              } else {
                expect(permit!.probe).toBe(expected.probe !== 0);
                expect(permit!.generation).toBe(expected.generation);
                inFlight.push({
                  permit: permit!,
                  permitAbort,
                  settleRun: settleRun!,
                  runAbort,
                  done,
                  model: expected,
                });
              }
            } else if (c.kind === 'settle') {
              if (inFlight.length === 0) continue;
              const [call] = inFlight.splice(c.index % inFlight.length, 1);
              const { permit, permitAbort, runAbort, settleRun, done } = call!;
              let reason: unknown;
              if (c.how === 'abort') {
                reason = new Error('the caller gave up');
                permitAbort.abort(reason);
                runAbort.abort(reason);
              } else if (c.how === 'deadline') {
                // Our own deadline fired: it counts against the dependency.
                reason = new DeadlineExceededError('deadline', 100);
                permitAbort.abort(reason);
                runAbort.abort(reason);
              }
              const { ok, result } = outcomeOf(c.how, reason);
              if (ok) permit.success(undefined, result);
              else permit.failure(result);
              settleRun(c.how, reason);
              await done;
              model.settle(call!.model, c.how, clock.now());
            } else if (c.kind === 'advance') {
              await clock.advance(c.ms);
            } else if (c.kind === 'isolate') {
              isolations.push(byPermit.isolate(), byPolicy.isolate());
              model.isolate();
            } else {
              byPermit.reset();
              byPolicy.reset();
              model.reset();
            }
            const state = model.observe(clock.now());
            for (const breaker of [byPermit, byPolicy]) {
              expect(breaker.state).toBe(state);
              const stats = breaker.stats();
              expect(stats.generation).toBe(model.generation);
              expect({
                admitted: stats.admitted,
                successes: stats.successes,
                failures: stats.failures,
                ignored: stats.ignored,
                refused: stats.refused,
              }).toEqual(model.counts);
              expect(stats.probes).toBe(state === 'half-open' ? model.liveProbes(clock.now()) : 0);
            }
          }
          for (const call of inFlight) {
            call.permit.ignore();
            call.runAbort.abort(new Error('end'));
            call.settleRun('abort', new Error('end'));
            await call.done;
          }
          expect(byPolicy.stats()).toEqual(byPermit.stats());
        },
      ),
      { numRuns: 200 },
    );
  });
});
