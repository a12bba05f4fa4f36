// An HTTP pinger against a real server on 127.0.0.1: 2xx answers keep the peer
// available; 503 answers and hung requests (cut by the probe deadline) do not
// count as heartbeats, so the peer becomes suspected; it recovers when the
// server answers 200 again.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  fixedTimeout,
  type HttpPinger,
  heartbeatMonitor,
  httpPinger,
  type ProbeEvent,
} from '@bulwark/failure-detector';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer } from '../support/loopback.ts';

let mode: 'ok' | 'unavailable' | 'hang' = 'ok';
let server: Server;
let pinger: HttpPinger | undefined;
const monitor = heartbeatMonitor({
  checkIntervalMs: 10,
  detector: () => fixedTimeout({ timeoutMs: 250 }),
});
const probes: ProbeEvent[] = [];
const events: string[] = [];
monitor.onSuspect(({ peerId }) => events.push(`suspect ${peerId}`));
monitor.onRecover(({ peerId }) => events.push(`recover ${peerId}`));

function waitFor(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (probe()) resolve();
      else if (performance.now() - start > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== '/health') res.writeHead(404).end();
    else if (mode === 'ok') res.writeHead(200).end('ok');
    else if (mode === 'unavailable') res.writeHead(503).end('draining');
    // 'hang': never answer; the pinger's deadline aborts the request.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  pinger = httpPinger({ url: `http://127.0.0.1:${port}/health`, peerId: 'api', monitor, intervalMs: 50 });
  pinger.onProbe((e) => probes.push(e));
});

afterAll(async () => {
  pinger?.dispose();
  monitor.dispose();
  await closeServer(server);
});

describe('httpPinger against a real HTTP server', () => {
  it('treats 200 answers as heartbeats', async () => {
    await waitFor('two ok probes', () => pinger!.stats.ok >= 2, 3000);
    expect(monitor.status('api')).toBe('available');
  });

  it('suspects the peer while it answers 503, and recovers on 200', async () => {
    mode = 'unavailable';
    await waitFor('suspicion', () => events.includes('suspect api'), 3000);
    expect(pinger!.stats['bad-status']).toBeGreaterThan(0);
    expect(probes.some((p) => p.outcome === 'bad-status' && p.status === 503)).toBe(true);
    mode = 'ok';
    await waitFor('recovery', () => events.includes('recover api'), 3000);
    expect(monitor.status('api')).toBe('available');
  });

  it('cuts hung probes at the interval-derived deadline and suspects the peer', async () => {
    const before = events.filter((e) => e === 'suspect api').length;
    mode = 'hang';
    await waitFor('a timed-out probe', () => pinger!.stats.timeout >= 2, 3000);
    const timedOut = probes.filter((p) => p.outcome === 'timeout');
    for (const p of timedOut) expect(p.durationMs).toBeGreaterThanOrEqual(49);
    await waitFor('suspicion', () => events.filter((e) => e === 'suspect api').length > before, 3000);
    expect(monitor.status('api')).toBe('suspect');
    mode = 'ok';
    await waitFor('recovery', () => monitor.status('api') === 'available', 3000);
  });
});
