import { VirtualClock } from '@bulwark/clock';
import {
  chenDetector,
  fixedTimeout,
  heartbeatMonitor,
  httpPinger,
  phiAccrual,
  twoWindowDetector,
  udpHeartbeatReceiver,
  udpHeartbeatSender,
} from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';

function violations(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RangeError);
    expect((error as { code?: string }).code).toBe('ERR_INVALID_OPTIONS');
    return (error as { violations: Array<{ option: string }> }).violations.map((v) => v.option);
  }
  throw new Error('expected an InvalidOptionsError');
}

describe('bad options', () => {
  it('phiAccrual lists every violation with its value in one RangeError', () => {
    const make = () =>
      phiAccrual({
        threshold: 0,
        maxSamples: 1,
        minStdDeviationMs: -1,
        acceptablePauseMs: -5,
        firstHeartbeatEstimateMs: Number.NaN,
      });
    expect(violations(make)).toEqual([
      'threshold',
      'maxSamples',
      'minStdDeviationMs',
      'acceptablePauseMs',
      'firstHeartbeatEstimateMs',
    ]);
    expect(make).toThrow(/threshold must be a finite number > 0, got 0/);
    expect(make).toThrow(/maxSamples must be an integer >= 2, got 1/);
    expect(make).toThrow(/acceptablePauseMs must be a finite number >= 0, got -5/);
    expect(make).toThrow(/firstHeartbeatEstimateMs must be a finite number > 0, got NaN/);
  });

  it('chenDetector rejects a window below 2 and a negative margin together', () => {
    const make = () => chenDetector({ windowSize: 1, safetyMarginMs: -10, intervalMs: 0 });
    expect(violations(make)).toEqual(['windowSize', 'safetyMarginMs', 'intervalMs']);
    expect(make).toThrow(/safetyMarginMs must be a finite number >= 0, got -10/);
    expect(violations(() => chenDetector({} as never))).toEqual(['safetyMarginMs']);
  });

  it('twoWindowDetector rejects bad windows, a short window longer than the long one, and a missing margin', () => {
    expect(
      violations(() =>
        twoWindowDetector({ safetyMarginMs: undefined as never, longWindowSize: 0, intervalMs: 0 }),
      ),
    ).toEqual(['longWindowSize', 'safetyMarginMs', 'intervalMs']);
    expect(
      violations(() => twoWindowDetector({ safetyMarginMs: 1, longWindowSize: 5, shortWindowSize: 6 })),
    ).toEqual(['shortWindowSize']);
    expect(() => twoWindowDetector({ safetyMarginMs: 1, longWindowSize: 5, shortWindowSize: 6 })).toThrow(
      /shortWindowSize must be at most longWindowSize \(5\), got 6/,
    );
    expect(violations(() => chenDetector({ safetyMarginMs: 1, reanchor: 'no' as never }))).toEqual([
      'reanchor',
    ]);
    expect(
      violations(() =>
        chenDetector({ safetyMarginMs: 1, reanchor: 1 as never, coalesceBursts: 'yes' as never }),
      ),
    ).toEqual(['reanchor', 'coalesceBursts']);
    expect(violations(() => twoWindowDetector({ safetyMarginMs: 1, coalesceBursts: 0 as never }))).toEqual([
      'coalesceBursts',
    ]);
    expect(violations(() => phiAccrual({ coalesceBursts: null as never }))).toEqual(['coalesceBursts']);
  });

  it('fixedTimeout requires a positive timeout', () => {
    expect(violations(() => fixedTimeout({ timeoutMs: 0 }))).toEqual(['timeoutMs']);
    expect(violations(() => fixedTimeout({ timeoutMs: Number.POSITIVE_INFINITY }))).toEqual(['timeoutMs']);
  });

  it('heartbeatMonitor lists a missing detector, a bad interval and autoAdd together', () => {
    expect(
      violations(() =>
        heartbeatMonitor({ detector: undefined as never, checkIntervalMs: 0, autoAdd: 'yes' as never }),
      ),
    ).toEqual(['detector', 'checkIntervalMs', 'autoAdd']);
  });

  it('the UDP sender and receiver reject bad ports, ids, keys and intervals', () => {
    expect(
      violations(() =>
        udpHeartbeatSender({
          peerId: '',
          targets: [{ port: 70000 }],
          intervalMs: -1,
          key: 'short',
          wallClock: 5 as never,
        }),
      ),
    ).toEqual(['peerId', 'targets[0].port', 'intervalMs', 'key', 'wallClock']);
    expect(violations(() => udpHeartbeatSender({ peerId: 'a', targets: [] }))).toEqual(['targets']);
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({ clock, detector: () => fixedTimeout({ clock, timeoutMs: 1 }) });
    expect(
      violations(() =>
        udpHeartbeatReceiver({
          monitor,
          port: -1,
          key: new Uint8Array(4),
          host: 5 as never,
          maxRetiredPeers: 1.5,
        }),
      ),
    ).toEqual(['port', 'host', 'key', 'maxRetiredPeers']);
    // A key is never echoed in the message.
    expect(() => udpHeartbeatSender({ peerId: 'a', targets: [{ port: 1 }], key: 'secret' })).toThrow(
      /got "<redacted>"/,
    );
  });

  it('httpPinger rejects a deadline longer than the interval, a bad URL and method', () => {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({ clock, detector: () => fixedTimeout({ clock, timeoutMs: 1 }) });
    expect(
      violations(() =>
        httpPinger({
          url: 'ftp://x',
          monitor,
          intervalMs: 100,
          timeoutMs: 150,
          method: 'POST' as never,
          clock,
        }),
      ),
    ).toEqual(['url', 'timeoutMs', 'method']);
    expect(() => httpPinger({ url: 'http://x', monitor, intervalMs: 100, timeoutMs: 150, clock })).toThrow(
      /timeoutMs must be at most intervalMs \(100\), got 150/,
    );
  });
});
