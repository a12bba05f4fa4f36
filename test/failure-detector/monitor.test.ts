import { systemClock, VirtualClock } from '@bulwark/clock';
import { CallbackError, isBulwarkError } from '@bulwark/core';
import {
  fixedTimeout,
  HEARTBEAT_MONITOR_DEFAULTS,
  heartbeatMonitor,
  MonitorDisposedError,
  phiAccrual,
  type RecoverEvent,
  type SuspectEvent,
} from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';

function setup(options: { autoAdd?: boolean; peers?: string[] } = {}) {
  const clock = new VirtualClock();
  const monitor = heartbeatMonitor({
    clock,
    detector: () => fixedTimeout({ clock, timeoutMs: 500 }),
    checkIntervalMs: 100,
    ...options,
  });
  const suspects: SuspectEvent[] = [];
  const recoveries: RecoverEvent[] = [];
  monitor.onSuspect((e) => suspects.push(e));
  monitor.onRecover((e) => recoveries.push(e));
  return { clock, monitor, suspects, recoveries };
}

describe('heartbeatMonitor', () => {
  it('reports unknown for untracked peers and for tracked peers before their first heartbeat', () => {
    const { monitor } = setup({ peers: ['a'] });
    expect(monitor.status('a')).toBe('unknown');
    expect(monitor.status('nobody')).toBe('unknown');
    expect(monitor.heartbeat('a')).toBe(true);
    expect(monitor.status('a')).toBe('available');
  });

  it('evaluates every peer from one timer, and holds no timer without peers', () => {
    const { clock, monitor } = setup();
    expect(clock.pendingTimers).toBe(0);
    for (let i = 0; i < 100; i++) monitor.add(`peer-${i}`);
    expect(clock.pendingTimers).toBe(1);
    expect(monitor.timerActive).toBe(true);
    for (let i = 0; i < 100; i++) monitor.remove(`peer-${i}`);
    expect(clock.pendingTimers).toBe(0);
    expect(monitor.timerActive).toBe(false);
  });

  it('emits onSuspect once, at the first check after the detector suspects', async () => {
    const { clock, monitor, suspects } = setup({ peers: ['a', 'b'] });
    monitor.heartbeat('a');
    monitor.heartbeat('b');
    await clock.advance(400);
    monitor.heartbeat('b');
    await clock.advance(150); // a silent for 550 ms; suspected from 500, seen at the check at 500
    expect(monitor.status('a')).toBe('suspect');
    expect(monitor.status('b')).toBe('available');
    expect(suspects).toEqual([{ peerId: 'a', suspicion: 1, silentMs: 500 }]);
    await clock.advance(1000);
    expect(suspects.map((e) => e.peerId)).toEqual(['a', 'b']);
    expect(monitor.stats).toEqual({ peers: 2, suspected: 2, ignoredUnknown: 0 });
  });

  it('emits onRecover when a suspected peer sends a heartbeat', async () => {
    const { clock, monitor, suspects, recoveries } = setup({ peers: ['a'] });
    monitor.heartbeat('a');
    await clock.advance(1000);
    expect(suspects).toHaveLength(1);
    await clock.advance(250);
    monitor.heartbeat('a');
    expect(monitor.status('a')).toBe('available');
    expect(recoveries).toEqual([{ peerId: 'a', suspectedForMs: 750 }]);
    expect(monitor.stats.suspected).toBe(0);
    // Suspected again later: a second onSuspect.
    await clock.advance(600);
    expect(suspects).toHaveLength(2);
  });

  it('counts and ignores heartbeats from unknown peers when autoAdd is off', () => {
    const { monitor } = setup();
    expect(HEARTBEAT_MONITOR_DEFAULTS.autoAdd).toBe(false);
    expect(monitor.heartbeat('stranger')).toBe(false);
    expect(monitor.heartbeat('stranger')).toBe(false);
    expect(monitor.has('stranger')).toBe(false);
    expect(monitor.stats.ignoredUnknown).toBe(2);
    expect(monitor.status('stranger')).toBe('unknown');
  });

  it('adds unknown peers on their first heartbeat when autoAdd is on', () => {
    const { monitor, clock } = setup({ autoAdd: true });
    expect(monitor.heartbeat('new')).toBe(true);
    expect(monitor.peers()).toEqual(['new']);
    expect(monitor.status('new')).toBe('available');
    expect(clock.pendingTimers).toBe(1);
  });

  it('makes one detector per peer with the factory', async () => {
    const clock = new VirtualClock();
    const made: string[] = [];
    const monitor = heartbeatMonitor({
      clock,
      autoAdd: true,
      detector: (peerId) => {
        made.push(peerId);
        return phiAccrual({ clock });
      },
    });
    monitor.heartbeat('x');
    monitor.heartbeat('y');
    await clock.advance(1000);
    monitor.heartbeat('x');
    expect(made).toEqual(['x', 'y']);
    expect(monitor.detector('x')).not.toBe(monitor.detector('y'));
    // x's history: the bootstrap 750 and 1250, then 1000: mean 1000, so phi at the mean is log10(2).
    await clock.advance(1000);
    expect(monitor.suspicion('x')).toBeCloseTo(Math.log10(2), 9);
    expect(monitor.suspicion('y')).toBeGreaterThan(Math.log10(2));
  });

  it('refuses a detector on another clock, naming the peer', () => {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({
      clock,
      detector: () => fixedTimeout({ timeoutMs: 100, clock: systemClock }),
    });
    try {
      monitor.add('p');
      expect.unreachable();
    } catch (error) {
      expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(true);
      expect(String((error as Error).message)).toMatch(/"p" runs on another clock/);
    }
    expect(monitor.has('p')).toBe(false);
  });

  it('wraps a throwing detector factory in a CallbackError', () => {
    const clock = new VirtualClock();
    const boom = new Error('boom');
    const monitor = heartbeatMonitor({
      clock,
      detector: () => {
        throw boom;
      },
    });
    let caught: unknown;
    try {
      monitor.add('p');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CallbackError);
    expect((caught as CallbackError).code).toBe('ERR_CALLBACK_FAILED');
    expect((caught as CallbackError).callback).toBe('detector');
    expect((caught as CallbackError).cause).toBe(boom);
    expect((caught as Error).message).toBe('detector threw: boom');
    expect(monitor.has('p')).toBe(false);
  });

  it('holds nothing after dispose(), and ignores heartbeats then', async () => {
    const { clock, monitor, suspects } = setup({ peers: ['a', 'b'] });
    monitor.heartbeat('a');
    monitor.dispose();
    expect(clock.pendingTimers).toBe(0);
    expect(monitor.stats).toEqual({ peers: 0, suspected: 0, ignoredUnknown: 0 });
    expect(monitor.peers()).toEqual([]);
    expect(monitor.heartbeat('a')).toBe(false);
    expect(monitor.add('c')).toBe(false);
    expect(monitor.status('a')).toBe('unknown');
    for (const subscribe of [() => monitor.onSuspect(() => {}), () => monitor.onRecover(() => {})]) {
      let caught: unknown;
      try {
        subscribe();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(MonitorDisposedError);
      expect(isBulwarkError(caught, 'ERR_MONITOR_DISPOSED')).toBe(true);
      expect((caught as MonitorDisposedError).monitor).toBe('unnamed');
      expect((caught as Error).message).toMatch(
        /heartbeatMonitor "unnamed" is disposed: on(Suspect|Recover)\(\)/,
      );
    }
    await clock.advance(10_000);
    expect(suspects).toEqual([]);
    monitor.dispose();
    expect(monitor.disposed).toBe(true);
  });

  it('disposes through Symbol.dispose', () => {
    const { clock, monitor } = setup({ peers: ['a'] });
    monitor[Symbol.dispose]();
    expect(monitor.disposed).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps checking when a listener throws', async () => {
    const { clock, monitor, suspects } = setup({ peers: ['a', 'b'] });
    monitor.onSuspect(() => {
      throw new Error('listener bug');
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      monitor.heartbeat('a');
      monitor.heartbeat('b');
      await clock.advance(600);
      expect(suspects.map((e) => e.peerId).sort()).toEqual(['a', 'b']);
      expect(clock.pendingTimers).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.some((w) => w.includes('listener bug'))).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('lets remove() forget a suspected peer and its count', async () => {
    const { clock, monitor } = setup({ peers: ['a'] });
    monitor.heartbeat('a');
    await clock.advance(600);
    expect(monitor.stats.suspected).toBe(1);
    expect(monitor.remove('a')).toBe(true);
    expect(monitor.remove('a')).toBe(false);
    expect(monitor.stats).toEqual({ peers: 0, suspected: 0, ignoredUnknown: 0 });
  });
});
