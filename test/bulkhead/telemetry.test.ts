import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

/** A call that finishes when `release()` is called. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { done, release };
}

describe('bulkhead telemetry', () => {
  it('tracks active calls and queue depth as up-down counters and counts rejections by reason', async () => {
    const otel = installOtel();
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 2, maxQueue: 2, queueTimeoutMs: 100, name: 'db', clock });
    const points = async (name: string) =>
      (await otel.collect()).points(name).filter((p) => p.bulkhead === 'db');

    const g = gate();
    const running = [b.execute(() => g.done), b.execute(() => g.done)];
    const waiting = [
      b.execute(() => 'a').catch((e: unknown) => e),
      b.execute(() => 'b').catch((e: unknown) => e),
    ];
    await b.execute(() => 'refused').catch(() => undefined);
    expect(await points('bulwark.bulkhead.active')).toEqual([{ bulkhead: 'db', value: 2 }]);
    expect(await points('bulwark.bulkhead.queued')).toEqual([{ bulkhead: 'db', value: 2 }]);

    await clock.advance(100); // both waiters time out
    await Promise.all(waiting);
    expect(await points('bulwark.bulkhead.queued')).toEqual([{ bulkhead: 'db', value: 0 }]);
    expect(await points('bulwark.bulkhead.rejections')).toEqual(
      expect.arrayContaining([
        { bulkhead: 'db', reason: 'queue-full', value: 1 },
        { bulkhead: 'db', reason: 'queue-timeout', value: 2 },
      ]),
    );
    g.release();
    await Promise.all(running);
    expect(await points('bulwark.bulkhead.active')).toEqual([{ bulkhead: 'db', value: 0 }]);
  });
});
