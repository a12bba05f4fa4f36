import type { Clock } from '@bulwark/clock';
import { CallbackError, type ExecutionContext, type Operation, type Outcome } from '@bulwark/core';
import {
  checkLatencySample,
  LatencyWindow,
  OptionsChecker,
  optionKeys,
  policyKind,
} from '@bulwark/core/authoring';
import { TimeLimitPolicy } from './policies.ts';

/** Options for {@link adaptiveTimeout}. Every time is in milliseconds. */
export interface AdaptiveTimeoutOptions {
  /**
   * The percentile of recent latencies the limit is derived from, in (0, 1):
   * about the share of good answers a limit at the percentile itself would
   * cut is 1 − percentile. Default: 0.999 (p99.9; with the default window of
   * 512, the largest fresh sample).
   */
  readonly percentile?: number | undefined;
  /** The limit is the percentile times this, a number >= 1. Default: 1.5. */
  readonly multiplier?: number | undefined;
  /**
   * The smallest limit it may choose, in milliseconds: a floor under a history
   * of very fast calls. At most `maxMs`. Default: 100.
   */
  readonly minMs?: number | undefined;
  /**
   * Fresh samples needed before the limit adapts; until then it is `maxMs`.
   * Fewer than about 1 / (1 − percentile) samples cannot show the percentile:
   * the largest of 100 is about the p99, and 1.5 × the p99 still cuts only
   * about 0.1% of answers with an exponential tail (1.5 × the largest of 20,
   * about the p95, would cut 1%). Default: 100.
   */
  readonly minSamples?: number | undefined;
  /** How many recent samples are kept (fixed memory), 8 to 65,536. Default: 512. */
  readonly sampleSize?: number | undefined;
  /** A sample older than this many milliseconds is forgotten. Default: 30,000. */
  readonly sampleTtlMs?: number | undefined;
  /**
   * Whether an attempt's outcome is a latency sample. An attempt this policy
   * timed out is always one, of unknown latency. Default: results are
   * samples, errors are not (a fast failure says nothing of how long an answer
   * takes). A throw from it rejects the call with a `CallbackError`.
   */
  readonly sampleOn?: ((outcome: Outcome) => boolean) | undefined;
  /** The clock of contexts this policy creates itself. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** Also put the attempt's deadline in scope, as `timeout()`'s `propagate` does. Default: false. */
  readonly propagate?: boolean | undefined;
}

/** The defaults of {@link adaptiveTimeout}. */
export const ADAPTIVE_TIMEOUT_DEFAULTS = Object.freeze({
  percentile: 0.999,
  multiplier: 1.5,
  minMs: 100,
  minSamples: 100,
  sampleSize: 512,
  sampleTtlMs: 30_000,
});

const ADAPTIVE_TIMEOUT_KEYS = optionKeys<AdaptiveTimeoutOptions>({
  percentile: true,
  multiplier: true,
  minMs: true,
  minSamples: true,
  sampleSize: true,
  sampleTtlMs: true,
  sampleOn: true,
  clock: true,
  propagate: true,
});

const ADAPTIVE_TIMEOUT_HINTS = {
  maxMs: 'the largest limit is the first argument, in milliseconds',
  timeout: 'the largest limit is the first argument, in milliseconds',
  floorMs: 'use minMs',
  factor: 'use multiplier',
};

const resultsOnly = (outcome: Outcome): boolean => outcome.ok;

/**
 * Adaptive timeout options checked and resolved by
 * {@link checkAdaptiveTimeoutOptions}: every default filled in, frozen.
 */
export interface ResolvedAdaptiveTimeoutOptions {
  readonly maxMs: number;
  readonly percentile: number;
  readonly multiplier: number;
  readonly minMs: number;
  readonly minSamples: number;
  readonly sampleSize: number;
  readonly sampleTtlMs: number;
  readonly sampleOn: (outcome: Outcome) => boolean;
  readonly clock: Clock | undefined;
  readonly propagate: boolean;
}

/** The resolved options objects made here: the constructor takes them as they are. */
const RESOLVED = new WeakSet<object>();

/**
 * Checks `adaptiveTimeout()`'s arguments and resolves them into a frozen
 * object that {@link AdaptiveTimeoutPolicy}'s constructor takes without
 * checking again, so that something holding many adaptive timeouts (one per
 * origin, as `createFetch()`'s `adaptiveAttemptTimeout`) checks its options
 * once, up front, and builds none to validate them.
 * @throws InvalidOptionsError (a RangeError) named after `component`, listing every violation with its value.
 */
