import { type Clock, checkDelay, type Timer } from './clock.ts';
import { MinHeap } from './min-heap.ts';

class VirtualTimer implements Timer {
  cleared = false;
  readonly clock: VirtualClock;
  readonly due: number;
  readonly seq: number;
  readonly callback: () => void;
  constructor(clock: VirtualClock, due: number, seq: number, callback: () => void) {
    this.clock = clock;
    this.due = due;
    this.seq = seq;
    this.callback = callback;
  }
  clear(): void {
    if (this.cleared) return;
    this.cleared = true;
    this.clock._forget(this);
  }
  ref(): void {}
  unref(): void {}
}

function earlier(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** Lets every pending promise reaction run before the next timer fires. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that moves only when told to. Tests drive time with {@link advance}
 * and {@link runAll}, and never sleep in real time.
 *
 * Timers fire in due order, ties in the order they were created. Between two
 * firings every pending promise reaction runs, so `await clock.advance(1000)`
 * deterministically drives async code that sleeps on this clock.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #live = 0;
  /** Binary min-heap ordered by (due, seq); cleared timers are skipped lazily. */
  readonly #heap = new MinHeap<VirtualTimer>(earlier);

  /** @param startMs the reading of `now()` before any advance. Default: 0. */
  constructor(startMs = 0) {
    if (!Number.isFinite(startMs))
      throw new RangeError(`VirtualClock: startMs must be finite, got ${startMs}`);
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): Timer {
    checkDelay(ms, 'VirtualClock.setTimeout');
    const timer = new VirtualTimer(this, this.#now + Math.max(0, ms), this.#seq++, callback);
    if (timer.due === Number.POSITIVE_INFINITY) {
      timer.cleared = true;
      return timer;
    }
    this.#live++;
    this.#heap.push(timer);
    return timer;
  }

  /** How many timers are waiting to fire. */
  get pendingTimers(): number {
    return this.#live;
  }

  /** The instant the next timer is due, or undefined when none is pending. */
  get nextDue(): number | undefined {
    this.#dropCleared();
    return this.#heap.peek()?.due;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way at
   * its own instant, and lets promise reactions settle after each one.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(`VirtualClock.advance: ms must be a finite number >= 0, got ${ms}`);
    }
    const target = this.#now + ms;
    await settle();
    for (;;) {
      this.#dropCleared();
      const next = this.#heap.peek();
      if (next === undefined || next.due > target) break;
      this.#fireNext(next);
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /**
   * Fires timers in order, moving time to each, until none is pending.
   * @param limit the most timers it fires before it gives up. Default: 100,000.
   * @throws Error when timers keep scheduling timers past `limit`.
   */
  async runAll(limit = 100_000): Promise<void> {
    await settle();
    for (let fired = 0; ; fired++) {
      this.#dropCleared();
      const next = this.#heap.peek();
      if (next === undefined) return;
      if (fired >= limit) {
        throw new Error(`VirtualClock.runAll: still ${this.#live} timers pending after firing ${limit}`);
      }
      this.#fireNext(next);
      await settle();
    }
  }

  #fireNext(timer: VirtualTimer): void {
    this.#heap.pop();
    timer.cleared = true;
    this.#live--;
    this.#now = Math.max(this.#now, timer.due);
    timer.callback();
  }

  /** @internal called by a timer that was cleared while pending. */
  _forget(_timer: VirtualTimer): void {
    this.#live--;
  }

  #dropCleared(): void {
    while (this.#heap.size > 0 && this.#heap.peek()!.cleared) this.#heap.pop();
  }
}
