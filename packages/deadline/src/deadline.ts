import { type Clock, systemClock, type Timer } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import { DeadlineExceededError } from '@bulwark/core';
import { OptionsChecker } from '@bulwark/core/authoring';

const DEADLINE_KEYS = new Set(['clock']);

const UNREF = Object.freeze({ unref: true });

/**
 * An absolute instant on a monotonic clock by which work must finish.
 *
 * Deadlines are instants on one process's clock and never cross a process
 * boundary as such: send {@link remaining} (a duration) downstream instead.
 */
export class Deadline {
  /** The instant, in milliseconds on {@link clock}. */
  readonly at: number;
  readonly clock: Clock;
  /** The budget this deadline was created with, in milliseconds (for messages). */
  readonly budgetMs: number;
  #controller: AbortController | undefined;
  #timer: Timer | undefined;

  private constructor(at: number, clock: Clock, budgetMs: number) {
    this.at = at;
    this.clock = clock;
    this.budgetMs = budgetMs;
  }

  /** A deadline `ms` milliseconds from now on `clock` (default: the system clock). */
  static after(ms: number, options?: { clock?: Clock | undefined }): Deadline {
    const check = new OptionsChecker('Deadline.after()');
    check.knownKeys(options, DEADLINE_KEYS);
    check.number('ms', ms, { min: 0, infinite: true, required: true });
    check.clock('clock', options?.clock, true);
    check.done();
    const clock = options?.clock ?? systemClock;
    return new Deadline(clock.now() + ms, clock, ms);
  }

  /** A deadline at the instant `at` on `clock` (default: the system clock). */
  static at(at: number, options?: { clock?: Clock | undefined }): Deadline {
    const check = new OptionsChecker('Deadline.at()');
    check.knownKeys(options, DEADLINE_KEYS);
    check.number('at', at, { infinite: true, required: true });
    check.clock('clock', options?.clock, true);
    check.done();
    const clock = options?.clock ?? systemClock;
    return new Deadline(at, clock, Math.max(0, at - clock.now()));
  }

  /** Milliseconds left, never negative. */
  remaining(): number {
    return Math.max(0, this.at - this.clock.now());
  }

  /** True once the clock has reached the deadline. */
  expired(): boolean {
    return this.clock.now() >= this.at;
  }

  /**
   * A signal that aborts at the deadline with a {@link DeadlineExceededError}.
   * Created on first read; its timer is shared with every other deadline on the
   * clock. Call {@link dispose} when the work finishes early to drop the timer.
   * Like `AbortSignal.timeout()`'s, that timer does not keep the process alive
   * by itself: the work the signal is passed to (a socket, a policy's call) does.
   */
  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    const expire = (): void => controller.abort(new DeadlineExceededError('deadline', this.budgetMs));
    if (this.expired()) expire();
    else this.#timer = deadlineTimers(this.clock).schedule(this.at, expire, UNREF);
    return controller.signal;
  }

  /** The earlier of this deadline and `other`. */
  min(other: Deadline | undefined): Deadline {
    if (other === undefined) return this;
    const otherAt = other.clock === this.clock ? other.at : this.clock.now() + other.remaining();
    return otherAt < this.at ? Deadline.at(otherAt, { clock: this.clock }) : this;
  }

  /** Cancels the signal's timer, if one was created. */
  dispose(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
