import { type Clock, defaultRandom, type Random } from '@bulwark/clock';
import type { Backoff, Outcome } from '@bulwark/core';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { BREAKER_OPTION_HINTS } from './hints.ts';
import { checkSnapshot } from './persistence.ts';
import type { BreakerSnapshot, BreakerStateStore } from './store.ts';
import { consecutive, type Trip } from './trips.ts';

/** @internal The keys of {@link CircuitBreakerOptions}. */
export const BREAKER_KEYS = optionKeys<CircuitBreakerOptions>({
  name: true,
  trip: true,
  openMs: true,
  halfOpen: true,
  failureOn: true,
  initialState: true,
  store: true,
  storeKey: true,
  clock: true,
  random: true,
  rideThrough: true,
  refusalStacks: true,
});

const HALF_OPEN_KEYS = optionKeys<HalfOpenOptions>({
  maxProbes: true,
  successThreshold: true,
  probeTimeoutMs: true,
});

const RIDE_THROUGH_KEYS = optionKeys<RideThroughOptions>({
  maxWaiters: true,
  maxWaitMs: true,
  probeEstimateMs: true,
});

/**
 * What a call produced, as `failureOn` sees it: core's one `Outcome`.
 * @deprecated Use `Outcome` from @bulwark/core; this alias remains for existing imports.
 */
export type CallOutcome = Outcome;

/** Half-open tuning. */
export interface HalfOpenOptions {
  /** Probe calls admitted at once while half-open. Default: 1. */
  readonly maxProbes?: number | undefined;
  /** Probe successes that close the breaker. Default: 1. Any probe failure reopens it. */
  readonly successThreshold?: number | undefined;
  /**
   * A probe that has not settled after this many milliseconds gives its permit
   * back: its slot goes to the next call, so the breaker can never be stuck
   * half-open. Its late success still counts toward `successThreshold` (the
   * dependency answered, only slowly); its late failure is ignored (a newer
   * probe has its slot). Default: 10,000.
   */
  readonly probeTimeoutMs?: number | undefined;
}

/** Options for {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /** A name for telemetry and error messages. */
  readonly name?: string | undefined;
  /** When to open: one trip or several (any one opens it). Default: `consecutive(5)`. */
  readonly trip?: Trip | readonly Trip[] | undefined;
  /**
   * How long the breaker stays open before it lets a probe through, in
   * milliseconds, or a backoff (from @bulwark/retry) called with the number of
   * trips since it last closed, so repeated trips wait longer. Default: 10,000.
   */
  readonly openMs?: number | Backoff | undefined;
  readonly halfOpen?: HalfOpenOptions | undefined;
  /**
   * Which outcomes count as failures. Default: every error. The caller's own
   * abort never reaches it: a caller that gives up does not count against the
   * dependency. A `failureOn` that throws counts the call as a failure and
   * reports the error through `onError`.
   */
  readonly failureOn?: ((outcome: CallOutcome) => boolean) | undefined;
  /** A saved state to start from (see `toJSON()`). */
  readonly initialState?: BreakerSnapshot | undefined;
  /** Where to publish transitions, and read the fleet's view from (`syncFromStore()`). */
  readonly store?: BreakerStateStore | undefined;
  /** The key in `store`. Default: `name`. */
  readonly storeKey?: string | undefined;
  /** The clock. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** The random source a backoff `openMs` uses. Default: `Math.random`. */
  readonly random?: Random | undefined;
  /**
   * When false, a refused call's `BrokenCircuitError` is built without a stack
   * trace (`stack` holds only the name and the message), about three times
   * cheaper: for a breaker that refuses at a high rate while open under load.
   * Its code, state, `retryAfterMs` and message are the same. Default: true.
   */
  readonly refusalStacks?: boolean | undefined;
  /**
   * Ride-through: a call that meets the open breaker may wait for the next
   * probe's verdict instead of failing at once, when its deadline allows it.
   * `true` takes {@link RIDE_THROUGH_DEFAULTS}. Default: off (a refused call
   * fails at once).
   */
  readonly rideThrough?: RideThroughOptions | boolean | undefined;
}

/**
 * Ride-through tuning. A refused call waits only when its deadline (and
 * `maxWaitMs`) leaves room for the probe to start, for the probe's verdict and
 * for its own call after it, each call estimated at `probeEstimateMs` (or the
 * last probe's measured duration, once there is one).
 */
