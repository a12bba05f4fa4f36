import { type Clock, checkClock, type Timer, type TimerOptions } from './clock.ts';
import { MinHeap } from './min-heap.ts';
import { systemClock } from './system-clock.ts';

class Entry implements Timer {
  callback: (() => void) | undefined;
  bucket: Bucket | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
  readonly owner: DeadlineTimers;
  /** Whether this entry keeps the process alive while it is pending. */
  readonly keepsAlive: boolean;
  constructor(owner: DeadlineTimers, callback: () => void, keepsAlive: boolean) {
    this.owner = owner;
    this.callback = callback;
    this.keepsAlive = keepsAlive;
  }
  clear(): void {
    if (this.bucket !== undefined) this.owner._remove(this);
  }
}

/** Every entry due within one millisecond slot, as a doubly linked list in scheduling order. */
class Bucket {
  readonly key: number;
  head: Entry | undefined;
  tail: Entry | undefined;
  /** False once the slot has left the map (fired or dropped). */
  held = true;
  constructor(key: number) {
    this.key = key;
  }
}

/**
 * One coarse timer shared by many deadlines on the same clock.
 *
 * A per-call timeout built from a platform timer plus an AbortSignal costs
 * microseconds; a call that finishes in time should not pay that. Deadlines are
 * grouped into 1 ms slots keyed by the instant rounded up, so expiry is never
 * early and at most about a millisecond late. Scheduling and cancelling are O(1)
 * in the common case (slots come in increasing order); one clock timer is armed
 * for the earliest non-empty slot. Within a slot, deadlines fire in the order
 * they were scheduled. That timer
 * keeps the process alive exactly while a deadline scheduled without
 * `{ unref: true }` is pending: a call that waits on its deadline gets its
 * rejection even when nothing else holds the process open, and an idle timer
 * (only unref'd deadlines, or slots whose deadlines were all cleared) never
 * holds it.
 *
 * Memory stays proportional to the pending deadlines, whatever instants they
 * name: a cleared deadline's slot is kept for reuse only while idle slots are
 * fewer than 1,024 or than busy ones; past that, every
 * idle slot is dropped at once (amortised constant time per slot).
 *
 * Get the instance for a clock with {@link deadlineTimers}.
 */
export class DeadlineTimers {
  readonly #clock: Clock;
  readonly #buckets = new Map<number, Bucket>();
  /** Min-heap of the keys in #buckets. */
  readonly #keys = new MinHeap<number>(lower);
  #live = 0;
  /** Pending entries that keep the process alive. */
  #refs = 0;
  /** Slots in #buckets with no entry left. */
  #idle = 0;
  #timer: Timer | undefined;
  #armedKey = Number.POSITIVE_INFINITY;
  /** The slot used last: consecutive calls usually land in the same millisecond. */
  #lastBucket: Bucket | undefined;

  /** @throws TypeError when `clock` is not a Clock. */
  constructor(clock: Clock) {
    checkClock(clock, 'DeadlineTimers', true);
    this.#clock = clock;
  }

  /** Deadlines scheduled and neither fired nor cleared. */
  get pending(): number {
    return this.#live;
  }

  /**
   * Slots held, idle ones included (for tests and diagnostics). At most
   * `2 * max(pending, 1024)`, whatever instants were scheduled.
   */
  get slots(): number {
    return this.#buckets.size;
  }

