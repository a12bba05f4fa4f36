// A small side-by-side benchmark harness.
//
// Every subject of a suite runs in the same process, in interleaved rounds (the
// order rotates each round), so machine noise hits them alike. Each round times a
// batch of sequential awaited calls. The reported figure is the best round, in
// nanoseconds per call: on a shared machine interference only ever adds time, so
// the fastest of many rounds is the most repeatable estimate of a subject's own
// cost (the rule Python's timeit follows). A suite whose calls go through the
// network stack (a loopback server) may ask for the median round instead, and
// for the process's CPU time per call beside the wall time; each measurement
// keeps its rounds in order, so two subjects can be compared round by round
// (pairedRatio). Batches are long enough that every round includes garbage
// collection. Overhead is a subject's time minus the
// baseline's (a bare call), and ratios compare overheads. An overhead keeps its
// sign: a subject whose best round beats the baseline's gets a negative
// overhead, which means its cost is below what this run can resolve, not that it
// is free. The table marks such rows NOISE, and target() counts a target built
// on one as missed (a ratio of 0 or below would otherwise meet any limit).
import { mkdirSync, writeFileSync } from 'node:fs';
import { seededRandom } from '@bulwark/clock';

export interface Subject {
  readonly name: string;
  /** One call. Awaited when it returns a promise. */
  readonly call: () => unknown;
  /** Runs once before timing (e.g. to create state). */
  readonly setup?: () => void | Promise<void>;
}

export interface SuiteOptions {
  /** Calls per timed batch. Default 50,000. */
  readonly batch?: number;
  /** Timed rounds per subject. Default 21. */
  readonly rounds?: number;
  /** Untimed warm-up calls per subject. Default 20,000. */
  readonly warmup?: number;
  /** Name of the baseline subject. Default: the first subject. */
  readonly baseline?: string;
  /** The figure reported per subject: its fastest round, or its median round. Default: 'best'. */
  readonly statistic?: Statistic;
  /** Also measure the process's CPU time (user + system) per call in each round. Default: false. */
  readonly cpu?: boolean;
  /**
   * The order of the subjects within a round. 'rotate' starts each round one
   * subject later, so every subject always runs right after the same one;
   * 'shuffle' draws a new order each round (from a fixed seed), so what one
   * subject leaves behind (garbage to collect, a cold cache) does not always
   * land on the same next one. Default: 'rotate'.
   */
  readonly order?: 'rotate' | 'shuffle';
}

/** How a subject's rounds are summed up in one figure. */
export type Statistic = 'best' | 'median';

export interface Measurement {
  readonly name: string;
  /** Nanoseconds per call in the best round (or the median round, as the suite asked). */
  readonly nsPerCall: number;
  /**
   * nsPerCall minus the baseline's, with its sign. At or below 0 (for a subject
   * other than the baseline), the subject measured within the baseline's noise.
   */
  readonly overheadNs: number;
  /** The spread of the middle half of rounds, in ns per call. */
  readonly iqrNs: number;
  /** Nanoseconds per call in each round, in the order the rounds ran. */
  readonly roundsNs?: readonly number[];
  /** CPU nanoseconds (user + system, the whole process) per call in each round, when the suite asked. */
  readonly cpuRoundsNs?: readonly number[];
}

export interface SuiteResult {
  readonly suite: string;
  readonly node: string;
  readonly baseline: string;
  readonly batch: number;
  readonly rounds: number;
  /** The figure nsPerCall reports. Absent: 'best'. */
  readonly statistic?: Statistic;
  readonly measurements: readonly Measurement[];
}

export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

async function timeBatch(call: () => unknown, n: number, cpu?: number[]): Promise<number> {
  const cpuStart = cpu === undefined ? undefined : process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = call();
    if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function')
      await r;
  }
  const ns = Number(process.hrtime.bigint() - start) / n;
  if (cpuStart !== undefined) {
    const used = process.cpuUsage(cpuStart);
    cpu!.push(((used.user + used.system) * 1_000) / n);
  }
  return ns;
}