export function checkAdaptiveTimeoutOptions(
  component: string,
  maxMs: number,
  options?: AdaptiveTimeoutOptions,
): ResolvedAdaptiveTimeoutOptions {
  const o = options ?? {};
  const check = new OptionsChecker(component);
  check.number('maxMs', maxMs, { above: 0, infinite: true, required: true });
  check.knownKeys(options, ADAPTIVE_TIMEOUT_KEYS, ADAPTIVE_TIMEOUT_HINTS);
  check.number('percentile', o.percentile, { above: 0, max: 0.999_999 });
  check.number('multiplier', o.multiplier, { min: 1 });
  check.number('minMs', o.minMs, { min: 0 });
  check.number('minSamples', o.minSamples, { integer: true, min: 1 });
  check.number('sampleSize', o.sampleSize, { integer: true, min: 8, max: 65_536 });
  check.number('sampleTtlMs', o.sampleTtlMs, { above: 0 });
  check.func('sampleOn', o.sampleOn);
  check.clock('clock', o.clock, true);
  check.expect(
    o.propagate === undefined || typeof o.propagate === 'boolean',
    'propagate',
    o.propagate,
    'a boolean',
  );
  const d = ADAPTIVE_TIMEOUT_DEFAULTS;
  const minMs = o.minMs ?? d.minMs;
  check.expect(!(typeof maxMs === 'number' && minMs > maxMs), 'minMs', minMs, `<= maxMs (${maxMs})`);
  const sampleSize = o.sampleSize ?? d.sampleSize;
  const minSamples = o.minSamples ?? d.minSamples;
  check.expect(!(minSamples > sampleSize), 'minSamples', minSamples, `<= sampleSize (${sampleSize})`);
  check.done();
  const resolved: ResolvedAdaptiveTimeoutOptions = Object.freeze({
    maxMs,
    percentile: o.percentile ?? d.percentile,
    multiplier: o.multiplier ?? d.multiplier,
    minMs,
    minSamples,
    sampleSize,
    sampleTtlMs: o.sampleTtlMs ?? d.sampleTtlMs,
    sampleOn: o.sampleOn ?? resultsOnly,
    clock: o.clock,
    propagate: o.propagate === true,
  });
  RESOLVED.add(resolved);
  return resolved;
}

/** `sampleOn(outcome)`, a throw from it as a CallbackError. */
function isSample(sampleOn: (outcome: Outcome) => boolean, outcome: Outcome): boolean {
  if (sampleOn === resultsOnly) return outcome.ok;
  try {
    return sampleOn(outcome);
  } catch (error) {
    throw new CallbackError('sampleOn', error);
  }
}

/**
 * A per-attempt time limit derived from the latency observed. See
 * {@link adaptiveTimeout}.
 *
 * The primitive is {@link currentMs} (the limit the next attempt gets) and
 * {@link recordLatency} (a sample); `run` times the attempt, bounds it, and
 * records what it saw.
 */
export class AdaptiveTimeoutPolicy extends TimeLimitPolicy {
  /** What `pipeline()` checks the order of: a per-attempt limit. */
  readonly [policyKind] = 'timeout' as const;
  /** The largest limit, in milliseconds (the limit until `minSamples` are fresh). */
  readonly maxMs: number;
  /** The smallest limit, in milliseconds. */
  readonly minMs: number;
  /** The limit is this many times the percentile. */
  readonly multiplier: number;
  readonly #window: LatencyWindow;
  readonly #sampleOn: (outcome: Outcome) => boolean;

  /**
   * @param maxMs The largest limit, in milliseconds, or the frozen object
   * {@link checkAdaptiveTimeoutOptions} resolved the options into (taken as it
   * is, without checking again; `options` is then ignored).
   * @throws InvalidOptionsError listing every invalid option.
   */
  constructor(maxMs: number | ResolvedAdaptiveTimeoutOptions, options?: AdaptiveTimeoutOptions) {
    const r =
      typeof maxMs === 'object' && maxMs !== null && RESOLVED.has(maxMs)
        ? maxMs
        : checkAdaptiveTimeoutOptions('adaptiveTimeout()', maxMs as number, options);
    super('timeout', r.clock, r.propagate, 'adaptiveTimeout');
    this.maxMs = r.maxMs;
    this.minMs = r.minMs;
    this.multiplier = r.multiplier;
    this.#sampleOn = r.sampleOn;
    this.#window = new LatencyWindow(r.sampleSize, r.sampleTtlMs, r.percentile, r.minSamples);
  }

