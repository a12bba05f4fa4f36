// The service the scenario benchmark calls: a node:http server on loopback with
// a fixed number of workers, a bounded FIFO queue in front of them (503 at
// once beyond it), exponential service times, and scripted faults.
//
// Like most real servers it does not notice that a caller has left: a request
// whose client gave up stays in the queue and is served in its turn, for
// nobody. That is what lets retries keep an overloaded server overloaded after
// the trigger has gone (a metastable failure, Bronson et al., HotOS '21).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Random, systemClock } from '@bulwark/clock';
import { exponential, lognormal, type ServerWindow } from './engine.ts';

export interface ServerModel {
  /** Requests served at once. */
  readonly workers: number;
  /** Mean service time of one request, in ms (exponentially distributed). */
  readonly meanServiceMs: number;
  /** Requests that may wait for a worker; more are refused with 503 at once. */
  readonly queueLimit: number;
}

/**
 * A scripted fault, active for arrivals in [startMs, endMs) from the start of the run:
 *  - 'errors': a share `rate` of requests fail with 503 at once (a brownout);
 *  - 'down': every request fails at once, half with 503, half with a reset connection;
 *  - 'latency': a lognormal delay (median/p99) is added to each response after
 *    its service, without holding a worker (a slow dependency downstream);
 *  - 'stall': workers take nothing from the queue (a GC pause, a lock, a failover).
 */
export type Fault =
  | { readonly kind: 'errors'; readonly startMs: number; readonly endMs: number; readonly rate: number }
  | { readonly kind: 'down'; readonly startMs: number; readonly endMs: number }
  | {
      readonly kind: 'latency';
      readonly startMs: number;
      readonly endMs: number;
      readonly medianMs: number;
      readonly p99Ms: number;
    }
  | { readonly kind: 'stall'; readonly startMs: number; readonly endMs: number };

export interface ScenarioServer {
  readonly url: string;
  /** Per-window counts, as many windows as the run has. */
  windows(): ServerWindow[];
  close(): Promise<void>;
}

interface Queued {
  readonly res: ServerResponse;
  readonly extraMs: number;
}

export async function startScenarioServer(options: {
  readonly model: ServerModel;
  readonly faults: readonly Fault[];
  /** The run's start on systemClock. */
  readonly t0: number;
  readonly durationMs: number;
  readonly windowMs: number;
  /** Fault coin flips and latency draws. */
  readonly faultRandom: Random;
  /** Service times. */
  readonly serviceRandom: Random;
}): Promise<ScenarioServer> {
  const { model, faults, t0, windowMs } = options;
  const n = Math.ceil(options.durationMs / windowMs);
  const received = new Array<number>(n).fill(0);
  const queuedAt = new Array<number>(n).fill(0);
  const abandoned = new Array<number>(n).fill(0);
  const queue: Queued[] = [];
  let head = 0;
  let busy = 0;
  const elapsed = (): number => systemClock.now() - t0;
  const windowOf = (t: number): number => Math.min(n - 1, Math.max(0, Math.floor(t / windowMs)));
  const active = (t: number, kind: Fault['kind']): Fault | undefined =>
    faults.find((f) => f.kind === kind && f.startMs <= t && t < f.endMs);

  const respond = (item: Queued): void => {
    if (item.res.destroyed) {
      abandoned[windowOf(elapsed())]!++;
      return;
    }
    item.res.writeHead(200, { 'content-type': 'text/plain' });
    item.res.end('ok\n');
  };

  const pump = (): void => {
    const t = elapsed();
    if (active(t, 'stall') !== undefined) return;
    while (busy < model.workers && head < queue.length) {
      const item = queue[head]!;
      queue[head++] = undefined as unknown as Queued;
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
      busy++;
      systemClock.setTimeout(
        () => {
          busy--;
          if (item.extraMs > 0) systemClock.setTimeout(() => respond(item), item.extraMs);
          else respond(item);
          pump();
        },
        exponential(options.serviceRandom, model.meanServiceMs),
      );
    }
  };

  // Workers resume when a stall ends; the queue length is sampled at each window's end.
  const timers = faults
    .filter((f) => f.kind === 'stall')
    .map((f) => systemClock.setTimeout(pump, Math.max(0, t0 + f.endMs - systemClock.now())));
  for (let i = 0; i < n; i++) {
    timers.push(
      systemClock.setTimeout(
        () => {
          queuedAt[i] = queue.length - head;
        },
        Math.max(0, t0 + (i + 1) * windowMs - 1 - systemClock.now()),
      ),
    );
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const t = elapsed();
    received[windowOf(t)]!++;
    req.resume();
    if (active(t, 'down') !== undefined) {
      if (options.faultRandom() < 0.5) {
        req.socket.destroy();
        return;
      }
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down\n');
      return;
    }
    const errors = active(t, 'errors');
    if (errors?.kind === 'errors' && options.faultRandom() < errors.rate) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('error\n');
      return;
    }
    if (queue.length - head >= model.queueLimit) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('overloaded\n');
      return;
    }
    const spike = active(t, 'latency');
    const extraMs =
      spike?.kind === 'latency' ? lognormal(options.faultRandom, spike.medianMs, spike.p99Ms) : 0;
    queue.push({ res, extraMs });
    pump();
  };

  const server = createServer({ keepAliveTimeout: 60_000 }, handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/work`,
    windows: () => received.map((r, i) => ({ received: r, queued: queuedAt[i]!, abandoned: abandoned[i]! })),
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) timer.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
