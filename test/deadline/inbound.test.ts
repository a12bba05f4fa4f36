import { InvalidOptionsError } from '@bulwark/core';
import { InvalidDeadlineHeaderError, readInboundDeadline } from '@bulwark/deadline';
import { describe, expect, it } from 'vitest';

describe('readInboundDeadline()', () => {
  it('serves a request within the smallest budget its deadline headers carry', () => {
    const result = readInboundDeadline({
      'grpc-timeout': '2S',
      'x-request-timeout-ms': '1500',
      'x-envoy-expected-rq-timeout-ms': '900',
    });
    expect(result).toEqual({ kind: 'budget', timeoutMs: 900, header: 'x-envoy-expected-rq-timeout-ms' });
  });

  it('cuts a budget to maxTimeoutMs and uses defaultTimeoutMs when no header is present', () => {
    expect(readInboundDeadline({ 'x-request-timeout-ms': '60000' }, { maxTimeoutMs: 5_000 })).toEqual({
      kind: 'budget',
      timeoutMs: 5_000,
      header: 'x-request-timeout-ms',
    });
    expect(readInboundDeadline({}, { defaultTimeoutMs: 2_000 })).toEqual({
      kind: 'budget',
      timeoutMs: 2_000,
      header: undefined,
    });
    expect(readInboundDeadline({})).toEqual({
      kind: 'budget',
      timeoutMs: Number.POSITIVE_INFINITY,
      header: undefined,
    });
  });

  it('reports a zero budget as expired on arrival, with a 504 problem naming the header', () => {
    const result = readInboundDeadline({ 'connect-timeout-ms': '0', 'x-request-timeout-ms': '100' });
    expect(result.kind).toBe('expired');
    if (result.kind !== 'expired') return;
    expect(result.status).toBe(504);
    expect(result.header).toBe('connect-timeout-ms');
    expect(result.problem.type).toBe('urn:bulwark:deadline:expired');
    expect(result.problem.detail).toContain('connect-timeout-ms');
  });

  it('reports a malformed header as invalid, with a 400 problem naming it, instead of throwing', () => {
    const result = readInboundDeadline(new Headers({ 'grpc-timeout': '10 seconds' }));
    expect(result.kind).toBe('invalid');
    if (result.kind !== 'invalid') return;
    expect(result.status).toBe(400);
    expect(result.header).toBe('grpc-timeout');
    expect(result.error).toBeInstanceOf(InvalidDeadlineHeaderError);
    expect(result.problem).toMatchObject({
      type: 'urn:bulwark:deadline:invalid-header',
      title: 'The grpc-timeout header is malformed',
    });
    expect(result.problem.detail).toContain('"10 seconds"');
  });

  it('rejects bad options with one RangeError listing each', () => {
    let error: unknown;
    try {
      readInboundDeadline({}, { defaultTimeoutMs: 0, maxTimeoutMs: Number.NaN });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'defaultTimeoutMs',
      'maxTimeoutMs',
    ]);
  });
});
