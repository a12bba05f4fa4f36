// An SDK registered while calls held bulkhead slots used to see their releases
// as -1 each: `bulwark.bulkhead.active` went negative, though the docs say the
// SDK may be registered before or after importing bulwark. An up-down counter
// now reports levels, so a provider never counts a release it did not see
// acquired, and it learns the true level at the next change.
import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

function gate() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { done, release };
}

describe('up-down counters with an SDK registered while calls are in flight', () => {
  it('bulkhead active and queued never go negative and report the true level', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 3, maxQueue: 5, name: 'late', clock });
    const gates = [gate(), gate(), gate(), gate(), gate()];
    const calls = gates.map((g) => b.execute(() => g.done));
    expect(b.active).toBe(3);
    expect(b.queued).toBe(2);

    const otel = installOtel(); // registered now, with 3 running and 2 waiting
    const sum = async (name: string) => (await otel.collect()).sum(name, 'bulkhead').late ?? 0;

    gates[0]!.release();
    await calls[0];
    // One slot was freed and handed to a waiter: 3 running, 1 waiting.
    expect(b.active).toBe(3);
    expect(b.queued).toBe(1);
    expect(await sum('bulwark.bulkhead.queued')).toBe(1);

    gates[1]!.release();
    gates[2]!.release();
    await Promise.all(calls.slice(1, 3));
    expect(await sum('bulwark.bulkhead.active')).toBe(2);
    expect(await sum('bulwark.bulkhead.queued')).toBe(0);

    for (const g of gates.slice(3)) g.release();
    await Promise.all(calls);
    expect(await sum('bulwark.bulkhead.active')).toBe(0);
    expect(await sum('bulwark.bulkhead.queued')).toBe(0);
  });

  it('a level reported to a provider that is replaced is not carried into the next one', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 4, name: 'swap', clock });
    const first = installOtel();
    const g1 = gate();
    const one = b.execute(() => g1.done);
    expect((await first.collect()).sum('bulwark.bulkhead.active', 'bulkhead').swap).toBe(1);
    await resetOtel();

    const second = installOtel();
    const g2 = gate();
    const two = b.execute(() => g2.done);
    g1.release();
    await one;
    expect((await second.collect()).sum('bulwark.bulkhead.active', 'bulkhead').swap).toBe(1);
    g2.release();
    await two;
    expect((await second.collect()).sum('bulwark.bulkhead.active', 'bulkhead').swap).toBe(0);
  });
});
