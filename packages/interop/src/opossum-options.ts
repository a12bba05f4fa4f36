import { type BreakerSnapshot, type CircuitBreakerOptions, SNAPSHOT_VERSION } from '@bulwark/circuit-breaker';
import type { OptionsChecker } from '@bulwark/core/authoring';
import { OPOSSUM_RATE_DEFAULTS, opossumRate } from './opossum-rate.ts';
import { peerOptionsChecker } from './peer.ts';

/** The saved state opossum accepts as `options.state` (what `breaker.toJSON().state` gives). */
export interface OpossumState {
  readonly name?: string | undefined;
  readonly enabled?: boolean | undefined;
  readonly closed?: boolean | undefined;
  readonly open?: boolean | undefined;
  readonly halfOpen?: boolean | undefined;
  readonly warmUp?: boolean | undefined;
  readonly shutdown?: boolean | undefined;
  /** A wall-clock instant (`Date.now()`) at which opossum last started its reset timer. */
  readonly lastTimerAt?: unknown;
}

/**
 * The options of an opossum 10 breaker (`new CircuitBreaker(action, options)`),
 * declared here so that converting them needs neither opossum nor its types.
 * opossum's own `CircuitBreaker.Options` objects are assignable to it.
 */
export interface OpossumOptions {
  /** Milliseconds a call may take before opossum fails it; `false` or 0 disables. Default: 10,000. */
  readonly timeout?: number | false | undefined;
  /** Deprecated in opossum, which ignores it (it only logs a deprecation). */
  readonly maxFailures?: number | undefined;
  /** Milliseconds the breaker stays open before it lets one call through. Default: 30,000. */
  readonly resetTimeout?: number | undefined;
  /** The rolling statistics window, in milliseconds. Default: 10,000. */
  readonly rollingCountTimeout?: number | undefined;
  /** Buckets in the rolling window. Default: 10. */
  readonly rollingCountBuckets?: number | undefined;
  readonly name?: string | undefined;
  readonly group?: string | undefined;
  readonly rollingPercentilesEnabled?: boolean | undefined;
  /** Calls allowed in flight at once; more are refused (and counted as failures). Default: unlimited. */
  readonly capacity?: number | undefined;
  /** The failure percentage strictly above which the breaker opens. Default: 50. */
  readonly errorThresholdPercentage?: number | undefined;
  readonly enabled?: boolean | undefined;
  readonly allowWarmUp?: boolean | undefined;
  /** Calls the window must hold before the breaker may open. Default: 0. */
  readonly volumeThreshold?: number | undefined;
  /** Returns true for an error that must not count as a failure (opossum then counts a success). */
  readonly errorFilter?: ((error: unknown, ...args: unknown[]) => boolean) | undefined;
  readonly cache?: boolean | undefined;
  readonly cacheTTL?: number | undefined;
  readonly cacheSize?: number | undefined;
  readonly cacheGetKey?: ((...args: unknown[]) => string) | undefined;
  readonly cacheTransport?: object | undefined;
  readonly coalesce?: boolean | undefined;
  readonly coalesceTTL?: number | undefined;
  readonly coalesceSize?: number | undefined;
  readonly coalesceResetOn?: readonly string[] | undefined;
  readonly abortController?: AbortController | undefined;
  readonly autoRenewAbortController?: boolean | undefined;
  readonly enableSnapshots?: boolean | undefined;
  readonly rotateBucketController?: object | undefined;
  readonly state?: OpossumState | undefined;
  readonly status?: object | undefined;
}

/** opossum 10's defaults, as its constructor applies them. */
export const OPOSSUM_DEFAULTS = Object.freeze({
  timeout: 10_000,
  resetTimeout: 30_000,
  ...OPOSSUM_RATE_DEFAULTS,
});

/** What {@link breakerOptionsFromOpossum} returns. */
export interface BreakerConversion {
  /** Options for `circuitBreaker()` from `@bulwark/circuit-breaker`. */
  readonly options: CircuitBreakerOptions;
  /**
   * opossum's `timeout`, for `timeout(timeoutMs)` from `@bulwark/deadline`
   * inside the breaker (a bulwark breaker has no timer of its own).
   * Undefined when opossum's timeout was disabled.
   */
  readonly timeoutMs: number | undefined;
  /**
   * opossum's `capacity`, for `bulkhead({ maxConcurrent, maxQueue: 0 })` from
   * `@bulwark/bulkhead`. Undefined when opossum's was unlimited.
   */
  readonly maxConcurrent: number | undefined;
  /** One line per option that has no exact bulwark equivalent: what differs and what to do. */
  readonly warnings: readonly string[];
}

