import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';

const ADAPTIVE_LIMIT_KEYS = optionKeys<AdaptiveLimitOptions>({
  algorithm: true,
  initialLimit: true,
  minLimit: true,
  maxLimit: true,
  backoffRatio: true,
  timeoutMs: true,
  rttTolerance: true,
  queueSize: true,
  smoothing: true,
  longWindow: true,
  probeMultiplier: true,
});

/** `T` with every property present and none undefined: options after defaults are applied. */
type Resolved<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

/** One finished call, as a limit learns from it. */
export interface LimitSample {
  /** How long the call held its slot, in milliseconds. */
  readonly rttMs: number;
  /** When the call got its slot, on the bulkhead's clock. */
  readonly startedAt: number;
  /** Calls in flight when this one started (itself included). */
  readonly inflight: number;
  /**
   * True when the call showed overload: it timed out, or the dependency shed
   * it. Algorithms back off on drops.
   */
  readonly dropped: boolean;
}

/** Where a bulkhead gets its concurrency limit. A number is a fixed limit. */
export interface LimitSource {
  /** The current limit: an integer >= 1. */
  readonly limit: number;
  /** Learns from one finished call. */
  onSample(sample: LimitSample): void;
  /** Whether the bulkhead must time calls (and report samples) for this source. */
  readonly adaptive: boolean;
}

/** The algorithms of {@link adaptiveLimit}. */
export type LimitAlgorithm = 'aimd' | 'gradient2' | 'vegas';

/** Options for {@link adaptiveLimit}; every algorithm takes the first four. */
export interface AdaptiveLimitOptions {
  readonly algorithm: LimitAlgorithm;
  /** The limit to start from. Default: 20. */
  readonly initialLimit?: number | undefined;
  /** The lowest limit. Default: 1. */
  readonly minLimit?: number | undefined;
  /** The highest limit. Default: 1,000. */
  readonly maxLimit?: number | undefined;
  /** AIMD: the factor a drop multiplies the limit by, in (0, 1). Default: 0.9. */
  readonly backoffRatio?: number | undefined;
  /** AIMD: a call slower than this counts as a drop, in milliseconds. Default: 5,000. */
  readonly timeoutMs?: number | undefined;
  /** Gradient2: how much latency growth is tolerated before backing off (>= 1). Default: 1.5. */
  readonly rttTolerance?: number | undefined;
  /**
   * Gradient2: the calls the limit may grow by per update while latency holds
   * (the queue it allows at the dependency), > 0. Default: 4.
   */
  readonly queueSize?: number | undefined;
  /** Gradient2 and Vegas: how far each update moves the limit toward the new estimate, in (0, 1]. Default: 0.2 (Gradient2), 1 (Vegas). */
  readonly smoothing?: number | undefined;
  /** Gradient2: windows in the long-term RTT average. Default: 600. */
  readonly longWindow?: number | undefined;
  /** Vegas: re-measure the no-load RTT every this many windows. Default: 30. */
  readonly probeMultiplier?: number | undefined;
}

/** The defaults of {@link adaptiveLimit}. */
export const ADAPTIVE_LIMIT_DEFAULTS = Object.freeze({
  initialLimit: 20,
  minLimit: 1,
  maxLimit: 1_000,
  backoffRatio: 0.9,
  timeoutMs: 5_000,
  rttTolerance: 1.5,
  queueSize: 4,
  gradientSmoothing: 0.2,
  vegasSmoothing: 1,
  longWindow: 600,
  probeMultiplier: 30,
});

/** A fixed limit. */
export class FixedLimit implements LimitSource {
  readonly limit: number;
  readonly adaptive = false;
  constructor(limit: number) {
    this.limit = limit;
  }
  onSample(): void {}
}

/**
 * A limit that learns the dependency's capacity from each call's latency and
 * outcome, after Netflix's concurrency-limits (AIMD, Vegas, Gradient2) and the
 * gradient controller of Envoy's adaptive-concurrency filter. See
 * docs/bulkhead.md for the formulas and defaults.
 */
