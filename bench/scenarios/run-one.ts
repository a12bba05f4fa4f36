// One run of the outage benchmark: one scenario, one seed, one client, against
// fresh servers, in a process of its own. The suite (bench/suites/scenarios.ts)
// starts it as
//   node --conditions=bulwark-source bench/scenarios/run-one.ts <scenario> <seed> <client> <out.json>
// and reads the figures it writes to out.json.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { seededRandom, systemClock } from '@bulwark/clock';
import { type ClientName, failures, makeClient } from './clients.ts';
import {
  amplification,
  goodputOver,
  isGood,
  poissonArrivals,
  quantile,
  recoveryMs,
  type ServerWindow,
  SLO_MS,
  type Verdict,
  verdict,
  WINDOW_MS,
  type Window,
  windows,
} from './engine.ts';
import { BASELINE_FROM_MS, SCENARIOS, WARMUP_MS } from './scenarios.ts';
import { type ScenarioServer, startScenarioServer } from './server.ts';

export interface RunResult {
  readonly scenario: string;
  readonly seed: number;
  readonly client: ClientName;
  readonly requests: number;
  /** Share of logical requests answered successfully within the SLO. */
  readonly goodput: number;
  /** Goodput over the healthy warm-up (from BASELINE_FROM_MS). */
  readonly baseline: number;
  /** Server requests per logical request over the whole run. */
  readonly amp: number;
  /** The same during the fault (NaN without one). */
  readonly ampFault: number;
  /** On the hard-down origin during its fault, per logical request that started there (NaN when none). */
  readonly ampDown: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** ms from the fault's end to recovery; null when not recovered within the run or no fault. */
  readonly recoveryMs: number | null;
  readonly verdict: Verdict;
  /** Requests the server served after their caller had gone. */
  readonly abandoned: number;
  /** This process's event-loop delay over the run, p99 and max in ms: above ~100 ms the machine, not the client, lost callers. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  /** Why logical requests failed, by error code or name (or HTTP status), over the run. */
  readonly failures: Readonly<Record<string, number>>;
  readonly windows: readonly Window[];
}

/** Sums per-window server counts across origins. */
function sumWindows(all: readonly (readonly ServerWindow[])[]): ServerWindow[] {
  return all[0]!.map((_, i) => ({
    received: all.reduce((s, w) => s + w[i]!.received, 0),
    queued: all.reduce((s, w) => s + w[i]!.queued, 0),
    abandoned: all.reduce((s, w) => s + w[i]!.abandoned, 0),
  }));
}

