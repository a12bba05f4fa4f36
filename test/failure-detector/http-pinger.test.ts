import { VirtualClock } from '@bulwark/clock';
import {
  fixedTimeout,
  heartbeatMonitor,
  httpPinger,
  type PingFetch,
  type ProbeEvent,
} from '@bulwark/failure-detector';
import { afterEach, describe, expect, it } from 'vitest';

const open: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.dispose();
});

function setup(respond: (call: number, signal: AbortSignal) => Promise<{ status: number }>) {
  const clock = new VirtualClock();
  const monitor = heartbeatMonitor({ clock, detector: () => fixedTimeout({ clock, timeoutMs: 350 }) });
  const calls: Array<{ url: string; method: string; at: number }> = [];
  const fetch: PingFetch = (url, init) => {
    calls.push({ url, method: init.method, at: clock.now() });
    return respond(calls.length, init.signal);
  };
  open.push(monitor);
  return { clock, monitor, calls, fetch };
}

describe('httpPinger', () => {
  it('probes now and every interval, and reports each 2xx as a heartbeat', async () => {
    const { clock, monitor, calls, fetch } = setup(async () => ({ status: 204 }));
    const pinger = httpPinger({
      url: 'http://db.internal:8080/health',
      monitor,
      fetch,
      intervalMs: 100,
      clock,
    });
    open.push(pinger);
    expect(pinger.peerId).toBe('http://db.internal:8080');
    expect(monitor.has(pinger.peerId)).toBe(true);
    await clock.advance(350);
    expect(calls.map((c) => c.at)).toEqual([0, 100, 200, 300]);
    expect(calls[0]).toMatchObject({ url: 'http://db.internal:8080/health', method: 'GET' });
    expect(monitor.status(pinger.peerId)).toBe('available');
    expect(monitor.detector(pinger.peerId)?.lastHeartbeatAt).toBe(300);
    expect(pinger.stats).toEqual({ ok: 4, 'bad-status': 0, timeout: 0, error: 0 });
  });

  it('does not count other statuses or errors as heartbeats, so the peer becomes suspected', async () => {
    const { clock, monitor, fetch } = setup(async (call) => {
      if (call <= 2) return { status: 200 };
      if (call % 2 === 0) throw new Error('ECONNREFUSED');
      return { status: 503 };
    });
    const pinger = httpPinger({
      url: 'http://a/health',
      peerId: 'a',
      monitor,
      fetch,
      intervalMs: 100,
      clock,
    });
    open.push(pinger);
    const probes: ProbeEvent[] = [];
    pinger.onProbe((e) => probes.push(e));
    await clock.advance(1000);
    expect(monitor.status('a')).toBe('suspect');
    expect(monitor.detector('a')?.lastHeartbeatAt).toBe(100);
    expect(pinger.stats.ok).toBe(2);
    expect(pinger.stats['bad-status']).toBeGreaterThan(0);
    expect(pinger.stats.error).toBeGreaterThan(0);
    expect(probes.find((p) => p.outcome === 'bad-status')).toMatchObject({ status: 503, peerId: 'a' });
    expect(probes.find((p) => p.outcome === 'error')?.error).toBeInstanceOf(Error);
  });

  it('gives each probe a deadline of the interval, aborting it, so probes never overlap', async () => {
    let active = 0;
    let maxActive = 0;
    const { clock, monitor, calls, fetch } = setup(
      (_call, signal) =>
        new Promise((_resolve, reject) => {
          active++;
          maxActive = Math.max(maxActive, active);
          signal.addEventListener('abort', () => {
            active--;
            reject(signal.reason);
          });
        }),
    );
    const pinger = httpPinger({
      url: 'http://slow/health',
      peerId: 'slow',
      monitor,
      fetch,
      intervalMs: 200,
      clock,
    });
    open.push(pinger);
    const probes: ProbeEvent[] = [];
    pinger.onProbe((e) => probes.push(e));
    expect(pinger.timeoutMs).toBe(200);
    await clock.advance(199);
    expect(pinger.probing).toBe(true);
    expect(probes).toEqual([]);
    await clock.advance(1);
    expect(probes[0]).toMatchObject({ outcome: 'timeout', durationMs: 200, peerId: 'slow' });
    await clock.advance(1000);
    expect(calls.map((c) => c.at)).toEqual([0, 200, 400, 600, 800, 1000, 1200]);
    expect(maxActive).toBe(1);
    expect(pinger.stats.timeout).toBe(6);
    expect(monitor.status('slow')).toBe('unknown');
  });

  it('takes a shorter probe deadline, and stops probing on dispose', async () => {
    const { clock, monitor, calls, fetch } = setup(
      (_call, signal) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    const pinger = httpPinger({ url: 'http://x/', monitor, fetch, intervalMs: 500, timeoutMs: 50, clock });
    await clock.advance(60);
    expect(pinger.stats.timeout).toBe(1);
    pinger.dispose();
    await clock.advance(5000);
    expect(calls).toHaveLength(1);
    expect(clock.pendingTimers).toBe(1); // only the monitor's own check timer
  });
});
