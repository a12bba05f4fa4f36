// `npm run demo`: a flaky service on loopback, driven by a naive client and a
// bulwark client side by side, with a live view and a summary at the end.
//
//   npm run demo                      # about 20 seconds
//   npm run demo -- --quick           # about 10 seconds
//   npm run demo -- --json            # also prints the summary as one JSON line
//
// Each client gets its own copy of the service (same schedule, same seed), so
// the load one client causes does not slow the other down.
import { systemClock } from '@bulwark/clock';
import { bulwarkClient, type DemoClient, naiveClient, SLO_MS } from './clients.ts';
import { type FlakyService, startFlakyService } from './flaky-service.ts';
import { emptyTotals, quantile, record, type Totals, table } from './stats.ts';

export interface DemoOptions {
  /** How long requests are sent, in milliseconds. */
  readonly durationMs: number;
  /** Logical requests each client starts per second. */
  readonly rate: number;
  /** Where the live view and summary go. */
  readonly out: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
  readonly json: boolean;
}

export interface ClientSummary {
  readonly client: string;
  readonly requests: number;
  readonly succeeded: number;
  /** Successes within SLO_MS. */
  readonly onTime: number;
  readonly failed: number;
  readonly shed: number;
  /** Requests the service received from this client. */
  readonly serviceLoad: number;
  /** serviceLoad / requests. */
  readonly amplification: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The most requests from this client the service handled at once. */
  readonly maxInFlight: number;
}

interface Lane {
  readonly client: DemoClient;
  readonly service: FlakyService;
  readonly total: Totals;
  window: Totals;
  windowReceived: number;
  readonly pending: Set<Promise<void>>;
}

const fmt = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(2));

function summarize(lane: Lane): ClientSummary {
  const t = lane.total;
  const load = lane.service.stats();
  return {
    client: lane.client.name,
    requests: t.requests,
    succeeded: t.succeeded,
    onTime: t.onTime,
    failed: t.failed,
    shed: t.shed,
    serviceLoad: load.received,
    amplification: t.requests === 0 ? 0 : load.received / t.requests,
    p50Ms: Math.round(quantile(t.latencies, 0.5)),
    p99Ms: Math.round(quantile(t.latencies, 0.99)),
    maxInFlight: load.maxInFlight,
  };
}

export async function runDemo(options: DemoOptions): Promise<ClientSummary[]> {
  const { out } = options;
  const tty = out.isTTY === true;
  const seed = 42;
  const lanes: Lane[] = [];
  for (const make of [naiveClient, bulwarkClient]) {
    // Both services share one schedule; each is started just before its client.
    const service = await startFlakyService({ durationMs: options.durationMs, seed, capacity: 40 });
    lanes.push({
      client: make(service.url),
      service,
      total: emptyTotals(),
      window: emptyTotals(),
      windowReceived: 0,
      pending: new Set(),
    });
  }

  out.write(
    `bulwark demo: ${options.rate} requests/s from each client for ${(options.durationMs / 1000).toFixed(0)} s ` +
      'against a flaky service (errors, a hard outage, a latency spike)\n\n',
  );

  const started = systemClock.now();
  const intervalMs = 1000 / options.rate;
  let issued = 0;
  let lastView = started;
  let viewLines = 0;

  const view = (): void => {
    const now = systemClock.now();
    const seconds = Math.max(0.001, (now - lastView) / 1000);
    lastView = now;
    const rows = lanes.map((lane) => {
      const w = lane.window;
      const received = lane.service.stats().received;
      const sent = received - lane.windowReceived;
      lane.windowReceived = received;
      const retries = Math.max(0, sent - (w.requests - w.shed));
      const row = [
        lane.client.name,
        fmt(Math.round(w.requests / seconds)),
        String(w.succeeded),
        String(w.failed),
        String(retries),
        String(w.shed),
        String(Math.round(quantile(w.latencies, 0.99))),
        lane.client.status(),
      ];
      lane.window = emptyTotals();
      return row;
    });
    const phase = lanes[0]!.service.phase();
    const elapsed = ((now - started) / 1000).toFixed(1);
    if (tty) {
      const text = `t=${elapsed}s  service: ${phase}\n${table(
        ['client', 'req/s', 'ok', 'failed', 'retries', 'rejected', 'p99 ms', 'breaker'],
        rows,
      )}\n`;
      if (viewLines > 0) out.write(`\x1b[${viewLines}A\x1b[J`);
      out.write(text);
      viewLines = text.split('\n').length - 1;
    } else {
      for (const r of rows)
        out.write(
          `t=${elapsed}s phase=${phase} client=${r[0]} req/s=${r[1]} ok=${r[2]} failed=${r[3]} retries=${r[4]} rejected=${r[5]} p99ms=${r[6]} breaker=${r[7]}\n`,
        );
    }
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = systemClock.now();
      const due = Math.min(
        Math.floor((now - started) / intervalMs) + 1,
        Math.floor(options.durationMs / intervalMs),
      );
      for (; issued < due; issued++) {
        for (const lane of lanes) {
          const p: Promise<void> = lane.client.send().then((result) => {
            record(lane.total, result, SLO_MS);
            record(lane.window, result, SLO_MS);
            lane.pending.delete(p);
          });
          lane.pending.add(p);
        }
      }
      if (now - lastView >= 1000) view();
      if (now - started >= options.durationMs) resolve();
      else systemClock.setTimeout(tick, Math.min(intervalMs, 10));
    };
    tick();
  });

  // Let the requests still running finish (bounded: the naive client has no timeout of its own).
  const drain = systemClock.now();
  while (lanes.some((l) => l.pending.size > 0) && systemClock.now() - drain < 10_000) {
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 50));
  }
  view();
  for (const lane of lanes) lane.client.close();
  await Promise.all(lanes.map((l) => l.service.close()));

  const summaries = lanes.map(summarize);
  out.write(
    `\nsummary (${summaries[0]!.requests} logical requests per client)\n${table(
      [
        'client',
        'requests',
        'succeeded',
        `within ${SLO_MS / 1000} s`,
        'failed',
        'rejected',
        'service load',
        'amplification',
        'p50 ms',
        'p99 ms',
        'max in flight',
      ],
      summaries.map((s) => [
        s.client,
        String(s.requests),
        String(s.succeeded),
        String(s.onTime),
        String(s.failed),
        String(s.shed),
        String(s.serviceLoad),
        `${s.amplification.toFixed(2)}x`,
        String(s.p50Ms),
        String(s.p99Ms),
        String(s.maxInFlight),
      ]),
    )}\n`,
  );
  out.write(
    `\nwithin ${SLO_MS / 1000} s: successes that came within the time a caller waits (the bulwark client's deadline).\n` +
      'rejected: refused by the client itself (open breaker, full bulkhead) without touching the service.\n' +
      'amplification: requests the service received per logical request; above 1 means retries added load.\n',
  );
  if (options.json) out.write(`DEMO_SUMMARY ${JSON.stringify(summaries)}\n`);
  return summaries;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  await runDemo({
    durationMs: quick ? 10_000 : 18_000,
    rate: 40,
    out: process.stdout,
    json: args.includes('--json'),
  });
}