  /**
   * The limit the next attempt gets, in milliseconds, before the deadline's
   * clamp: `multiplier` × the `percentile` of the fresh samples, within
   * [`minMs`, `maxMs`]; `maxMs` while fewer than `minSamples` are fresh, and
   * while timed-out attempts (samples of unknown latency) make up the
   * percentile. `now` is the clock's reading, when the caller has one.
   */
  currentMs(now?: number): number {
    const p = this.#window.value(now ?? this.clock.now());
    if (p === undefined) return this.maxMs;
    return Math.min(this.maxMs, Math.max(this.minMs, p * this.multiplier));
  }

  /**
   * Adds a latency sample (milliseconds) taken at `now`. The policy records
   * its own attempts; a caller that times attempts without it can feed it too.
   * @throws RangeError when `ms` is not a number >= 0 or `now` not a finite number, naming it.
   */
  recordLatency(ms: number, now?: number): void {
    checkLatencySample('adaptiveTimeout().recordLatency', ms, now);
    this.#window.record(ms, now ?? this.clock.now());
  }

  /**
   * Forgets every latency sample: the limit is `maxMs` until `minSamples`
   * fresh answers are in again. For when what was measured no longer describes
   * the dependency: `createFetch` calls it for an origin whose breaker opens,
   * since the origin's latency after the fault is unknown (a recovering server
   * has a queue, and the calls that waited for it arrive together).
   */
  forget(): void {
    this.#window.clear(this.clock.now());
  }

  /** How many fresh samples the limit was last computed from. */
  get freshSamples(): number {
    return this.#window.freshSamples;
  }

  run<T>(fn: Operation<T>, parent: ExecutionContext): Promise<T> {
    const clock = parent.clock;
    const started = clock.now();
    const limit = this.currentMs(started);
    let timedOut = false;
    const window = this.#window;
    const pending = this.runWithin(limit, fn, parent, () => {
      timedOut = true;
      // A timed-out attempt's latency is unknown, only known to exceed its
      // limit: it counts at once, as a sample above every answer. Once such
      // samples reach the percentile's share of the window, the percentile is
      // unknown too, and the limit goes back to maxMs (see currentMs).
      const now = clock.now();
      window.record(Number.POSITIVE_INFINITY, now);
      window.refresh(now);
    });
    const sampleOn = this.#sampleOn;
    return pending.then(
      (value) => {
        if (isSample(sampleOn, { ok: true, value })) {
          const now = clock.now();
          window.record(now - started, now);
        }
        return value;
      },
      (error: unknown) => {
        // Our own timeout is recorded above; an abort says nothing of latency.
        if (!timedOut && !parent.signal.aborted && isSample(sampleOn, { ok: false, error })) {
          const now = clock.now();
          window.record(now - started, now);
        }
        throw error;
      },
    );
  }
}

/**
 * A per-attempt timeout set from the latency observed rather than guessed: the
 * `percentile` (p99.9) of recent attempts times `multiplier` (1.5), never below
 * `minMs` (100 ms) and never above `maxMs`, nor past the deadline in the
 * context. Until `minSamples` (100) fresh samples are known the limit is
 * `maxMs`. An attempt it times out counts at once as a sample of unknown
 * latency, above every answer: when the service slows down as a whole, a
 * handful of timeouts (the percentile's share of the window: 0.1% of it for
 * p99.9, so one in a window of up to 1,000) put the limit back to `maxMs`,
 * and it adapts again from the answers once those samples have left the window. Samples are kept in a fixed window
 * of `sampleSize` (512) and forgotten after `sampleTtlMs` (30 s).
 *
 * Put it inside a retry, as `timeout()`: an attempt it ends rejects with
 * `DeadlineExceededError` (`source: 'timeout'`, retryable).
 *
 * @param maxMs the largest limit, in milliseconds (`Infinity` for none until it adapts)
 * @throws InvalidOptionsError (a RangeError) listing every invalid option.
 */
export function adaptiveTimeout(maxMs: number, options?: AdaptiveTimeoutOptions): AdaptiveTimeoutPolicy {
  return new AdaptiveTimeoutPolicy(maxMs, options);
}