export interface RideThroughOptions {
  /** Calls that may wait at once; a call beyond them is refused at once. Default: 64. */
  readonly maxWaiters?: number | undefined;
  /** The longest a call waits, in milliseconds, whatever its deadline. Default: 2,000. */
  readonly maxWaitMs?: number | undefined;
  /**
   * How long a call is expected to take, in milliseconds, until a probe has
   * been measured (then the last probe's duration is used). Default: 250.
   */
  readonly probeEstimateMs?: number | undefined;
}

/** The defaults of `rideThrough`. */
export const RIDE_THROUGH_DEFAULTS = Object.freeze({
  maxWaiters: 64,
  maxWaitMs: 2_000,
  probeEstimateMs: 250,
});

/** The defaults of {@link circuitBreaker}. */
export const CIRCUIT_BREAKER_DEFAULTS = Object.freeze({
  openMs: 10_000,
  maxProbes: 1,
  successThreshold: 1,
  probeTimeoutMs: 10_000,
  consecutiveFailures: 5,
  refusalStacks: true,
});

const DEFAULT_TRIPS: readonly Trip[] = Object.freeze([
  consecutive(CIRCUIT_BREAKER_DEFAULTS.consecutiveFailures),
]);

/**
 * @internal A breaker's options, checked and resolved once into a frozen
 * object: a registry holds one for all its breakers, and a breaker built from
 * it checks nothing again.
 */
export interface ResolvedBreakerOptions {
  readonly name: string | undefined;
  readonly trips: readonly Trip[];
  /** Whether any trip is timed (counts durations). */
  readonly timed: boolean;
  readonly openMs: number | Backoff;
  readonly maxProbes: number;
  readonly successThreshold: number;
  readonly probeTimeoutMs: number;
  /** Ride-through settings, frozen; undefined when off. */
  readonly rideThrough:
    | { readonly maxWaiters: number; readonly maxWaitMs: number; readonly probeEstimateMs: number }
    | undefined;
  readonly failureOn: ((outcome: CallOutcome) => boolean) | undefined;
  readonly random: Random;
  readonly store: BreakerStateStore | undefined;
  readonly storeKey: string | undefined;
  /** The store's `syncIntervalMs`. */
  readonly syncMs: number | undefined;
  readonly clock: Clock | undefined;
  /** The checked `initialState`. */
  readonly initialState: BreakerSnapshot | undefined;
  readonly refusalStacks: boolean;
}

/** The resolved options objects made here: the constructor takes them as they are. */
const RESOLVED = new WeakSet<object>();

/**
 * @internal Checks breaker options (the keys in `known`, with every value) and
 * resolves them into a frozen object, or throws one InvalidOptionsError that
 * lists every violation, those `more` records too. `keyed`: for a registry,
 * which derives each breaker's `storeKey` itself, so none is required.
 */
