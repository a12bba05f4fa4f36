import { sleep, VirtualClock } from '@bulwark/clock';
import { deadline } from '@bulwark/deadline';

// Tests drive time by hand: no real waiting, no fake global timers.
export async function deadlineFiresOnTime(): Promise<boolean> {
  const clock = new VirtualClock();
  const call = deadline(100, { clock })
    .execute((ctx) => sleep(1_000, { clock, signal: ctx.signal }))
    .then(
      () => 'finished',
      (error: { code?: string }) => error.code,
    );
  await clock.advance(100);
  return (await call) === 'ERR_DEADLINE_EXCEEDED';
}
