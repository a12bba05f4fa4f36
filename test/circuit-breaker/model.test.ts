// A model test: random sequences of calls, settlements (success, failure,
// abort), time advances and concurrent probes, run against the breaker and
// against a small reference model written from the contract. After every step
// the two must agree on the state, half-open never holds more than maxProbes,
// and results from an older generation change nothing. At the end, waiting
// long enough always lets a call through: the breaker is never stuck.

import { type CircuitPermit, type CircuitState, circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

interface ModelPermit {
  readonly generation: number;
  readonly probe: boolean;
  readonly start: number;
}

class Model {
  state: CircuitState = 'closed';
  generation = 0;
  inRow = 0;
  openUntil = 0;
  probes: number[] = [];
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
  acquire(now: number): ModelPermit | undefined {
    if (this.state === 'open') {
      if (now < this.openUntil) return undefined;
      this.#to('half-open');
    }
    if (this.state === 'half-open') {
      if (this.probes.length > 0 && Math.min(...this.probes) + this.probeTimeoutMs <= now) {
        this.#open(now);
        return undefined;
      }
      if (this.probes.length >= this.maxProbes) return undefined;
      this.probes.push(now);
      return { generation: this.generation, probe: true, start: now };
    }
    return { generation: this.generation, probe: false, start: now };
  }
  settle(p: ModelPermit, kind: 'success' | 'failure' | 'ignore', now: number): void {
    if (p.generation !== this.generation) return;
    if (p.probe) {
      this.probes.splice(this.probes.indexOf(p.start), 1);
      if (kind === 'ignore') return;
      if (kind === 'failure') this.#open(now);
      else if (++this.successes >= this.successThreshold) {
        this.inRow = 0;
        this.#to('closed');
      }
      return;
    }
    if (kind === 'ignore') return;
    if (kind === 'success') this.inRow = 0;
    else if (++this.inRow >= this.n) this.#open(now);
  }
}

type Command =
  | { readonly kind: 'acquire' }
  | { readonly kind: 'settle'; readonly index: number; readonly how: 'success' | 'failure' | 'ignore' }
  | { readonly kind: 'advance'; readonly ms: number };

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
);

describe('circuit breaker model', () => {
  it('agrees with the reference model, bounds probes, honours generations and is never stuck', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(command, { minLength: 30, maxLength: 150, size: 'max' }),
        async (n, maxProbes, successThreshold, commands) => {
          const openMs = 300;
          const probeTimeoutMs = 500;
          const clock = new VirtualClock();
          const breaker = circuitBreaker({
            clock,
            trip: consecutive(n),
            openMs,
            halfOpen: { maxProbes, successThreshold, probeTimeoutMs },
          });
          const model = new Model(n, openMs, maxProbes, successThreshold, probeTimeoutMs);
          const outstanding: { real: CircuitPermit; model: ModelPermit }[] = [];
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
            } else {
              await clock.advance(c.ms);
            }
            expect(breaker.state).toBe(model.observe(clock.now()));
            const stats = breaker.stats();
            expect(stats.probes).toBeLessThanOrEqual(maxProbes);
            expect(stats.probes).toBe(model.probes.length);
            expect(stats.generation).toBe(model.generation);
          }
          // Never stuck: whatever is outstanding, enough waiting lets a call through.
          await clock.advance(openMs + probeTimeoutMs);
          let admitted = breaker.tryAcquire();
          if (admitted === undefined) {
            await clock.advance(openMs);
            admitted = breaker.tryAcquire();
          }
          expect(admitted).toBeDefined();
        },
      ),
      { numRuns: 300 },
    );
  });
});
