// Random arrivals, durations, aborts, queue timeouts and errors on a virtual
// clock. Whatever happens: `active` never exceeds the limit, nothing leaks
// (at quiescence active === 0 and queued === 0), queued calls start in FIFO
// order, and every call settles exactly once.

import { bulkhead } from '@bulwark/bulkhead';
import { sleep, VirtualClock } from '@bulwark/clock';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const call = fc.record({
  gapMs: fc.integer({ min: 0, max: 15 }),
  durationMs: fc.integer({ min: 0, max: 60 }),
  abortAfterMs: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
  fails: fc.boolean(),
});

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
          const queuedAtArrival = new Array<boolean>(calls.length).fill(false);
          const starts: number[] = [];
          let maxActive = 0;
          let at = 0;
          calls.forEach((c, i) => {
            at += c.gapMs;
            clock.setTimeout(() => {
              const controller = new AbortController();
              if (c.abortAfterMs !== undefined)
                clock.setTimeout(() => controller.abort(new Error('gave up')), c.abortAfterMs);
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
                () => settled[i]!++,
                () => settled[i]!++,
              );
              queuedAtArrival[i] = b.queued > before;
            }, at);
          });
          await clock.runAll();
          expect(maxActive).toBeLessThanOrEqual(limit);
          expect(b.active).toBe(0);
          expect(b.queued).toBe(0);
          expect(settled.every((n) => n === 1)).toBe(true);
          // FIFO: a call that had to queue starts before any call that arrived after it.
          const position = new Map(starts.map((i, k) => [i, k]));
          for (let i = 0; i < calls.length; i++) {
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
});
