// The pure parts of the outage scenario benchmark: seeded arrivals and service
// times, and the figures computed from a run's timeline (goodput per window,
// baseline, recovery, amplification, percentiles, the metastability verdict).
// Nothing here touches a socket or a timer, so test/bench/ checks it on
// synthetic timelines.
import type { Random } from '@bulwark/clock';

/** How long a caller waits for an answer, in milliseconds (the SLO). */
export const SLO_MS = 1_500;
/** The width of one goodput window, in milliseconds. */
export const WINDOW_MS = 500;
/** Recovered: goodput back to this share of the baseline... */
export const RECOVERY_SHARE = 0.9;
/** ...in this many consecutive windows (1 s). */
export const RECOVERY_HOLD_WINDOWS = 2;

/** An exponentially distributed number with the given mean. */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** A standard normal number (Box–Muller). */
export function standardNormal(random: Random): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** The 99th percentile of the standard normal distribution. */
const Z99 = 2.326_347_874;

/** A lognormal number with the given median and 99th percentile. */
export function lognormal(random: Random, median: number, p99: number): number {
  const sigma = Math.log(p99 / median) / Z99;
  return median * Math.exp(sigma * standardNormal(random));
}

/**
 * The arrival times (ms from the start, ascending, below `durationMs`) of a
 * Poisson process of `ratePerSecond`: open-loop callers, who arrive whether or
 * not earlier callers were answered.
 */
export function poissonArrivals(random: Random, ratePerSecond: number, durationMs: number): number[] {
  if (!(ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be > 0, got ${ratePerSecond}`);
  const meanGapMs = 1_000 / ratePerSecond;
  const out: number[] = [];
  for (let t = exponential(random, meanGapMs); t < durationMs; t += exponential(random, meanGapMs))
    out.push(t);
  return out;
}

/** One logical request, as its caller saw it. */
export interface RequestRecord {
  /** When the caller arrived, ms from the start of the run. */
  readonly startMs: number;
  /** From arrival to the answer, in ms; Infinity when none came before the run ended. */
  readonly latencyMs: number;
  /** The client returned a successful response. */
  readonly ok: boolean;
}

/** One window of a run, by the arrival time of the callers. */
export interface Window {
  /** Logical requests that arrived in the window. */
  readonly arrivals: number;
  /** Of those, the ones answered successfully within the SLO. */
  readonly good: number;
}

/** A success within the SLO. */
export function isGood(r: RequestRecord, sloMs = SLO_MS): boolean {
  return r.ok && r.latencyMs <= sloMs;
}

/** Buckets the records into windows of `windowMs` by arrival time. */
export function windows(
  records: readonly RequestRecord[],
  durationMs: number,
  windowMs = WINDOW_MS,
  sloMs = SLO_MS,
): Window[] {
  const n = Math.ceil(durationMs / windowMs);
  const arrivals = new Array<number>(n).fill(0);
  const good = new Array<number>(n).fill(0);
  for (const r of records) {
    const i = Math.floor(r.startMs / windowMs);
    if (i < 0 || i >= n) continue;
    arrivals[i]!++;
    if (isGood(r, sloMs)) good[i]!++;
  }
  return arrivals.map((a, i) => ({ arrivals: a, good: good[i]! }));
}

/** Goodput (a share in [0, 1]) over windows [from, to); NaN when nobody arrived. */
export function goodputOver(ws: readonly Window[], from = 0, to = ws.length): number {
  let a = 0;
  let g = 0;
  for (let i = Math.max(0, from); i < Math.min(to, ws.length); i++) {
    a += ws[i]!.arrivals;
    g += ws[i]!.good;
  }
  return a === 0 ? Number.NaN : g / a;
}

/**
 * Milliseconds from `faultEndMs` to the start of the first window, at or after
 * the window that holds `faultEndMs`, from which `holdWindows` (default: 1 s)
 * consecutive windows all have goodput >= RECOVERY_SHARE × baseline (a window
 * nobody arrived in counts as recovered). Windows that start before the fault
 * ends count too, so a client that answered its callers through the end of the
 * fault recovers in 0 ms. null when that never happens within the run.
 */
export function recoveryMs(
  ws: readonly Window[],
  faultEndMs: number,
  baseline: number,
  windowMs = WINDOW_MS,
  holdWindows = RECOVERY_HOLD_WINDOWS,
): number | null {
  const floor = RECOVERY_SHARE * baseline;
  const first = Math.floor(faultEndMs / windowMs);
  for (let i = first; i + holdWindows <= ws.length; i++) {
    let held = true;
    for (let k = i; k < i + holdWindows; k++) {
      const w = ws[k]!;
      if (w.arrivals > 0 && w.good / w.arrivals < floor) {
        held = false;
        i = k; // no window before k+1 can start a run that holds
        break;
      }
    }
    if (held) return Math.max(0, i * windowMs - faultEndMs);
  }
  return null;
}

/** The q-quantile (nearest rank) of values; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Server-side counts for one window (by the time the server saw the request). */
export interface ServerWindow {
  /** Requests received (every attempt, every outcome). */
  readonly received: number;
  /** Requests waiting in the queue at the end of the window. */
  readonly queued: number;
  /** Requests served after their caller had gone (work done for nobody). */
  readonly abandoned: number;
}

/** Requests the server received per logical request, over windows [from, to). */
export function amplification(
  server: readonly ServerWindow[],
  ws: readonly Window[],
  from = 0,
  to = ws.length,
): number {
  let received = 0;
  let arrivals = 0;
  for (let i = Math.max(0, from); i < Math.min(to, ws.length); i++) {
    received += server[i]?.received ?? 0;
    arrivals += ws[i]!.arrivals;
  }
  return arrivals === 0 ? Number.NaN : received / arrivals;
}

export type Verdict = 'no fault' | 'recovered' | 'metastable' | 'not recovered';

/**
 * After a fault: 'recovered' when recoveryMs found a recovery; otherwise
 * 'metastable' when the server stayed saturated in the last `tailWindows`
 * windows of the run (its queue never below half its bound: the load that
 * keeps it there is the client's own, since the trigger has ended), and 'not
 * recovered' when goodput stayed low while the server was not saturated (the
 * client itself kept refusing or failing calls).
 */
export function verdict(
  recovery: number | null,
  server: readonly ServerWindow[],
  queueLimit: number,
  tailWindows: number,
): Verdict {
  if (recovery !== null) return 'recovered';
  const tail = server.slice(Math.max(0, server.length - tailWindows));
  const saturated = tail.length > 0 && tail.every((w) => w.queued >= queueLimit / 2);
  return saturated ? 'metastable' : 'not recovered';
}
