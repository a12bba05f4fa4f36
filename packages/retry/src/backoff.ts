import type { Random } from '@bulwark/clock';
import { type Backoff, CallbackError } from '@bulwark/core';
import {
  checkedDelayMs,
  isValidDelay,
  type OptionHints,
  OptionsChecker,
  optionKeys,
} from '@bulwark/core/authoring';

/** `T` with every property present and none undefined: options after defaults are applied. */
type Resolved<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

const EXPONENTIAL_KEYS = optionKeys<ExponentialOptions>({
  initialMs: true,
  maxMs: true,
  factor: true,
  jitter: true,
});

/** The jitter kinds of {@link exponential}, as defined in AWS's "Exponential Backoff and Jitter". */
export type Jitter = 'full' | 'equal' | 'decorrelated' | 'none';

/** The jitter kinds, for validation and documentation. */
export const JITTER_KINDS: readonly Jitter[] = Object.freeze(['full', 'equal', 'decorrelated', 'none']);

/** Options for {@link exponential}. */
const EXPONENTIAL_HINTS: OptionHints = {
  minTimeout: 'use initialMs',
  initialDelay: 'use initialMs',
  initialDelayMs: 'use initialMs',
  maxTimeout: 'use maxMs',
  maxDelay: 'use maxMs',
  maxDelayMs: 'use maxMs',
  exponent: 'use factor',
  randomize: "use jitter ('full', 'equal', 'decorrelated' or 'none')",
};

export interface ExponentialOptions {
  /** The base delay before the first retry, in milliseconds. Default: 100. */
  readonly initialMs?: number | undefined;
  /** The cap on any delay, in milliseconds. Default: 10,000. */
  readonly maxMs?: number | undefined;
  /** The growth factor per retry (>= 1). Default: 2. Decorrelated jitter grows by 3, as AWS defines it. */
  readonly factor?: number | undefined;
  /** How randomness spreads the delays. Default: `'full'`. */
  readonly jitter?: Jitter | undefined;
}

/** The defaults of {@link exponential}. */
export const EXPONENTIAL_DEFAULTS: Resolved<ExponentialOptions> = Object.freeze({
  initialMs: 100,
  maxMs: 10_000,
  factor: 2,
  jitter: 'full',
});

/** A delay that is always the same. */
export class ConstantBackoff implements Backoff {
  readonly ms: number;
  constructor(ms: number) {
    const check = new OptionsChecker('constant()');
    check.number('ms', ms, { min: 0, required: true });
    check.done();
    this.ms = ms;
    Object.freeze(this);
  }
  delayMs(): number {
    return this.ms;
  }
}

/**
 * Exponential growth from `initialMs` by `factor`, capped at `maxMs`, with
 * jitter. With `b = min(maxMs, initialMs × factor^(attempt − 1))` and `r` a
 * uniform random number in [0, 1):
 *
 * | jitter | delay |
 * |---|---|
 * | `none` | `b` |
 * | `full` | `r × b` |
 * | `equal` | `b/2 + r × b/2` |
 * | `decorrelated` | `min(maxMs, initialMs + r × (3 × previous − initialMs))`, previous starting at `initialMs` (AWS's `min(cap, random_between(base, sleep × 3))`) |
 *
 * Every delay is finite and in [0, maxMs] for any attempt number: the growth
 * saturates at the cap instead of overflowing.
 */