/** Runs the subjects side by side and returns (and prints) the measurements. */
export async function runSuite(
  suite: string,
  subjects: readonly Subject[],
  options: SuiteOptions = {},
): Promise<SuiteResult> {
  const batch = options.batch ?? 50_000;
  const rounds = options.rounds ?? 21;
  const warmup = options.warmup ?? 20_000;
  const baseline = options.baseline ?? subjects[0]!.name;
  const statistic = options.statistic ?? 'best';
  const figure = (values: readonly number[]): number =>
    statistic === 'median' ? quantile(values, 0.5) : Math.min(...values);
  for (const s of subjects) {
    await s.setup?.();
    await timeBatch(s.call, warmup);
  }
  const samples = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
  const cpuSamples = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
  // Seeded, so that a shuffled run's orders are the same every time.
  const random = seededRandom(0x5eed);
  const order = subjects.map((_, i) => i);
  for (let round = 0; round < rounds; round++) {
    if (options.order === 'shuffle') {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
    }
    for (let k = 0; k < subjects.length; k++) {
      const s = options.order === 'shuffle' ? subjects[order[k]!]! : subjects[(round + k) % subjects.length]!;
      const cpu = options.cpu === true ? cpuSamples.get(s.name)! : undefined;
      samples.get(s.name)!.push(await timeBatch(s.call, batch, cpu));
    }
  }
  const base = figure(samples.get(baseline)!);
  const measurements = subjects.map((s): Measurement => {
    const values = samples.get(s.name)!;
    const ns = figure(values);
    return {
      name: s.name,
      nsPerCall: ns,
      overheadNs: ns - base,
      iqrNs: quantile(values, 0.75) - quantile(values, 0.25),
      roundsNs: values,
      ...(options.cpu === true ? { cpuRoundsNs: cpuSamples.get(s.name)! } : {}),
    };
  });
  const result: SuiteResult = {
    suite,
    node: process.version,
    baseline,
    batch,
    rounds,
    ...(statistic === 'best' ? {} : { statistic }),
    measurements,
  };
  printSuite(result);
  save(result);
  return result;
}

export function printSuite(result: SuiteResult): void {
  const rows = result.measurements.map((m) => [
    m.name,
    m.nsPerCall.toFixed(0),
    m.name === result.baseline ? '-' : m.overheadNs.toFixed(0),
    m.iqrNs.toFixed(0),
  ]);
  printTable(
    `${result.suite} (Node ${result.node}, ${result.statistic === 'median' ? 'median' : 'best'} of ${result.rounds} rounds × ${result.batch} calls)`,
    [['subject', 'ns/call', 'overhead ns', 'round IQR ns'], ...rows],
  );
  for (const m of result.measurements) {
    if (m.name !== result.baseline && m.overheadNs <= 0) {
      console.log(
        `NOISE ${m.name}: overhead ${m.overheadNs.toFixed(1)} ns is at or below the baseline (${result.baseline}); its cost is within this run's noise, and no ratio built on it is evidence`,
      );
    }
  }
}

/** Prints a plain aligned table with a title. */
export function printTable(title: string, rows: ReadonlyArray<ReadonlyArray<string>>): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: ReadonlyArray<string>) =>
    `| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  console.log(`\n${title}`);
  console.log(line(rows[0]!));
  console.log(
    `|${widths.map((w, c) => (c === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const r of rows.slice(1)) console.log(line(r));
}

/** The median and quartiles of a set of per-round figures. */
export interface Spread {
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
}

/**
 * `name`'s time over `baseline`'s, round by round (each round runs every
 * subject once, one after another, so the two share that round's machine
 * load): the median ratio and its quartiles. With `cpu`, the ratio of CPU
 * time per call instead (the suite must have measured it).
 */
export function pairedRatio(result: SuiteResult, name: string, baseline: string, cpu = false): Spread {
  const rounds = (n: string): readonly number[] => {
    const m = result.measurements.find((x) => x.name === n);
    const values = cpu ? m?.cpuRoundsNs : m?.roundsNs;
    if (values === undefined) throw new Error(`no ${cpu ? 'CPU ' : ''}rounds of ${n} in ${result.suite}`);
    return values;
  };
  const base = rounds(baseline);
  const ratios = rounds(name).map((ns, i) => ns / base[i]!);
  return { median: quantile(ratios, 0.5), q1: quantile(ratios, 0.25), q3: quantile(ratios, 0.75) };
}

/** The overhead of `name` in a result. */
export function overhead(result: SuiteResult, name: string): number {
  const m = result.measurements.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no subject ${name} in ${result.suite}`);
  return m.overheadNs;
}

/**
 * Checks a target and prints it; returns whether it was met.
 *
 * A target whose figure is NaN, or at or below 0 against a positive limit, is
 * built on an overhead the run could not resolve (an overhead at or below the
 * baseline's, or a ratio of one): it prints NOISE and counts as missed, since a
 * ratio of 0 or below would meet any limit. `overheads`, when given, are the
 * overheads the figure was computed from; any at or below 0 makes it NOISE too
 * (two negative overheads give a positive ratio that `actual` alone cannot
 * reveal).
 */
export function target(
  description: string,
  actual: number,
  limit: number,
  overheads: readonly number[] = [],
): boolean {
  const noise = Number.isNaN(actual) || (actual <= 0 && limit > 0) || overheads.some((o) => !(o > 0));
  const met = !noise && actual <= limit;
  const line = `${met ? 'MET ' : 'MISS'} ${description}: ${actual.toFixed(3)} (limit ${limit.toFixed(3)})`;
  console.log(
    noise
      ? `${line} NOISE: built on an overhead at or below the baseline's, which this run cannot resolve; rerun on a quieter machine`
      : line,
  );
  return met;
}

export function save<T extends { readonly suite: string }>(result: T): void {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(`${result.suite}.json`, dir), `${JSON.stringify(result, null, 2)}\n`);
}
