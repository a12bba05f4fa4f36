// Unknown options used to be ignored silently: createFetch({ retries: 5 }),
// createFetch({ timeout: 500 }), retry({ retries: 3 }) and
// circuitBreaker({ resetTimeout: 1000 }) (the p-retry and opossum names a
// migrating user types) ran with the defaults. Every factory now refuses keys
// it does not know, in the same one error that lists every violation, and
// names the bulwark option when the key is a known peer's name. Contradictions
// are refused the same way: an attempt timeout above the deadline, and a
// pipeline whose order can never retry.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { adaptiveLimit, bulkhead, distributedBulkhead } from '@bulwark/bulkhead';
import { injectFault, injectLatency, injectOutcome } from '@bulwark/chaos';
import {
  adaptiveThrottle,
  circuitBreaker,
  circuitBreakers,
  failureRate,
  memoryBreakerStateStore,
  slowCallRate,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { fallback, InvalidOptionsError, noopPolicy, pipeline, traced, wrapMethods } from '@bulwark/core';
import { keyed } from '@bulwark/core/authoring';
import {
  adaptiveTimeout,
  Deadline,
  deadline,
  deadlineHeaders,
  timeout,
  withDeadline,
} from '@bulwark/deadline';
import { bulwarkErrorHandler, bulwarkExpress, idempotent } from '@bulwark/express';
import {
  chenDetector,
  fixedTimeout,
  heartbeatMonitor,
  httpPinger,
  phiAccrual,
  twoWindowDetector,
  udpHeartbeatReceiver,
  udpHeartbeatSender,
} from '@bulwark/failure-detector';
import { bulwarkFastify } from '@bulwark/fastify';

import { createFetch, OriginBulkheads } from '@bulwark/fetch';
import { hedging } from '@bulwark/hedging';
import { bulwarkHttp } from '@bulwark/http-server';
import { httpIdempotency, idempotency, idempotencyKey, memoryStore } from '@bulwark/idempotency';
import { fromOpossum, opossumPolicy } from '@bulwark/interop/opossum';
import { pRetryPolicy } from '@bulwark/interop/p-retry';
import { postgresIdempotencyStore, sendCancelRequest, withQueryPolicy } from '@bulwark/postgres';
import { memoryRateLimitStore, rateLimit } from '@bulwark/rate-limit';
import {
  redisBreakerStore,
  redisIdempotencyStore,
  redisRateLimitStore,
  redisSemaphoreStore,
} from '@bulwark/redis';
import { exponential, retry, retryBudget } from '@bulwark/retry';
import { presets } from 'bulwark';
import { describe, expect, it } from 'vitest';

const BOGUS = { bogusOption: 1 } as const;
const clock = new VirtualClock();
const monitor = () => heartbeatMonitor({ detector: () => fixedTimeout({ timeoutMs: 100, clock }), clock });
const redisClient = { eval: async () => null, evalSha: async () => null };
const pgPool = { query: async () => ({ rows: [] }) };
const fakeFastify = { hasRequestDecorator: () => false } as never;

/** Each public factory with options, called with one key it does not know (and what else it needs). */
const FACTORIES: ReadonlyArray<readonly [component: string, make: (extra: object) => unknown]> = [
  ['createFetch()', (o) => createFetch(o as never)],
  ['OriginBulkheads', (o) => new OriginBulkheads(o as never)],
  ['keyed()', (o) => keyed({ get: () => noopPolicy }, () => 'key', o as never)],
  ['retry()', (o) => retry(o as never)],
  ['retryBudget()', (o) => retryBudget(o as never)],
  ['exponential()', (o) => exponential(o as never)],
  ['circuitBreaker()', (o) => circuitBreaker(o as never)],
  ['circuitBreakers()', (o) => circuitBreakers(o as never)],
  ['failureRate()', (o) => failureRate({ threshold: 0.5, ...o } as never)],
  ['slowCallRate()', (o) => slowCallRate({ threshold: 0.5, slowerThanMs: 100, ...o } as never)],
  ['memoryBreakerStateStore()', (o) => memoryBreakerStateStore(o as never)],
  ['bulkhead()', (o) => bulkhead({ maxConcurrent: 1, ...o } as never)],
  ['adaptiveLimit()', (o) => adaptiveLimit(o as never)],
  ['deadline()', (o) => deadline(100, o as never)],
  ['timeout()', (o) => timeout(100, o as never)],
  ['adaptiveTimeout()', (o) => adaptiveTimeout(1_000, o as never)],
  ['Deadline.after()', (o) => Deadline.after(100, o as never)],
  ['Deadline.at()', (o) => Deadline.at(100, o as never)],
  ['withDeadline()', (o) => withDeadline(100, () => 1, o as never)],
  ['deadlineHeaders()', (o) => deadlineHeaders(100, o as never)],
  ['presets.databaseClient()', (o) => presets.databaseClient(o as never)],
  ['udpHeartbeatSender()', (o) => udpHeartbeatSender({ peerId: 'a', targets: [], ...o } as never)],
  ['udpHeartbeatReceiver()', (o) => udpHeartbeatReceiver({ monitor: monitor(), ...o } as never)],
  ['heartbeatMonitor()', (o) => heartbeatMonitor({ detector: () => phiAccrual({ clock }), ...o } as never)],
  ['httpPinger()', (o) => httpPinger({ url: 'http://127.0.0.1:1/', monitor: monitor(), ...o } as never)],
  ['fixedTimeout()', (o) => fixedTimeout({ timeoutMs: 100, ...o } as never)],
  ['phiAccrual()', (o) => phiAccrual(o as never)],
  ['chenDetector()', (o) => chenDetector({ safetyMarginMs: 10, ...o } as never)],
  ['idempotency()', (o) => idempotency({ store: memoryStore(), ...o } as never)],
  ['memoryStore()', (o) => memoryStore(o as never)],
  ['httpIdempotency()', (o) => httpIdempotency({ store: memoryStore(), ...o } as never)],
  ['idempotencyKey()', (o) => idempotencyKey(o as never)],
  ['redisIdempotencyStore()', (o) => redisIdempotencyStore(redisClient as never, o as never)],
  ['redisBreakerStore()', (o) => redisBreakerStore(redisClient as never, o as never)],
  ['redisSemaphoreStore()', (o) => redisSemaphoreStore(redisClient as never, o as never)],
  ['rateLimit()', (o) => rateLimit({ ratePerSecond: 1, burst: 1, ...o } as never)],
  ['memoryRateLimitStore()', (o) => memoryRateLimitStore(o as never)],
  [
    'redisRateLimitStore()',
    (o) => redisRateLimitStore(redisClient as never, { onStoreError: 'fail-closed', ...o } as never),
  ],
  [
    'distributedBulkhead()',
    (o) =>
      distributedBulkhead({
        maxConcurrent: 1,
        store: redisSemaphoreStore(redisClient as never),
        ...o,
      } as never),
  ],
  ['postgresIdempotencyStore()', (o) => postgresIdempotencyStore(pgPool as never, o as never)],
  ['withQueryPolicy()', (o) => withQueryPolicy(pgPool as never, noopPolicy, o as never)],
  [
    'sendCancelRequest()',
    (o) =>
      sendCancelRequest({ host: '127.0.0.1', port: 1, processId: 1, secretKey: 1 } as never, 100, o as never),
  ],
  ['traced()', (o) => traced('x', o as never)],
  ['fallback()', (o) => fallback(() => 1, o as never)],
  ['hedging()', (o) => hedging(o as never)],
  ['adaptiveThrottle()', (o) => adaptiveThrottle(o as never)],
  ['injectFault()', (o) => injectFault(o as never)],
  ['injectLatency()', (o) => injectLatency({ latencyMs: 1, ...o } as never)],
  ['injectOutcome()', (o) => injectOutcome({ outcome: { ok: true, value: 1 }, ...o } as never)],
  [
    'wrapMethods()',
    (o) => wrapMethods({ get: async () => 1 }, noopPolicy, { methods: ['get'], ...o } as never),
  ],
  ['bulwarkHttp()', (o) => bulwarkHttp(() => undefined, o as never)],
  ['bulwarkExpress()', (o) => bulwarkExpress(o as never)],
  ['bulwarkErrorHandler()', (o) => bulwarkErrorHandler(o as never)],
  ['twoWindowDetector()', (o) => twoWindowDetector({ safetyMarginMs: 10, ...o } as never)],
  [
    'bulwarkFastify()',
    (o) => {
      let failure: unknown;
      bulwarkFastify(fakeFastify, o as never, (error) => {
        failure = error;
      });
      if (failure !== undefined) throw failure;
    },
  ],
];

/** Option checks that are not a factory's options object, or take another library's options. */
const NOT_OPTIONS_OBJECTS = new Set([
  'consecutive()', // consecutive(n): a number
  'constant()', // constant(ms): a number
  'fromFunction()', // fromFunction(fn): a function
  'query() options', // per-query options split from pg's own arguments
  'parseIdempotencyKeyHeader()', // checks only `format`, per request
  'readInboundDeadline()', // per request, handed the whole server options
  'opossumRate()', // interop: mirrors opossum's own option names
  'fromOpossum()', // interop: takes an opossum breaker
]);

function violationsOf(make: () => unknown): InvalidOptionsError {
  try {
    make();
  } catch (error) {
    if (error instanceof InvalidOptionsError) return error;
    throw error;
  }
  throw new Error('no error was thrown');
}

describe('every factory refuses options it does not know', () => {
  it.each(FACTORIES)('%s refuses an unknown key, naming it', (component, make) => {
    const error = violationsOf(() => make(BOGUS));
    expect(error.message).toContain(component);
    expect(error.violations.map((v) => v.option)).toContain('bogusOption');
    expect(error.message).toMatch(/bogusOption: not an option/);
  });

  it.each([
    [
      'circuitBreaker({ halfOpen })',
      () => circuitBreaker({ halfOpen: BOGUS } as never),
      'halfOpen.bogusOption',
    ],
    [
      'circuitBreaker({ rideThrough })',
      () => circuitBreaker({ rideThrough: BOGUS } as never),
      'rideThrough.bogusOption',
    ],
    [
      'circuitBreakers({ halfOpen })',
      () => circuitBreakers({ halfOpen: { maxProbes: 2, ...BOGUS } } as never),
      'halfOpen.bogusOption',
    ],
    [
      "failureRate({ window: { kind: 'count' } })",
      () => failureRate({ threshold: 0.5, window: { kind: 'count', size: 10, ...BOGUS } } as never),
      'window.bogusOption',
    ],
    [
      "slowCallRate({ window: { kind: 'time' } })",
      () =>
        slowCallRate({
          threshold: 0.5,
          slowerThanMs: 100,
          window: { kind: 'time', ms: 1_000, buckets: 10, ...BOGUS },
        } as never),
      'window.bogusOption',
    ],
    [
      "failureRate({ window: { kind: 'count', buckets } }): a time window's key on a count window",
      () => failureRate({ threshold: 0.5, window: { kind: 'count', size: 10, buckets: 5 } } as never),
      'window.buckets',
    ],
  ])('%s refuses an unknown key in a nested options object, naming its path', (_, make, option) => {
    const error = violationsOf(make);
    expect(error.violations.map((v) => v.option)).toEqual([option]);
    expect(error.message).toContain(`${option}: not an option`);
  });

  it('a nested options object with only known keys passes', () => {
    expect(() =>
      circuitBreaker({
        halfOpen: { maxProbes: 2, successThreshold: 2, probeTimeoutMs: 1_000 },
        rideThrough: { maxWaiters: 8, maxWaitMs: 500, probeEstimateMs: 50 },
        trip: failureRate({ threshold: 0.5, window: { kind: 'time', ms: 1_000, buckets: 10 } }),
      }),
    ).not.toThrow();
  });

  it('the table covers every options check in the packages', () => {
    const root = new URL('../../packages/', import.meta.url).pathname;
    const found = new Set<string>();
    for (const pkg of readdirSync(root)) {
      const src = join(root, pkg, 'src');
      let files: string[];
      try {
        files = readdirSync(src).filter((f) => f.endsWith('.ts'));
      } catch {
        continue;
      }
      for (const file of files) {
        const text = readFileSync(join(src, file), 'utf8');
        for (const m of text.matchAll(/new OptionsChecker\('([^']+)'\)/g)) found.add(m[1]!);
      }
    }
    const covered = new Set([...FACTORIES.map(([c]) => c), ...NOT_OPTIONS_OBJECTS]);
    expect([...found].filter((c) => !covered.has(c))).toEqual([]);
  });

  it("a route's idempotency options: its own and httpIdempotency()'s pass, an unknown one is refused", () => {
    const store = memoryStore();
    expect(() =>
      idempotent({
        store,
        required: false,
        scope: () => 'tenant',
        onStoreError: () => undefined,
        maxUnparsedBodyBytes: 1_024,
        onGuard: () => undefined,
      }),
    ).not.toThrow();
    const error = violationsOf(() => idempotent({ store, bogusOption: 1 } as never));
    expect(error.message).toContain('idempotent()');
    expect(error.violations.map((v) => v.option)).toEqual(['bogusOption']);
  });

  it('accepts a known key whose value is undefined, and an unknown one set to undefined', () => {
    expect(() => retry({ maxAttempts: undefined, retries: undefined } as never)).not.toThrow();
  });
});

// retry({ clock: {} }) used to build without complaint and fail at the first
// retry, while createFetch refused the same value; circuitBreaker(),
// bulkhead(), deadline() and others took any clock too. Every factory now
// refuses a clock that is not a Clock at construction (or, one that takes no
// clock, the key itself), naming the option.
describe('every factory checks its clock', () => {
  it.each(FACTORIES)('%s refuses a clock that is not a Clock, naming it', (component, make) => {
    const error = violationsOf(() => make({ clock: {} }));
    expect(error.message).toContain(component);
    expect(error.violations.map((v) => v.option)).toContain('clock');
  });
});

// The interop policies take the peer's options as they are (p-retry's and
// opossum's own objects) and bulwark's beside them: pRetryPolicy(p, { clokc })
// and fromOpossum(breaker, { clokc }) once ran on the system clock unawares.
describe("interop's own options, beside the peer's, refuse keys they do not know", () => {
  const fakeBreaker = { fire: async () => 1, on: () => undefined, removeListener: () => undefined };
  it.each([
    ['pRetryPolicy()', (o: object) => pRetryPolicy({ retries: 1 }, o as never)],
    ['opossumPolicy()', (o: object) => opossumPolicy({ timeout: false }, o as never)],
    ['fromOpossum()', (o: object) => fromOpossum(fakeBreaker as never, o as never)],
  ])('%s refuses an unknown key, naming it', (component, make) => {
    const error = violationsOf(() => make({ clokc: clock }));
    expect(error.message).toContain(component);
    expect(error.violations.map((v) => v.option)).toEqual(['clokc']);
    expect(() => make({ clock })).not.toThrow();
  });
});

describe('peer option names get the bulwark option in the message', () => {
  it.each([
    [
      'createFetch({ retries: 5 })',
      () => createFetch({ retries: 5 } as never),
      /retries: not an option; use maxAttempts.*N \+ 1/,
    ],
    [
      'createFetch({ timeout: 500 })',
      () => createFetch({ timeout: 500 } as never),
      /timeout: not an option; use attemptTimeoutMs .* deadlineMs/,
    ],
    [
      'retry({ retries: 3 })',
      () => retry({ retries: 3 } as never),
      /retries: not an option; use maxAttempts/,
    ],
    [
      'circuitBreaker({ resetTimeout: 1000 })',
      () => circuitBreaker({ resetTimeout: 1000 } as never),
      /resetTimeout: not an option; use openMs/,
    ],
    [
      'circuitBreaker({ errorThresholdPercentage: 50 })',
      () => circuitBreaker({ errorThresholdPercentage: 50 } as never),
      /use trip: failureRate\(\{ threshold/,
    ],
    [
      'circuitBreakers({ halfOpenAfter: 1000 })',
      () => circuitBreakers({ halfOpenAfter: 1000 } as never),
      /halfOpenAfter: not an option; use openMs/,
    ],
    [
      'bulkhead({ capacity: 10 })',
      () => bulkhead({ capacity: 10 } as never),
      /capacity: not an option; use maxConcurrent/,
    ],
    [
      'exponential({ minTimeout: 100 })',
      () => exponential({ minTimeout: 100 } as never),
      /minTimeout: not an option; use initialMs/,
    ],
    [
      'presets.databaseClient({ resetTimeout: 1 })',
      () => presets.databaseClient({ resetTimeout: 1 } as never),
      /use openMs/,
    ],
    [
      'presets.httpClient({ retries: 2 })',
      () => presets.httpClient({ retries: 2 } as never),
      /use maxAttempts/,
    ],
  ])('%s', (_, make, message) => {
    expect(violationsOf(make).message).toMatch(message);
  });

  it('suggests the closest option for a typo', () => {
    expect(violationsOf(() => retry({ maxAttempt: 3 } as never)).message).toMatch(
      /maxAttempt: not an option; did you mean maxAttempts\?/,
    );
    expect(violationsOf(() => createFetch({ deadlinems: 3 } as never)).message).toMatch(
      /did you mean deadlineMs\?/,
    );
  });

  it('lists an unknown key together with every other violation, in one error', () => {
    const error = violationsOf(() =>
      createFetch({ retries: 5, maxAttempts: 0, breakers: { resetTimeout: 5 } } as never),
    );
    expect(error.violations.map((v) => v.option).sort()).toEqual([
      'breakers.resetTimeout',
      'maxAttempts',
      'retries',
    ]);
    expect(error).toBeInstanceOf(RangeError);
    expect(error.code).toBe('ERR_INVALID_OPTIONS');
  });
});

describe('contradictions are refused', () => {
  it('createFetch: an attemptTimeoutMs above deadlineMs', () => {
    const error = violationsOf(() => createFetch({ deadlineMs: 1_000, attemptTimeoutMs: 5_000 }));
    expect(error.violations.map((v) => v.option)).toEqual(['attemptTimeoutMs']);
    expect(error.message).toMatch(/attemptTimeoutMs: is above deadlineMs \(1000\)/);
    expect(() => createFetch({ deadlineMs: 1_000, attemptTimeoutMs: 1_000 })).not.toThrow();
  });

  it('presets.databaseClient: an attemptTimeoutMs above deadlineMs', () => {
    expect(
      violationsOf(() => presets.databaseClient({ deadlineMs: 100, attemptTimeoutMs: 200 })).message,
    ).toMatch(/attemptTimeoutMs: is above deadlineMs/);
  });

  it('presets.httpClient: a deadline shorter than its default attempt timeout is not a contradiction', () => {
    expect(() => presets.httpClient({ deadlineMs: 500 })).not.toThrow();
    expect(() => presets.httpClient({ deadlineMs: 500, attemptTimeoutMs: 900 })).toThrow(
      /is above deadlineMs/,
    );
  });

  it('pipeline(timeout(), retry(), deadline()): a timeout outside retry and a deadline inside it', () => {
    const error = violationsOf(() => pipeline(timeout(1_000), retry(), deadline(5_000)));
    expect(error.message).toContain('pipeline()');
    expect(error.violations.map((v) => v.option)).toEqual(['policies[0]', 'policies[2]']);
    expect(error.message).toMatch(/timeout\(\) is outside retry\(\)/);
    expect(error.message).toMatch(/deadline\(\) is inside retry\(\)/);
  });

  it('sees through nested pipelines', () => {
    const inner = pipeline(deadline(5_000), timeout(100)); // fine on its own
    const error = violationsOf(() => pipeline(inner, retry()));
    expect(error.violations.map((v) => v.option)).toEqual(['policies[0.1]']);
  });

  it('accepts the orders that work', () => {
    expect(() => pipeline(deadline(5_000), retry(), timeout(1_000))).not.toThrow();
    expect(() => pipeline(deadline(5_000), timeout(1_000))).not.toThrow();
    expect(() => pipeline(timeout(1_000))).not.toThrow();
    // A timeout between two retries bounds the inner loop, which the outer one retries.
    expect(() => pipeline(retry(), timeout(5_000), retry(), timeout(1_000))).not.toThrow();
  });
});