export class ExponentialBackoff implements Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: Jitter;
  /** The first attempt number whose undithered delay reaches the cap. */
  readonly #saturatesAt: number;

  constructor(options?: ExponentialOptions) {
    const initialMs = options?.initialMs ?? EXPONENTIAL_DEFAULTS.initialMs;
    const maxMs = options?.maxMs ?? EXPONENTIAL_DEFAULTS.maxMs;
    const factor = options?.factor ?? EXPONENTIAL_DEFAULTS.factor;
    const jitter = options?.jitter ?? EXPONENTIAL_DEFAULTS.jitter;
    const check = new OptionsChecker('exponential()');
    check.knownKeys(options, EXPONENTIAL_KEYS, EXPONENTIAL_HINTS);
    const okInitial = check.number('initialMs', initialMs, { min: 0 });
    const okMax = check.number('maxMs', maxMs, { min: 0 });
    check.number('factor', factor, { min: 1 });
    check.oneOf('jitter', jitter, JITTER_KINDS);
    if (okInitial && okMax) {
      check.expect(initialMs <= maxMs, 'initialMs', initialMs, `<= maxMs (${maxMs})`);
    }
    check.done();
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.factor = factor;
    this.jitter = jitter;
    // initialMs × factor^(n−1) >= maxMs from n = 1 + log(maxMs/initialMs)/log(factor) on.
    this.#saturatesAt =
      initialMs === 0 || initialMs === maxMs
        ? 1
        : factor === 1
          ? Number.POSITIVE_INFINITY
          : 1 + Math.ceil(Math.log(maxMs / initialMs) / Math.log(factor));
    Object.freeze(this);
  }

  /** The undithered delay for `attempt`, saturated at the cap. */
  base(attempt: number): number {
    if (this.initialMs === 0) return 0;
    if (!(attempt < this.#saturatesAt)) return this.maxMs;
    const grown = this.initialMs * this.factor ** (Math.max(1, attempt) - 1);
    return Math.min(grown, this.maxMs);
  }

  delayMs(attempt: number, previousDelayMs: number, random: Random): number {
    switch (this.jitter) {
      case 'none':
        return this.base(attempt);
      case 'full':
        return clamp(random() * this.base(attempt), this.maxMs);
      case 'equal': {
        const half = this.base(attempt) / 2;
        return clamp(half + random() * half, this.maxMs);
      }
      case 'decorrelated': {
        // AWS: sleep = min(cap, random_between(base, sleep × 3)). The previous
        // delay is held to [initialMs, maxMs] first (a Retry-After hint fed back
        // as the previous delay can be anything); the draw is capped after.
        const previous =
          previousDelayMs > this.initialMs ? Math.min(this.maxMs, previousDelayMs) : this.initialMs;
        const r = random();
        // r = 0 is the bottom of the range even where 3 × previous overflows (0 × Infinity is NaN).
        return r === 0
          ? this.initialMs
          : clamp(this.initialMs + r * (previous * 3 - this.initialMs), this.maxMs);
      }
    }
  }
}

/** The signature of a custom schedule for {@link fromFunction}. */
export type BackoffFunction = (attempt: number, previousDelayMs: number, random: Random) => number;

/**
 * A schedule from a function. What it returns is checked: a value that is not
 * a finite number >= 0 stops the retry loop with an error that says so.
 */
export class FunctionBackoff implements Backoff {
  readonly #fn: BackoffFunction;
  constructor(fn: BackoffFunction) {
    const check = new OptionsChecker('fromFunction()');
    check.func('fn', fn, true);
    check.done();
    this.#fn = fn;
    Object.freeze(this);
  }
  delayMs(attempt: number, previousDelayMs: number, random: Random): number {
    const ms = this.#fn(attempt, previousDelayMs, random);
    if (!isValidDelay(ms)) {
      throw new RangeError(
        `fromFunction(): the backoff function must return a finite number of milliseconds >= 0, got ${String(ms)} for attempt ${attempt}`,
      );
    }
    return ms;
  }
}

function clamp(ms: number, maxMs: number): number {
  // Guards the arithmetic: NaN and negative zero never leave a backoff.
  if (!(ms > 0)) return 0;
  return Math.min(ms, maxMs);
}

/** The same delay before every retry, in milliseconds. */
export function constant(ms: number): ConstantBackoff {
  return new ConstantBackoff(ms);
}

/** Exponential backoff with jitter; see {@link ExponentialBackoff} for the formulas and defaults. */
export function exponential(options?: ExponentialOptions): ExponentialBackoff {
  return new ExponentialBackoff(options);
}

/** A schedule from `(attempt, previousDelayMs, random) => ms`. */
export function fromFunction(fn: BackoffFunction): FunctionBackoff {
  return new FunctionBackoff(fn);
}

/** Calls a backoff, turning a throw into a {@link CallbackError} that stops the loop. */
export function callBackoff(
  backoff: Backoff,
  attempt: number,
  previousDelayMs: number,
  random: Random,
): number {
  try {
    return checkedDelayMs(backoff, attempt, previousDelayMs, random);
  } catch (error) {
    throw new CallbackError('retry backoff', error);
  }
}