/**
 * Checks opossum options with bulwark's rules: one InvalidOptionsError listing
 * every problem. opossum itself accepts many of these silently (a NaN timeout,
 * a fractional capacity it replaces by "unlimited"). `more` adds the
 * caller's own checks to the same list.
 */
export function checkOpossumOptions(
  component: string,
  options: unknown,
  more?: (check: OptionsChecker) => void,
): void {
  const check = peerOptionsChecker(component, options, 'opossum');
  const o = (options ?? {}) as Record<keyof OpossumOptions, unknown>;
  if (o.timeout !== false) check.number('timeout', o.timeout, { min: 0 });
  check.number('resetTimeout', o.resetTimeout, { min: 0 });
  check.number('errorThresholdPercentage', o.errorThresholdPercentage, {});
  check.number('rollingCountTimeout', o.rollingCountTimeout, { above: 0 });
  check.number('rollingCountBuckets', o.rollingCountBuckets, { integer: true, min: 1, max: 10_000 });
  check.number('volumeThreshold', o.volumeThreshold, { integer: true, min: 0 });
  check.number('capacity', o.capacity, { integer: true, min: 0 });
  check.func('errorFilter', o.errorFilter);
  check.func('cacheGetKey', o.cacheGetKey);
  check.string('name', o.name);
  check.expect(
    o.state === undefined || (typeof o.state === 'object' && o.state !== null),
    'state',
    o.state,
    'an object from breaker.toJSON().state',
  );
  more?.(check);
  check.done();
}

/**
 * Converts the options of an opossum breaker to the closest bulwark ones.
 *
 * The breaker trips exactly as opossum's would (an {@link opossumRate} trip over
 * opossum's rolling window), stays open `resetTimeout`, then lets one probe
 * through. opossum's `timeout` and `capacity` belong to other bulwark policies
 * and come back as `timeoutMs` and `maxConcurrent`. Every option without an
 * exact equivalent adds a line to `warnings`.
 *
 * ```ts
 * const { options, timeoutMs, warnings } = breakerOptionsFromOpossum(opossumOptions);
 * const policy = pipeline(circuitBreaker(options), timeout(timeoutMs ?? Infinity));
 * ```
 */