export abstract class AdaptiveLimit implements LimitSource {
  readonly adaptive = true;
  readonly algorithm: LimitAlgorithm;
  readonly minLimit: number;
  readonly maxLimit: number;
  /** The limit as a real number; `limit` is its integer part. */
  protected estimate: number;
  #count = 0;
  #rttSum = 0;
  #maxInflight = 0;
  #dropped = false;
  #lastStart = Number.NEGATIVE_INFINITY;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;

  constructor(algorithm: LimitAlgorithm, initialLimit: number, minLimit: number, maxLimit: number) {
    this.algorithm = algorithm;
    this.minLimit = minLimit;
    this.maxLimit = maxLimit;
    this.estimate = initialLimit;
  }

  get limit(): number {
    return Math.max(1, Math.floor(this.estimate));
  }

  protected clamp(value: number): number {
    return Math.min(this.maxLimit, Math.max(this.minLimit, value));
  }

  /**
   * Collects samples into windows of at least 10 calls and at least one
   * limit's worth (at full use, about one round trip), then updates the limit once per
   * window from the window's mean RTT, highest in-flight count and whether
   * any call dropped. After a decrease, calls that started before the
   * latest-started call of the window that caused it are left out: they ran
   * under the old limit, and counting their drops again would collapse the
   * limit after one overload.
   */
  onSample(sample: LimitSample): void {
    if (sample.startedAt < this.#lastDecreaseAt) return;
    this.#count++;
    this.#rttSum += sample.rttMs;
    if (sample.inflight > this.#maxInflight) this.#maxInflight = sample.inflight;
    if (sample.dropped) this.#dropped = true;
    if (sample.startedAt > this.#lastStart) this.#lastStart = sample.startedAt;
    if (this.#count < 10 || this.#count < this.estimate) return;
    const before = this.estimate;
    this.update({
      rttMs: this.#rttSum / this.#count,
      inflight: this.#maxInflight,
      dropped: this.#dropped,
      samples: this.#count,
    });
    if (this.estimate < before) this.#lastDecreaseAt = this.#lastStart;
    this.#count = 0;
    this.#rttSum = 0;
    this.#maxInflight = 0;
    this.#dropped = false;
  }

  /** Updates the estimate from one window of samples. */
  protected abstract update(window: LimitWindow): void;
}

/** What one window of samples shows. */
export interface LimitWindow {
  /** The mean RTT of the window's calls, in milliseconds. */
  readonly rttMs: number;
  /** The most calls in flight the window saw. */
  readonly inflight: number;
  /** Whether any call of the window dropped. */
  readonly dropped: boolean;
  /** How many calls the window holds. */
  readonly samples: number;
}

/**
 * Additive increase, multiplicative decrease: +1 after a window in which at
 * least half the limit was in use, × `backoffRatio` after a window with a drop
 * (or a mean RTT above `timeoutMs`). Simple and robust; it finds the limit by causing
 * drops, so it needs a dependency that sheds or times out when overloaded.
 */
export class AimdLimit extends AdaptiveLimit {
  readonly backoffRatio: number;
  readonly timeoutMs: number;
  constructor(
    o: Resolved<
      Pick<AdaptiveLimitOptions, 'initialLimit' | 'minLimit' | 'maxLimit' | 'backoffRatio' | 'timeoutMs'>
    >,
  ) {
    super('aimd', o.initialLimit, o.minLimit, o.maxLimit);
    this.backoffRatio = o.backoffRatio;
    this.timeoutMs = o.timeoutMs;
  }
  protected update(s: LimitWindow): void {
    if (s.dropped || s.rttMs > this.timeoutMs) this.estimate = this.clamp(this.estimate * this.backoffRatio);
    else if (s.inflight * 2 >= this.estimate) this.estimate = this.clamp(this.estimate + 1);
  }
}

/**
 * Gradient2: compares a short-term RTT (a window's mean) with a long-term
 * average over about `longWindow` windows.
 * `gradient = clamp(rttTolerance × longRtt / shortRtt, 0.5, 1)`, and the new
 * limit is `limit × gradient + queueSize`, smoothed (unsmoothed when the
 * gradient is at its floor or a call dropped). The limit shrinks as latency
 * rises above the long-term average and grows while it does not.
 */
export class Gradient2Limit extends AdaptiveLimit {
  readonly rttTolerance: number;
  readonly queueSize: number;
  readonly smoothing: number;
  readonly longWindow: number;
  #longRtt = 0;
  #samples = 0;
  constructor(
    o: Resolved<
      Pick<
        AdaptiveLimitOptions,
        'initialLimit' | 'minLimit' | 'maxLimit' | 'rttTolerance' | 'queueSize' | 'smoothing' | 'longWindow'
      >
    >,
  ) {
    super('gradient2', o.initialLimit, o.minLimit, o.maxLimit);
    this.rttTolerance = o.rttTolerance;
    this.queueSize = o.queueSize;
    this.smoothing = o.smoothing;
    this.longWindow = o.longWindow;
  }
  /** The long-term RTT average, in milliseconds. */
  get longRttMs(): number {
    return this.#longRtt;
  }
  protected update(s: LimitWindow): void {
    const shortRtt = Math.max(s.rttMs, 1e-3);
    // Long-term average: a plain mean while warming up, then exponential.
    // While the short RTT is above what is tolerated (overload), the long
    // average learns ten times slower, so a long overload does not become the
    // new normal within a few seconds; a lasting slowdown is still learnt.
    this.#samples++;
    const overloaded = this.#samples > 1 && shortRtt > this.rttTolerance * this.#longRtt;
    const n = Math.min(this.#samples, this.longWindow) * (overloaded ? 10 : 1);
    this.#longRtt = this.#samples === 1 ? shortRtt : this.#longRtt + (shortRtt - this.#longRtt) / n;
    // A long average far above the short one (after an overload passed) decays faster.
    if (this.#longRtt / shortRtt > 2) this.#longRtt *= 0.95;
    // Application-limited: too little in flight to learn anything.
    if (s.inflight < this.estimate / 2 && !s.dropped) return;
    const gradient = s.dropped
      ? 0.5
      : Math.max(0.5, Math.min(1, (this.rttTolerance * this.#longRtt) / shortRtt));
    const target = this.estimate * gradient + this.queueSize;
    // At the floor (the RTT at least doubled, or a drop), back off at once
    // rather than smoothed: that is an overload, and every window spent above
    // capacity adds queueing to every call.
    const smoothing = gradient <= 0.5 ? 1 : this.smoothing;
    this.estimate = this.clamp(this.estimate * (1 - smoothing) + target * smoothing);
  }
}

/**
 * TCP Vegas applied to concurrency: from the no-load RTT (the least seen) and
 * the sample RTT it estimates the queue at the dependency,
 * `queue = limit × (1 − rttNoLoad / rtt)`, and keeps it between
 * `alpha = 3·log10(limit)` and `beta = 6·log10(limit)`: grow by `beta` when the
 * queue is at most `log10(limit)`, by `log10(limit)` below alpha, and shrink by
 * `log10(limit)` for each call of the window above beta or on a drop (at most
 * halving the limit per window). The no-load RTT is measured again every
 * `probeMultiplier` windows (about `probeMultiplier × limit` calls), so it
 * follows a dependency that got permanently slower.
 */
export class VegasLimit extends AdaptiveLimit {
  readonly smoothing: number;
  readonly probeMultiplier: number;
  #rttNoLoad = 0;
  #sinceProbe = 0;
  constructor(
    o: Resolved<
      Pick<AdaptiveLimitOptions, 'initialLimit' | 'minLimit' | 'maxLimit' | 'smoothing' | 'probeMultiplier'>
    >,
  ) {
    super('vegas', o.initialLimit, o.minLimit, o.maxLimit);
    this.smoothing = o.smoothing;
    this.probeMultiplier = o.probeMultiplier;
  }
  /** The no-load RTT estimate, in milliseconds. */
  get rttNoLoadMs(): number {
    return this.#rttNoLoad;
  }
  protected update(s: LimitWindow): void {
    const rtt = Math.max(s.rttMs, 1e-3);
    if (++this.#sinceProbe >= this.probeMultiplier) {
      // Re-measure, but let the no-load RTT rise at most 1.5× per probe: a
      // lasting slowdown is learnt over a few probes, while an overload (whose
      // RTT is the queue, not the dependency) does not become the baseline.
      this.#sinceProbe = 0;
      this.#rttNoLoad = Math.min(rtt, this.#rttNoLoad * 1.5);
      return;
    }
    if (this.#rttNoLoad === 0 || rtt < this.#rttNoLoad) {
      this.#rttNoLoad = rtt;
      return;
    }
    const limit = this.estimate;
    const log = Math.max(1, Math.log10(limit)); // at least 1, so a small limit can still move
    // The Vegas rules move the limit per call; a window applies them for each
    // of its calls at once (a decrease at most halves the limit).
    const step = log * s.samples;
    let next: number;
    if (s.dropped) next = Math.max(limit / 2, limit - step);
    else if (s.inflight * 2 < limit)
      return; // application-limited
    else {
      const queue = Math.ceil(limit * (1 - this.#rttNoLoad / rtt));
      if (queue <= log) next = limit + 6 * log;
      else if (queue < 3 * log) next = limit + log;
      else if (queue > 6 * log) {
        // One decrease per call of the window, each re-estimating the queue at
        // the lower limit, stopping once it is back within beta.
        const ratio = 1 - this.#rttNoLoad / rtt;
        next = limit;
        for (let k = 0; k < s.samples && next > limit / 2; k++) {
          const lg = Math.max(1, Math.log10(next));
          if (Math.ceil(next * ratio) <= 6 * lg) break;
          next -= lg;
        }
        next = Math.max(limit / 2, next);
      } else return;
    }
    this.estimate = this.clamp(limit * (1 - this.smoothing) + Math.max(1, next) * this.smoothing);
  }
}

/** A limit source that adapts to the dependency; see {@link AdaptiveLimit}. */
export function adaptiveLimit(options: AdaptiveLimitOptions): AdaptiveLimit {
  const d = ADAPTIVE_LIMIT_DEFAULTS;
  const check = new OptionsChecker('adaptiveLimit()');
  check.knownKeys(options, ADAPTIVE_LIMIT_KEYS);
  check.oneOf('algorithm', options?.algorithm, ['aimd', 'gradient2', 'vegas'] as const, true);
  const initialLimit = options?.initialLimit ?? d.initialLimit;
  const minLimit = options?.minLimit ?? d.minLimit;
  const maxLimit = options?.maxLimit ?? d.maxLimit;
  const okMin = check.number('minLimit', minLimit, { integer: true, min: 1 });
  const okMax = check.number('maxLimit', maxLimit, { integer: true, min: 1 });
  const okInitial = check.number('initialLimit', initialLimit, { integer: true, min: 1 });
  if (okMin && okMax) check.expect(minLimit <= maxLimit, 'minLimit', minLimit, `<= maxLimit (${maxLimit})`);
  if (okMin && okMax && okInitial)
    check.expect(
      initialLimit >= minLimit && initialLimit <= maxLimit,
      'initialLimit',
      initialLimit,
      `between minLimit (${minLimit}) and maxLimit (${maxLimit})`,
    );
  check.number('backoffRatio', options?.backoffRatio, { above: 0, max: 0.999 });
  check.number('timeoutMs', options?.timeoutMs, { above: 0 });
  check.number('rttTolerance', options?.rttTolerance, { min: 1 });
  check.number('queueSize', options?.queueSize, { above: 0 });
  check.number('smoothing', options?.smoothing, { above: 0, max: 1 });
  check.number('longWindow', options?.longWindow, { integer: true, min: 1 });
  check.number('probeMultiplier', options?.probeMultiplier, { above: 0 });
  check.done();
  const base = { initialLimit, minLimit, maxLimit };
  switch (options.algorithm) {
    case 'aimd':
      return new AimdLimit({
        ...base,
        backoffRatio: options.backoffRatio ?? d.backoffRatio,
        timeoutMs: options.timeoutMs ?? d.timeoutMs,
      });
    case 'gradient2':
      return new Gradient2Limit({
        ...base,
        rttTolerance: options.rttTolerance ?? d.rttTolerance,
        queueSize: options.queueSize ?? d.queueSize,
        smoothing: options.smoothing ?? d.gradientSmoothing,
        longWindow: options.longWindow ?? d.longWindow,
      });
    case 'vegas':
      return new VegasLimit({
        ...base,
        smoothing: options.smoothing ?? d.vegasSmoothing,
        probeMultiplier: options.probeMultiplier ?? d.probeMultiplier,
      });
  }
}
