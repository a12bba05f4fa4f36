// A local service that misbehaves on a schedule, for the demo. It listens on
// loopback only. Its timeline, as fractions of the run:
//
//   0.00-0.25  healthy: 5% of requests fail with 503, 5-25 ms latency
//   0.25-0.50  hard outage: every request fails at once (503 or a reset connection)
//   0.50-0.65  healthy again
//   0.65-0.85  latency spike: 200-2,000 ms per request, and slower still under load
//   0.85-1.00  healthy
//
// Like any server it has a capacity: with `capacity` requests already in hand
// it answers 503 at once. It counts every request it receives, so the demo can
// show how much load each client puts on it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom, systemClock } from '@bulwark/clock';

export type Phase = 'healthy' | 'outage' | 'recovering' | 'latency spike' | 'healthy again';

export interface FlakyServiceOptions {
  /** The length of the whole schedule, in milliseconds. */
  readonly durationMs: number;
  /** Seeds the service's randomness, so two services behave alike. */
  readonly seed: number;
  /** Requests handled at once; more are refused with 503. */
  readonly capacity: number;
}

export interface ServiceStats {
  /** Requests received. */
  readonly received: number;
  /** Requests being handled now. */
  readonly inFlight: number;
  /** The most requests handled at once. */
  readonly maxInFlight: number;
  /** Requests refused because the service was at capacity. */
  readonly overloaded: number;
}

export interface FlakyService {
  readonly url: string;
  phase(): Phase;
  stats(): ServiceStats;
  close(): Promise<void>;
}

export function phaseAt(fraction: number): Phase {
  if (fraction < 0.25) return 'healthy';
  if (fraction < 0.5) return 'outage';
  if (fraction < 0.65) return 'recovering';
  if (fraction < 0.85) return 'latency spike';
  return 'healthy again';
}

export async function startFlakyService(options: FlakyServiceOptions): Promise<FlakyService> {
  const random = seededRandom(options.seed);
  const startedAt = systemClock.now();
  let received = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let overloaded = 0;
  const phase = (): Phase => phaseAt((systemClock.now() - startedAt) / options.durationMs);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    received++;
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.on('close', finish);
    req.resume();
    if (inFlight > options.capacity) {
      overloaded++;
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('overloaded\n');
      return;
    }
    const now = phase();
    const roll = random();
    let latencyMs = 5 + random() * 20;
    if (now === 'outage') {
      if (roll < 0.5) {
        req.socket.destroy();
        finish();
        return;
      }
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
      res.end('outage\n');
      return;
    }
    if (now === 'latency spike') latencyMs = 200 + random() * 1_800 + inFlight * 5;
    const fail = (now === 'healthy' || now === 'healthy again') && roll < 0.05;
    const timer = systemClock.setTimeout(() => {
      if (res.destroyed) return;
      if (fail) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('busy\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}\n');
      }
    }, latencyMs);
    res.on('close', () => timer.clear());
  };

  const server: Server = createServer(handle);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/work`,
    phase,
    stats: () => ({ received, inFlight, maxInFlight, overloaded }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
