import { circuitBreaker } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { fixedTimeout, heartbeatMonitor, PeerSuspectedError, suspicionGate } from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';

function setup() {
  const clock = new VirtualClock();
  const monitor = heartbeatMonitor({
    clock,
    peers: ['db-1'],
    detector: () => fixedTimeout({ clock, timeoutMs: 1000 }),
  });
  return { clock, monitor };
}

describe('suspicionGate', () => {
  it('lets calls through while the peer is available or not heard from yet', async () => {
    const { monitor } = setup();
    const gate = suspicionGate(monitor, 'db-1');
    expect(await gate.execute(() => 'unknown is let through')).toBe('unknown is let through');
    monitor.heartbeat('db-1');
    expect(gate.admits).toBe(true);
    expect(await gate.execute(() => 42)).toBe(42);
  });

  it('refuses calls with ERR_PEER_SUSPECTED while the peer is suspected, without calling', async () => {
    const { clock, monitor } = setup();
    const gate = suspicionGate(monitor, 'db-1');
    monitor.heartbeat('db-1');
    await clock.advance(1500);
    let called = false;
    const error = await gate
      .execute(() => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(error).toBeInstanceOf(PeerSuspectedError);
    expect(isBulwarkError(error, 'ERR_PEER_SUSPECTED')).toBe(true);
    const suspected = error as PeerSuspectedError;
    expect(suspected.peerId).toBe('db-1');
    expect(suspected.suspicion).toBe(1.5);
    expect(suspected.message).toMatch(/peer "db-1" is suspected .*no heartbeat for 1500 ms/);
    monitor.heartbeat('db-1');
    expect(await gate.execute(() => 'back')).toBe('back');
  });

  it('composes in front of a circuit breaker: refused calls never reach the breaker', async () => {
    const { clock, monitor } = setup();
    const breaker = circuitBreaker({ clock });
    const policy = pipeline(suspicionGate(monitor, 'db-1'), breaker);
    monitor.heartbeat('db-1');
    expect(await policy.execute(() => 'ok')).toBe('ok');
    await clock.advance(2000);
    for (let i = 0; i < 10; i++) {
      await expect(policy.execute(() => 'never')).rejects.toMatchObject({ code: 'ERR_PEER_SUSPECTED' });
    }
    // The refusals were not failures of the dependency: the breaker is still closed.
    expect(breaker.state).toBe('closed');
  });

  it('takes the monitor clock and rejects a missing monitor or peer id', () => {
    const { clock, monitor } = setup();
    expect(suspicionGate(monitor, 'db-1').clock).toBe(clock);
    expect(() => suspicionGate(undefined as never, 'x')).toThrow(TypeError);
    expect(() => suspicionGate(monitor, 3 as never)).toThrow(/peerId must be a string/);
  });
});