export async function runOne(scenarioName: string, seed: number, clientName: ClientName): Promise<RunResult> {
  const scenario = SCENARIOS.find((s) => s.name === scenarioName);
  if (scenario === undefined) throw new Error(`no scenario ${scenarioName}`);
  // The same arrivals, origins and faults for every client of a seed.
  const arrivals = poissonArrivals(seededRandom(seed), scenario.rate, scenario.durationMs);
  const originRandom = seededRandom(seed + 1_000);
  const origins = arrivals.map(() => Math.floor(originRandom() * scenario.origins));

  const client = makeClient(clientName);
  // A cold process (JIT, lazy module state, the first connections) would cost
  // the first callers of every run time that a service's long-lived client
  // never pays: warm the client up first on a server of its own (another
  // origin, so no breaker or window of the measured origins sees it).
  const warm = await startScenarioServer({
    model: scenario.model,
    faults: [],
    t0: systemClock.now(),
    durationMs: 10_000,
    windowMs: WINDOW_MS,
    faultRandom: seededRandom(seed),
    serviceRandom: seededRandom(seed),
  });
  const warming: Promise<boolean>[] = [];
  const never = new AbortController().signal;
  for (let i = 0; i < 150; i++) {
    warming.push(client.call(() => warm.url, never));
    if (i % 10 === 9) await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 100));
  }
  await Promise.all(warming);
  await warm.close();
  failures.clear();

  const t0 = systemClock.now() + 200;
  const serverMs = scenario.durationMs + SLO_MS + 500;
  const servers: ScenarioServer[] = [];
  for (let o = 0; o < scenario.origins; o++) {
    servers.push(
      await startScenarioServer({
        model: scenario.model,
        faults: scenario.faults.filter((f) => f.origin === o).map((f) => f.fault),
        t0,
        durationMs: serverMs,
        windowMs: WINDOW_MS,
        faultRandom: seededRandom(seed * 31 + 7 + o),
        serviceRandom: seededRandom(seed * 131 + 17 + o),
      }),
    );
  }
  const stop = new AbortController();
  const records: { startMs: number; latencyMs: number; ok: boolean }[] = arrivals.map((a) => ({
    startMs: a,
    latencyMs: Number.POSITIVE_INFINITY,
    ok: false,
  }));
  const pending = new Set<Promise<void>>();
  const launch = (i: number): void => {
    const start = origins[i]!;
    const pick = (attempt: number): string => servers[(start + attempt - 1) % servers.length]!.url;
    const p = client.call(pick, stop.signal).then((ok) => {
      records[i]!.latencyMs = systemClock.now() - t0 - arrivals[i]!;
      records[i]!.ok = ok;
      pending.delete(p);
    });
    pending.add(p);
  };

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = systemClock.now() - t0;
      while (next < arrivals.length && arrivals[next]! <= now) launch(next++);
      if (next >= arrivals.length) resolve();
      else systemClock.setTimeout(tick, Math.max(0, arrivals[next]! - now));
    };
    systemClock.setTimeout(tick, Math.max(0, t0 - systemClock.now()));
  });
  // The last callers get their whole SLO; then whatever still runs is stopped.
  await new Promise<void>((resolve) =>
    systemClock.setTimeout(resolve, Math.max(0, t0 + scenario.durationMs + SLO_MS - systemClock.now())),
  );
  loop.disable();
  stop.abort(new Error('the run has ended'));
  const serverWindows = servers.map((s) => s.windows());
  await Promise.all(servers.map((s) => s.close()));
  await Promise.race([
    Promise.all(pending),
    new Promise<void>((resolve) => systemClock.setTimeout(resolve, 3_000)),
  ]);
  client.close();

  const ws = windows(records, scenario.durationMs);
  const server = sumWindows(serverWindows);
  const baseline = goodputOver(ws, BASELINE_FROM_MS / WINDOW_MS, WARMUP_MS / WINDOW_MS);
  const fault = scenario.fault;
  const fw = fault === null ? null : [fault.startMs / WINDOW_MS, fault.endMs / WINDOW_MS];
  const recovery = fault === null ? null : recoveryMs(ws, fault.endMs, baseline);
  let ampDown = Number.NaN;
  if (fault !== null && scenario.hardDown !== undefined) {
    const down = serverWindows[scenario.hardDown]!;
    let received = 0;
    for (let i = fw![0]!; i < fw![1]!; i++) received += down[i]!.received;
    const startedThere = arrivals.filter(
      (a, i) => origins[i] === scenario.hardDown && a >= fault.startMs && a < fault.endMs,
    ).length;
    ampDown = startedThere === 0 ? Number.NaN : received / startedThere;
  }
  const successes = records.filter((r) => r.ok && Number.isFinite(r.latencyMs)).map((r) => r.latencyMs);
  const totalReceived = server.reduce((s, w) => s + w.received, 0);
  return {
    scenario: scenario.name,
    seed,
    client: clientName,
    requests: records.length,
    goodput: records.filter((r) => isGood(r)).length / records.length,
    baseline,
    amp: totalReceived / records.length,
    ampFault: fw === null ? Number.NaN : amplification(server, ws, fw[0], fw[1]),
    ampDown,
    p50Ms: quantile(successes, 0.5),
    p99Ms: quantile(successes, 0.99),
    recoveryMs: recovery,
    verdict:
      fault === null
        ? 'no fault'
        : verdict(
            recovery,
            server.slice(0, ws.length),
            scenario.model.queueLimit * scenario.origins,
            2_000 / WINDOW_MS,
          ),
    abandoned: server.reduce((s, w) => s + w.abandoned, 0),
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
    failures: Object.fromEntries(failures),
    windows: ws,
  };
}

if (import.meta.main) {
  const [scenario, seed, client, out] = process.argv.slice(2);
  const result = await runOne(scenario!, Number(seed), client as ClientName);
  writeFileSync(out!, JSON.stringify(result));
  process.exit(0);
}
