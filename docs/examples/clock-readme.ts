import { sleep, VirtualClock } from '@bulwark/clock';

const clock = new VirtualClock();
const nap = sleep(1_000, { clock });
await clock.advance(1_000); // fires the timer and settles promise reactions
await nap;
