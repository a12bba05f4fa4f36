export type { Clock, Timer, TimerOptions } from './clock.ts';
export { defaultRandom, type Random, seededRandom } from './random.ts';
export { type SleepOptions, sleep } from './sleep.ts';
export { Stopwatch } from './stopwatch.ts';
export { systemClock, wallClockNow } from './system-clock.ts';
export { Ticker, type TickerOptions } from './ticker.ts';
export { VirtualClock } from './virtual-clock.ts';
