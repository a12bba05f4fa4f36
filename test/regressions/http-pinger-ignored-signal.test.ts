// A probe whose fetch ignores its abort signal used to stay in flight for ever:
// the pinger skipped every later probe, so the peer was never heard from again
// even after it recovered. The probe is now bounded by its deadline.

import { VirtualClock } from '@bulwark/clock';
import { fixedTimeout, heartbeatMonitor, httpPinger, type PingFetch } from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';

describe('httpPinger with a fetch that ignores its signal', () => {
  it('ends the probe at its deadline and keeps probing, so a recovered peer is heard again', async () => {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({ clock, detector: () => fixedTimeout({ clock, timeoutMs: 1000 }) });
    let calls = 0;
    const fetch: PingFetch = () => {
      calls++;
      // The first probe hangs and never looks at its signal; later ones answer.
      return calls === 1 ? new Promise(() => {}) : Promise.resolve({ status: 200 });
    };
    const pinger = httpPinger({
      url: 'http://hang/health',
      peerId: 'hang',
      monitor,
      fetch,
      intervalMs: 100,
      clock,
    });
    try {
      await clock.advance(100);
      expect(pinger.stats.timeout).toBe(1);
      expect(pinger.probing).toBe(false);
      await clock.advance(300);
      expect(calls).toBeGreaterThanOrEqual(3);
      expect(pinger.stats.ok).toBeGreaterThanOrEqual(2);
      expect(monitor.status('hang')).toBe('available');
    } finally {
      pinger.dispose();
      monitor.dispose();
    }
  });
});
