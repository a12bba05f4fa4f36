// A model test: random sequences of calls, settlements (success, failure,
// abort), time advances and concurrent probes, run against the breaker and
// against a small reference model written from the contract. After every step
// the two must agree on the state, half-open never holds more than maxProbes,
// and results from an older generation (or from a probe whose permit was taken
// back after probeTimeoutMs) change nothing. At the end, waiting openMs +
// probeTimeoutMs always lets the next call through: the breaker is never stuck.

import { type CircuitPermit, type CircuitState, circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import type { Disposable } from '@bulwark/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

interface ModelPermit {
  readonly generation: number;
  readonly probe: boolean;
  readonly id: number;
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
      return { generation: this.generation, probe: true, id };
    }
    return { generation: this.generation, probe: false, id: 0 };
  }
  settle(p: ModelPermit, kind: 'success' | 'failure' | 'ignore', now: number): void {
    if (p.generation !== this.generation) return;
    if (p.probe) {
      const at = this.probes.findIndex(([id]) => id === p.id);
      if (at < 0) return; // timed out: its permit was taken back
      this.probes.splice(at, 1);
      if (kind === 'ignore') return;
      if (kind === 'failure') this.#open(now);
      else if (++this.successes >= this.successThreshold) this.#close();
      return;
    }
    if (this.state !== 'closed' || kind === 'ignore') return;
    if (kind === 'success') this.inRow = 0;
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
