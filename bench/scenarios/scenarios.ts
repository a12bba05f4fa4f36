// The scenarios of the outage benchmark. Every fault starts after 10 s of
// healthy traffic (a client's windows and breakers have seen a normal load
// first, as in production). Times are in ms from the start of a run.
import type { Fault, ServerModel } from './server.ts';

export interface Scenario {
  readonly name: string;
  readonly title: string;
  /** Logical requests per second (Poisson arrivals). */
  readonly rate: number;
  readonly durationMs: number;
  /** Equivalent origins; callers pick one at random, faults name theirs. */
  readonly origins: number;
  readonly model: ServerModel;
  /** Faults per origin index. */
  readonly faults: ReadonlyArray<{ readonly origin: number; readonly fault: Fault }>;
  /** [start, end) of the fault, or null for none. */
  readonly fault: { readonly startMs: number; readonly endMs: number } | null;
  /** The origin that is hard down during the fault (amplification ≤ 0.5 there). */
  readonly hardDown?: number;
  /** The metastability case: the verdict decides a target. */
  readonly metastability?: boolean;
}

/** The warm-up: healthy traffic before any fault. */
export const WARMUP_MS = 10_000;
/** The baseline goodput is measured over [BASELINE_FROM_MS, WARMUP_MS). */
export const BASELINE_FROM_MS = 2_000;

/** One origin: 4 workers × 40 ms mean service = 100 requests/s; 2 s of queue. */
const ONE: ServerModel = { workers: 4, meanServiceMs: 40, queueLimit: 200 };
/** Each of three origins: 2 workers × 60 ms = 33 requests/s; 2 s of queue. */
const EACH_OF_THREE: ServerModel = { workers: 2, meanServiceMs: 60, queueLimit: 67 };

const W = WARMUP_MS;

function single(
  name: string,
  title: string,
  fault: Fault | null,
  tailMs: number,
  extra: Partial<Scenario> = {},
): Scenario {
  const end = fault === null ? W : fault.endMs;
  return {
    name,
    title,
    rate: 50,
    durationMs: end + tailMs,
    origins: 1,
    model: ONE,
    faults: fault === null ? [] : [{ origin: 0, fault }],
    fault: fault === null ? null : { startMs: fault.startMs, endMs: fault.endMs },
    ...extra,
  };
}

export const SCENARIOS: readonly Scenario[] = [
  single('healthy', 'healthy, 50 requests/s at 50% utilisation', null, 0),
  single(
    'brownout',
    'brownout: 30% of requests fail with 503 for 6 s',
    { kind: 'errors', startMs: W, endMs: W + 6_000, rate: 0.3 },
    3_000,
  ),
  single(
    'outage-5s',
    'hard outage for 5 s: half 503, half connection reset',
    { kind: 'down', startMs: W, endMs: W + 5_000 },
    3_000,
    { hardDown: 0 },
  ),
  single(
    'outage-15s',
    'hard outage for 15 s: half 503, half connection reset',
    { kind: 'down', startMs: W, endMs: W + 15_000 },
    3_000,
    { hardDown: 0 },
  ),
  single(
    'latency-spike',
    'latency spike for 5 s: lognormal extra latency, median 300 ms, p99 3 s',
    { kind: 'latency', startMs: W, endMs: W + 5_000, medianMs: 300, p99Ms: 3_000 },
    3_000,
  ),
  single(
    'overload-stall',
    'overload: 83 requests/s (83% utilisation) and a 2 s stall of every worker',
    { kind: 'stall', startMs: W, endMs: W + 2_000 },
    6_000,
    { rate: 83 },
  ),
  single(
    'metastable',
    'metastability trigger: a 3 s stall at 50% utilisation; the server serves requests whose callers left',
    { kind: 'stall', startMs: W, endMs: W + 3_000 },
    6_000,
    { metastability: true },
  ),
  {
    name: 'one-of-three',
    title: 'three equivalent origins, one hard down for 5 s (half 503, half reset)',
    rate: 50,
    durationMs: W + 5_000 + 3_000,
    origins: 3,
    model: EACH_OF_THREE,
    faults: [{ origin: 0, fault: { kind: 'down', startMs: W, endMs: W + 5_000 } }],
    fault: { startMs: W, endMs: W + 5_000 },
    hardDown: 0,
  },
];