  /**
   * Calls `callback` once the clock reads `at` or later. Returns a Timer whose
   * `clear()` cancels it. `at` of Infinity never fires. While it is pending,
   * the deadline keeps the process alive, unless `options.unref` is set.
   */
  schedule(at: number, callback: () => void, options?: TimerOptions): Timer {
    const entry = new Entry(this, callback, options?.unref !== true);
    if (at === Number.POSITIVE_INFINITY) {
      entry.callback = undefined;
      return entry;
    }
    if (Number.isNaN(at))
      throw new RangeError('DeadlineTimers.schedule: at must be an instant in milliseconds, got NaN');
    const key = Math.ceil(at);
    let bucket = this.#lastBucket;
    if (bucket === undefined || bucket.key !== key) {
      bucket = this.#buckets.get(key);
      if (bucket === undefined) {
        bucket = new Bucket(key);
        this.#buckets.set(key, bucket);
        this.#keys.push(key);
      } else if (bucket.head === undefined) this.#idle--;
      this.#lastBucket = bucket;
    } else if (bucket.head === undefined) this.#idle--;
    // Appended, so that deadlines of one slot fire in the order they were
    // scheduled: an enclosing deadline before the nested ones it cuts short.
    entry.bucket = bucket;
    const tail = bucket.tail;
    if (tail !== undefined) tail.next = entry;
    else bucket.head = entry;
    entry.prev = tail;
    bucket.tail = entry;
    this.#live++;
    if (entry.keepsAlive && this.#refs++ === 0) this.#timer?.ref?.();
    if (key < this.#armedKey) this.#arm(key);
    return entry;
  }

  /** @internal */
  _remove(entry: Entry): void {
    const bucket = entry.bucket!;
    if (entry.prev !== undefined) entry.prev.next = entry.next;
    else bucket.head = entry.next;
    if (entry.next !== undefined) entry.next.prev = entry.prev;
    else bucket.tail = entry.prev;
    entry.bucket = entry.prev = entry.next = undefined;
    entry.callback = undefined;
    this.#live--;
    if (entry.keepsAlive && --this.#refs === 0) this.#timer?.unref?.();
    // An idle slot stays until the timer passes it, so a busy slot is not
    // re-created (and its key re-pushed) for every call; but only while idle
    // slots are few, or deadlines far away would pile them up.
    if (bucket.head === undefined && bucket.held && ++this.#idle >= COMPACT_MIN_IDLE_SLOTS) {
      if (this.#idle > this.#buckets.size - this.#idle) this.#compact();
    }
  }

  /** Drops every idle slot, and re-arms the timer for the earliest one left. */
  #compact(): void {
    const keys: number[] = [];
    for (const [key, bucket] of this.#buckets) {
      if (bucket.head === undefined) {
        bucket.held = false;
        this.#buckets.delete(key);
      } else keys.push(key);
    }
    this.#idle = 0;
    if (this.#lastBucket?.head === undefined) this.#lastBucket = undefined;
    // Ascending order is a valid min-heap.
    keys.sort((a, b) => a - b);
    this.#keys.resetSorted(keys);
    const first = keys[0];
    if (first === undefined) {
      this.#timer?.clear();
      this.#timer = undefined;
      this.#armedKey = Number.POSITIVE_INFINITY;
    } else if (first !== this.#armedKey) this.#arm(first);
  }

  #arm(key: number): void {
    this.#timer?.clear();
    this.#armedKey = key;
    this.#timer = this.#clock.setTimeout(this.#fire, key - this.#clock.now(), this.#refs > 0 ? REF : UNREF);
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedKey = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    const keys = this.#keys;
    let errors: unknown[] | undefined;
    while (keys.size > 0) {
      const key = keys.peek()!;
      const bucket = this.#buckets.get(key)!;
      if (key > now && bucket.head !== undefined) break;
      keys.pop();
      this.#buckets.delete(key);
      bucket.held = false;
      if (bucket.head === undefined) this.#idle--;
      if (this.#lastBucket === bucket) this.#lastBucket = undefined;
      // Take the head each time: a callback may clear (unlink) other entries
      // of this slot, and those must not fire.
      for (let entry = bucket.head; entry !== undefined; entry = bucket.head) {
        const next = entry.next;
        bucket.head = next;
        if (next !== undefined) next.prev = undefined;
        else bucket.tail = undefined;
        const callback = entry.callback!;
        entry.bucket = entry.prev = entry.next = entry.callback = undefined;
        this.#live--;
        if (entry.keepsAlive) this.#refs--;
        try {
          callback();
        } catch (error) {
          errors ??= [];
          errors.push(error);
        }
      }
    }
    const first = keys.peek();
    if (first !== undefined && first < this.#armedKey) this.#arm(first);
    if (errors !== undefined) {
      for (const error of errors) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  };
}

function lower(a: number, b: number): boolean {
  return a < b;
}

const UNREF = Object.freeze({ unref: true });
const REF = Object.freeze({ unref: false });

/**
 * Idle slots {@link DeadlineTimers} keeps for reuse before it drops them: past
 * this many, and past as many as busy slots, all idle slots go at once.
 */
const COMPACT_MIN_IDLE_SLOTS = 1024;

const shared = new WeakMap<Clock, DeadlineTimers>();

/**
 * The shared {@link DeadlineTimers} of `clock` (default: the system clock).
 * @throws TypeError when `clock` is given but is not a Clock (e.g. `null`).
 */
export function deadlineTimers(clock: Clock = systemClock): DeadlineTimers {
  // Almost every call asks for the same clock's (the system clock's): one
  // comparison instead of a WeakMap read.
  if (clock === lastClock) return lastTimers!;
  let timers = shared.get(clock);
  if (timers === undefined) {
    // Checked only on a miss (a WeakMap answers undefined for a non-object key),
    // so the per-call lookup stays one map read.
    checkClock(clock, 'deadlineTimers', true);
    timers = new DeadlineTimers(clock);
    shared.set(clock, timers);
  }
  lastClock = clock;
  lastTimers = timers;
  return timers;
}

let lastClock: Clock | undefined;
let lastTimers: DeadlineTimers | undefined;
