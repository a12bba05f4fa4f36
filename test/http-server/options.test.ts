import { systemClock, VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { BULWARK_SERVER_DEFAULTS, bulwarkHttp, resolveServerOptions } from '@bulwark/http-server';
import { describe, expect, it } from 'vitest';
import { recordingBulkhead } from './support.ts';

function thrown(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error).toBeInstanceOf(RangeError);
    return error as InvalidOptionsError;
  }
  throw new Error('expected an InvalidOptionsError');
}

describe('resolveServerOptions()', () => {
  it('fills in the documented defaults and freezes the result', () => {
    const resolved = resolveServerOptions(undefined, 'test()');
    expect(resolved).toEqual({
      bulkhead: undefined,
      retryAfterSeconds: 1,
      defaultTimeoutMs: Number.POSITIVE_INFINITY,
      maxTimeoutMs: Number.POSITIVE_INFINITY,
      clock: systemClock,
    });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(BULWARK_SERVER_DEFAULTS).toEqual({
      retryAfterSeconds: 1,
      defaultTimeoutMs: Number.POSITIVE_INFINITY,
      maxTimeoutMs: Number.POSITIVE_INFINITY,
    });
    expect(Object.isFrozen(BULWARK_SERVER_DEFAULTS)).toBe(true);
  });

  it('keeps the values given', () => {
    const clock = new VirtualClock();
    const { policy } = recordingBulkhead();
    const resolved = resolveServerOptions(
      { bulkhead: policy, retryAfterSeconds: 0, defaultTimeoutMs: 250, maxTimeoutMs: 1000, clock },
      'test()',
    );
    expect(resolved).toEqual({
      bulkhead: policy,
      retryAfterSeconds: 0,
      defaultTimeoutMs: 250,
      maxTimeoutMs: 1000,
      clock,
    });
  });

  it('lists every bad option, with its value, in one error named after the caller', () => {
    const error = thrown(() =>
      resolveServerOptions(
        {
          bulkhead: {} as never,
          retryAfterSeconds: 1.5,
          defaultTimeoutMs: 0,
          maxTimeoutMs: -1,
          clock: { now: () => 0 } as never,
        },
        'myAdapter()',
      ),
    );
    expect(error.message).toContain('myAdapter()');
    expect(error.violations.map((v) => [v.option, v.value])).toEqual([
      ['bulkhead', {}],
      ['retryAfterSeconds', 1.5],
      ['defaultTimeoutMs', 0],
      ['maxTimeoutMs', -1],
      ['clock', expect.objectContaining({})],
    ]);
  });
});

describe('bulwarkHttp() options', () => {
  it('checks the handler and onError together with the server options', () => {
    const error = thrown(() =>
      bulwarkHttp(undefined as never, { retryAfterSeconds: -1, onError: 5 as never }),
    );
    expect(error.message).toContain('bulwarkHttp()');
    expect(error.violations.map((v) => v.option)).toEqual(['handler', 'retryAfterSeconds', 'onError']);
  });

  it('accepts a handler alone', () => {
    expect(typeof bulwarkHttp(() => undefined)).toBe('function');
  });
});
