// Random arrivals, durations, aborts, queue timeouts and errors on a virtual
// clock. Whatever happens: `active` never exceeds the limit, nothing leaks
// (at quiescence active === 0 and queued === 0), queued calls start in FIFO
// order, and every call settles exactly once, with the right outcome.

import { adaptiveLimit, type BulkheadPermit, BulkheadRejectedError, bulkhead } from '@bulwark/bulkhead';
import { sleep, VirtualClock } from '@bulwark/clock';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const call = fc.record({
  gapMs: fc.integer({ min: 0, max: 15 }),
  durationMs: fc.integer({ min: 0, max: 60 }),
  abortAfterMs: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
  fails: fc.boolean(),
});

type Outcome = { kind: 'value'; value: number } | { kind: 'error'; error: unknown };

describe('bulkhead properties', () => {
  it('never exceeds the limit, never leaks, keeps FIFO order and settles every call once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
        fc.array(call, { minLength: 5, maxLength: 80, size: 'max' }),
        async (limit, maxQueue, queueTimeoutMs, calls) => {
          const clock = new VirtualClock();
          const b = bulkhead({ maxConcurrent: limit, maxQueue, queueTimeoutMs, clock });
          const settled = new Array<number>(calls.length).fill(0);
          const outcomes = new Array<Outcome | undefined>(calls.length);
          const reasons = calls.map((_, i) => new Error(`caller ${i} gave up`));
          const abortedAt = new Array<number | undefined>(calls.length);
          const queuedAtArrival = new Array<boolean>(calls.length).fill(false);
          const starts: number[] = [];
          let maxActive = 0;
          let at = 0;
          calls.forEach((c, i) => {
            at += c.gapMs;
            clock.setTimeout(() => {
              const controller = new AbortController();
              if (c.abortAfterMs !== undefined)
                clock.setTimeout(() => {
                  abortedAt[i] = clock.now();
                  controller.abort(reasons[i]);
                }, c.abortAfterMs);
              const before = b.queued;
              b.execute(
                async () => {
                  starts.push(i);
                  maxActive = Math.max(maxActive, b.active);
                  await sleep(c.durationMs, { clock });
                  if (c.fails) throw new Error('failed');
                  return i;
                },
                { signal: controller.signal },
              ).then(
                (value) => {
                  settled[i]!++;
                  outcomes[i] = { kind: 'value', value };
                },
                (error: unknown) => {
                  settled[i]!++;
                  outcomes[i] = { kind: 'error', error };
                },
              );
              queuedAtArrival[i] = b.queued > before;
            }, at);
          });
          await clock.runAll();
          expect(maxActive).toBeLessThanOrEqual(limit);
          expect(b.active).toBe(0);
          expect(b.queued).toBe(0);
          expect(settled.every((n) => n === 1)).toBe(true);
          expect(b.stats().admitted).toBe(starts.length);
          const position = new Map(starts.map((i, k) => [i, k]));
          for (let i = 0; i < calls.length; i++) {
            const outcome = outcomes[i]!;
            if (!position.has(i)) {
              // Never admitted: refused by the bulkhead, or the caller gave up while it waited.
              expect(outcome.kind).toBe('error');
              const error = (outcome as { error: unknown }).error;
              if (error !== reasons[i]) expect(error).toBeInstanceOf(BulkheadRejectedError);
            } else if (abortedAt[i] === undefined && !calls[i]!.fails) {
              expect(outcome).toEqual({ kind: 'value', value: i });
            }
            // FIFO: a call that had to queue starts before any call that arrived after it.
            if (!queuedAtArrival[i] || !position.has(i)) continue;
            for (let j = i + 1; j < calls.length; j++) {
              if (position.has(j)) expect(position.get(i)!).toBeLessThan(position.get(j)!);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('with an adaptive limit, admits no call above the current limit and still leaks nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('aimd' as const, 'gradient2' as const, 'vegas' as const),
        fc.integer({ min: 0, max: 5 }),
        fc.array(call, { minLength: 20, maxLength: 150, size: 'max' }),
        async (algorithm, maxQueue, calls) => {
          const clock = new VirtualClock();
          const limit = adaptiveLimit({ algorithm, initialLimit: 4, minLimit: 1, maxLimit: 8 });
          const b = bulkhead({ maxConcurrent: limit, maxQueue, queueTimeoutMs: 50, clock });
          let settled = 0;
          let at = 0;
          let overLimit = 0;
          for (const c of calls) {
            at += c.gapMs;
            clock.setTimeout(() => {
              // The primitive: an admission happens only below the limit of the moment.
              const permit = b.tryAcquire();
              if (permit !== undefined) {
                if (b.active > b.limit) overLimit++;
                clock.setTimeout(() => (c.fails ? permit.dropped() : permit.success()), c.durationMs);
                settled++;
                return;
              }
              b.execute(() => sleep(c.durationMs, { clock })).then(
                () => settled++,
                () => settled++,
              );
            }, at);
          }
          await clock.runAll();
          expect(overLimit).toBe(0);
          expect(settled).toBe(calls.length);
          expect(b.active).toBe(0);
          expect(b.queued).toBe(0);
          expect(b.limit).toBeGreaterThanOrEqual(1);
          expect(b.limit).toBeLessThanOrEqual(8);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('holds exactly one slot per unreleased permit, however often permits are released', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.oneof(fc.constant('take' as const), fc.nat({ max: 20 })), { maxLength: 100 }),
        (limit, ops) => {
          const b = bulkhead({ maxConcurrent: limit, clock: new VirtualClock() });
          let warnings = 0;
          b.onWarning(() => warnings++);
          const permits: { permit: BulkheadPermit; released: boolean }[] = [];
          let expectedWarnings = 0;
          for (const op of ops) {
            if (op === 'take') {
              const permit = b.tryAcquire();
              const held = permits.filter((p) => !p.released).length;
              expect(permit === undefined).toBe(held >= limit);
              if (permit !== undefined) permits.push({ permit, released: false });
            } else if (permits.length > 0) {
              const p = permits[op % permits.length]!;
              if (p.released) expectedWarnings++;
              p.permit.release();
              p.released = true;
            }
            expect(b.active).toBe(permits.filter((p) => !p.released).length);
            expect(b.active).toBeLessThanOrEqual(limit);
          }
          expect(warnings).toBe(expectedWarnings);
        },
      ),
      { numRuns: 300 },
    );
  });
});