export function breakerOptionsFromOpossum(opossumOptions?: OpossumOptions): BreakerConversion {
  checkOpossumOptions('breakerOptionsFromOpossum()', opossumOptions);
  const o = opossumOptions ?? {};
  const warnings: string[] = [];
  const warn = (text: string): void => {
    warnings.push(text);
  };

  const timeoutMs =
    o.timeout === false || o.timeout === 0 ? undefined : (o.timeout ?? OPOSSUM_DEFAULTS.timeout);
  const resetTimeout = o.resetTimeout ?? OPOSSUM_DEFAULTS.resetTimeout;
  const percent = o.errorThresholdPercentage ?? OPOSSUM_DEFAULTS.errorThresholdPercentage;
  const windowMs = o.rollingCountTimeout ?? OPOSSUM_DEFAULTS.rollingCountTimeout;
  const buckets = o.rollingCountBuckets ?? OPOSSUM_DEFAULTS.rollingCountBuckets;
  const trip = opossumRate({
    errorThresholdPercentage: percent,
    volumeThreshold: o.volumeThreshold ?? OPOSSUM_DEFAULTS.volumeThreshold,
    rollingCountTimeout: windowMs,
    rollingCountBuckets: buckets,
  });
  if (trip.bucketMs * buckets !== windowMs) {
    warn(
      `rollingCountTimeout: opossum rotates its ${buckets} buckets every floor(${windowMs} / ${buckets}) = ${trip.bucketMs} ms, so its window spans ${trip.bucketMs * buckets} ms; the converted trip does the same`,
    );
  }
  if (percent >= 100) {
    warn(
      `errorThresholdPercentage: ${percent} can never be exceeded, so the breaker never opens on its failure rate (as in opossum); an open breaker still needs a probe to close`,
    );
  }

  let failureOn: CircuitBreakerOptions['failureOn'];
  const errorFilter = o.errorFilter;
  if (errorFilter !== undefined) {
    failureOn = (outcome) => !outcome.ok && !errorFilter.call(o, outcome.error);
    if (errorFilter.length > 1) {
      warn(
        "errorFilter: opossum also passes the call's arguments after the error; failureOn sees only the outcome, so the converted filter is called with the error alone",
      );
    }
  }

  let initialState: BreakerSnapshot | undefined;
  const state = o.state;
  if (state !== undefined) {
    if (state.shutdown === true) {
      warn(
        'state.shutdown: a shut-down breaker has no bulwark equivalent; the converted breaker starts closed',
      );
    } else if (state.closed === false) {
      if (state.halfOpen === true) {
        initialState = { version: SNAPSHOT_VERSION, state: 'half-open', openRemainingMs: 0, trips: 1 };
      } else {
        initialState = { version: SNAPSHOT_VERSION, state: 'open', openRemainingMs: resetTimeout, trips: 1 };
        warn(
          `state.lastTimerAt: opossum saves a wall-clock instant, which bulwark never reads; the converted breaker starts open for the whole resetTimeout (${resetTimeout} ms)`,
        );
      }
    }
    if (state.enabled === false) warnDisabled(warn);
    if (state.warmUp === true) warnWarmUp(warn, windowMs);
  }

  if (o.enabled === false) warnDisabled(warn);
  if (o.allowWarmUp === true) warnWarmUp(warn, windowMs);
  if (timeoutMs === undefined) {
    warn(
      'timeout: disabled in opossum, so a probe that never settles keeps it half-open for good; a bulwark breaker reopens after halfOpen.probeTimeoutMs (10,000 ms by default)',
    );
  }
  if (o.maxFailures !== undefined) {
    warn('maxFailures: deprecated and ignored by opossum 10; not converted (the failure rate decides)');
  }
  const maxConcurrent =
    o.capacity === undefined || o.capacity >= Number.MAX_SAFE_INTEGER ? undefined : o.capacity;
  if (maxConcurrent !== undefined) {
    warn(
      `capacity: use bulkhead({ maxConcurrent: ${maxConcurrent}, maxQueue: 0 }) from @bulwark/bulkhead outside the breaker; opossum counts a call refused at capacity as a breaker failure, a bulkhead refusal outside the breaker is not seen by it`,
    );
  }
  if (o.group !== undefined) {
    warn(
      'group: no equivalent; bulwark telemetry carries the breaker name (a registry groups keyed breakers)',
    );
  }
  if (o.rollingPercentilesEnabled !== undefined || o.enableSnapshots !== undefined) {
    warn(
      'rollingPercentilesEnabled, enableSnapshots: no equivalent; bulwark keeps no latency percentiles or snapshot timer, record latency with an OpenTelemetry histogram',
    );
  }
  if (o.rotateBucketController !== undefined) {
    warn('rotateBucketController: not needed; a bulwark breaker holds no timer, its window slides lazily');
  }
  if (
    o.cache !== undefined ||
    o.cacheTTL !== undefined ||
    o.cacheSize !== undefined ||
    o.cacheGetKey !== undefined ||
    o.cacheTransport !== undefined
  ) {
    warn(
      'cache, cacheTTL, cacheSize, cacheGetKey, cacheTransport: no equivalent; a breaker does not cache results in bulwark (cache in front of the pipeline)',
    );
  }
  if (
    o.coalesce !== undefined ||
    o.coalesceTTL !== undefined ||
    o.coalesceSize !== undefined ||
    o.coalesceResetOn !== undefined
  ) {
    warn(
      'coalesce, coalesceTTL, coalesceSize, coalesceResetOn: no equivalent; bulwark does not share one in-flight call between callers',
    );
  }
  if (o.abortController !== undefined || o.autoRenewAbortController !== undefined) {
    warn(
      'abortController, autoRenewAbortController: not needed; every call gets its own ctx.signal, aborted by its own deadline or timeout only',
    );
  }
  if (o.status !== undefined) {
    warn('status: primed statistics are not converted; the converted breaker starts with an empty window');
  }

  const options: CircuitBreakerOptions = {
    ...(o.name === undefined ? {} : { name: o.name }),
    trip,
    openMs: resetTimeout,
    halfOpen: {
      maxProbes: 1,
      successThreshold: 1,
      ...(timeoutMs === undefined ? {} : { probeTimeoutMs: timeoutMs }),
    },
    ...(failureOn === undefined ? {} : { failureOn }),
    ...(initialState === undefined ? {} : { initialState }),
  };
  return Object.freeze({
    options: Object.freeze(options),
    timeoutMs,
    maxConcurrent,
    warnings: Object.freeze(warnings),
  });
}

function warnDisabled(warn: (text: string) => void): void {
  warn(
    'enabled: false: a disabled opossum breaker passes every call through; leave the breaker out of the pipeline instead',
  );
}

function warnWarmUp(warn: (text: string) => void, windowMs: number): void {
  warn(
    `allowWarmUp: no equivalent; opossum ignores failures for the first ${windowMs} ms after construction, bulwark judges from the first call (raise volumeThreshold to protect a cold start)`,
  );
}