export function checkBreakerOptions(
  component: string,
  options: CircuitBreakerOptions | undefined,
  known: ReadonlySet<string>,
  keyed: boolean,
  more?: (check: OptionsChecker) => void,
): ResolvedBreakerOptions {
  const check = new OptionsChecker(component);
  check.knownKeys(options, known, BREAKER_OPTION_HINTS);
  more?.(check);
  const trip = options?.trip;
  const trips: readonly Trip[] =
    trip === undefined ? DEFAULT_TRIPS : Array.isArray(trip) ? trip : [trip as Trip];
  check.expect(
    trips.length > 0 &&
      trips.every((t) => typeof t === 'object' && t !== null && typeof t.create === 'function'),
    'trip',
    trip,
    'a trip (consecutive(), failureRate(), slowCallRate()) or a non-empty array of them',
  );
  const openMs = options?.openMs ?? CIRCUIT_BREAKER_DEFAULTS.openMs;
  if (typeof openMs === 'number') check.number('openMs', openMs, { min: 0 });
  else
    check.expect(
      typeof openMs === 'object' && openMs !== null && typeof openMs.delayMs === 'function',
      'openMs',
      openMs,
      'a number of milliseconds >= 0 or a backoff',
    );
  const half = options?.halfOpen;
  check.knownKeys(half, HALF_OPEN_KEYS, undefined, 'halfOpen');
  check.number('halfOpen.maxProbes', half?.maxProbes, { integer: true, min: 1, max: 1_000_000 });
  check.number('halfOpen.successThreshold', half?.successThreshold, { integer: true, min: 1 });
  check.number('halfOpen.probeTimeoutMs', half?.probeTimeoutMs, { above: 0 });
  check.func('failureOn', options?.failureOn);
  const ride = options?.rideThrough;
  check.expect(
    ride === undefined || typeof ride === 'boolean' || (typeof ride === 'object' && ride !== null),
    'rideThrough',
    ride,
    'a boolean or { maxWaiters, maxWaitMs, probeEstimateMs }',
  );
  const rideOptions = typeof ride === 'object' && ride !== null ? ride : undefined;
  check.knownKeys(rideOptions, RIDE_THROUGH_KEYS, undefined, 'rideThrough');
  check.number('rideThrough.maxWaiters', rideOptions?.maxWaiters, {
    integer: true,
    min: 1,
    max: 1_000_000,
  });
  check.number('rideThrough.maxWaitMs', rideOptions?.maxWaitMs, { above: 0, infinite: true });
  check.number('rideThrough.probeEstimateMs', rideOptions?.probeEstimateMs, { min: 0 });
  check.func('random', options?.random);
  check.boolean('refusalStacks', options?.refusalStacks);
  const store = options?.store;
  const storeOk =
    store === undefined ||
    (typeof store === 'object' &&
      store !== null &&
      typeof store.publish === 'function' &&
      typeof store.read === 'function');
  check.expect(storeOk, 'store', store, 'a BreakerStateStore (publish and read)');
  check.expect(
    keyed || store === undefined || (options?.storeKey ?? options?.name) !== undefined,
    'storeKey',
    options?.storeKey,
    'a key (or a name) when a store is given',
  );
  const syncMs = storeOk ? store?.syncIntervalMs : undefined;
  check.expect(
    syncMs === undefined || (typeof syncMs === 'number' && syncMs > 0),
    'store.syncIntervalMs',
    syncMs,
    'a number of milliseconds > 0, or undefined',
  );
  check.clock('clock', options?.clock, true);
  check.done();
  const resolved: ResolvedBreakerOptions = Object.freeze({
    name: options?.name,
    // A frozen array is shared rather than copied.
    trips: Object.isFrozen(trips) ? trips : Object.freeze([...trips]),
    timed: trips.some((t) => t.timed),
    openMs,
    maxProbes: half?.maxProbes ?? CIRCUIT_BREAKER_DEFAULTS.maxProbes,
    successThreshold: half?.successThreshold ?? CIRCUIT_BREAKER_DEFAULTS.successThreshold,
    probeTimeoutMs: half?.probeTimeoutMs ?? CIRCUIT_BREAKER_DEFAULTS.probeTimeoutMs,
    rideThrough:
      ride === undefined || ride === false
        ? undefined
        : Object.freeze({
            maxWaiters: rideOptions?.maxWaiters ?? RIDE_THROUGH_DEFAULTS.maxWaiters,
            maxWaitMs: rideOptions?.maxWaitMs ?? RIDE_THROUGH_DEFAULTS.maxWaitMs,
            probeEstimateMs: rideOptions?.probeEstimateMs ?? RIDE_THROUGH_DEFAULTS.probeEstimateMs,
          }),
    failureOn: options?.failureOn,
    random: options?.random ?? defaultRandom,
    store,
    storeKey: keyed ? undefined : (options?.storeKey ?? options?.name),
    syncMs,
    clock: options?.clock,
    initialState:
      keyed || options?.initialState === undefined ? undefined : checkSnapshot(options.initialState),
    refusalStacks: options?.refusalStacks ?? CIRCUIT_BREAKER_DEFAULTS.refusalStacks,
  });
  RESOLVED.add(resolved);
  return resolved;
}

/** @internal Whether `options` is a resolved object made by {@link checkBreakerOptions}. */
export function isResolved(options: object | undefined): boolean {
  return options !== undefined && RESOLVED.has(options);
}

/** @internal `resolved` under another `storeKey` (the same object when the key is its own, or there is no store). */
export function withStoreKey(
  resolved: ResolvedBreakerOptions,
  storeKey: string | undefined,
): ResolvedBreakerOptions {
  if (resolved.store === undefined || storeKey === resolved.storeKey) return resolved;
  const options: ResolvedBreakerOptions = Object.freeze({ ...resolved, storeKey });
  RESOLVED.add(options);
  return options;
}
