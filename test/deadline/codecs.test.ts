import {
  DEADLINE_HEADERS,
  deadlineHeaders,
  decodeGrpcTimeout,
  decodeTimeoutMs,
  encodeGrpcTimeout,
  encodeTimeoutMs,
  InvalidDeadlineHeaderError,
  readDeadlineHeaders,
} from '@bulwark/deadline';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const durations = fc.oneof(
  fc.double({ min: 0, max: 1e3, noNaN: true }),
  fc.double({ min: 0, max: 1e9, noNaN: true }),
  fc.double({ min: 0, max: 3.6e14, noNaN: true }),
  fc.integer({ min: 0, max: 2 ** 40 }),
);

describe('grpc-timeout', () => {
  it('encodes in the finest unit that fits in 8 digits, rounding up', () => {
    expect(encodeGrpcTimeout(0)).toBe('0n');
    expect(encodeGrpcTimeout(0.0000001)).toBe('1n');
    expect(encodeGrpcTimeout(1.5)).toBe('1500000n');
    expect(encodeGrpcTimeout(99.999999)).toBe('99999999n');
    expect(encodeGrpcTimeout(150)).toBe('150000u');
    expect(encodeGrpcTimeout(100_000.0001)).toBe('100001m');
    expect(encodeGrpcTimeout(200_000_000)).toBe('200000S');
    expect(encodeGrpcTimeout(1e20)).toBe('99999999H');
  });

  it('decodes every unit', () => {
    expect(decodeGrpcTimeout('2H')).toBe(7_200_000);
    expect(decodeGrpcTimeout('3M')).toBe(180_000);
    expect(decodeGrpcTimeout('1S')).toBe(1_000);
    expect(decodeGrpcTimeout('250m')).toBe(250);
    expect(decodeGrpcTimeout('1500u')).toBe(1.5);
    expect(decodeGrpcTimeout('2000000n')).toBe(2);
  });

  it('never gives the peer less time than it was asked to send', () => {
    fc.assert(
      fc.property(durations, (ms) => {
        expect(decodeGrpcTimeout(encodeGrpcTimeout(ms))).toBeGreaterThanOrEqual(
          Math.min(ms, 99_999_999 * 3_600_000),
        );
      }),
      { numRuns: 2_000 },
    );
  });

  it('rejects malformed values with a typed error naming the header and value', () => {
    for (const bad of ['', '5', 'S', '123456789S', '1.5S', '-1S', '10s', '10 S', '1e3m', '١٢m']) {
      let error: unknown;
      try {
        decodeGrpcTimeout(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidDeadlineHeaderError);
      expect(error).toMatchObject({
        code: 'ERR_INVALID_DEADLINE_HEADER',
        header: 'grpc-timeout',
        value: bad,
      });
    }
  });
});

describe('integer-millisecond headers', () => {
  it('round-trips with rounding up', () => {
    fc.assert(
      fc.property(durations, (ms) => {
        expect(decodeTimeoutMs(encodeTimeoutMs(ms))).toBeGreaterThanOrEqual(ms);
      }),
      { numRuns: 2_000 },
    );
    expect(encodeTimeoutMs(12.1)).toBe('13');
    expect(encodeTimeoutMs(-4)).toBe('0');
  });

  it('writes at most what it reads back, capping huge budgets at 15 digits', () => {
    const cap = 999_999_999_999_999;
    fc.assert(
      fc.property(
        fc.oneof(
          durations,
          fc.double({ min: 0, noNaN: true }),
          fc.constantFrom(1e15, 2 ** 53, Number.MAX_VALUE, Number.POSITIVE_INFINITY),
        ),
        (ms) => {
          const text = encodeTimeoutMs(ms);
          expect(text).toMatch(/^[0-9]{1,15}$/);
          expect(decodeTimeoutMs(text)).toBeGreaterThanOrEqual(Math.min(ms, cap));
          const grpc = encodeGrpcTimeout(ms);
          expect(grpc).toMatch(/^[0-9]{1,8}[HMSmun]$/);
          expect(decodeGrpcTimeout(grpc)).toBeGreaterThanOrEqual(Math.min(ms, 99_999_999 * 3_600_000));
        },
      ),
      { numRuns: 2_000 },
    );
    expect(encodeTimeoutMs(Number.POSITIVE_INFINITY)).toBe(String(cap));
  });

  it('reads what deadlineHeaders writes, for any budget and margin', () => {
    fc.assert(
      fc.property(durations, fc.double({ min: 0, max: 1e4, noNaN: true }), (remaining, margin) => {
        const headers = deadlineHeaders(remaining, { safetyMarginMs: margin, grpc: true });
        const inbound = readDeadlineHeaders(headers);
        // Both headers are sent; the smaller wins, and grpc-timeout caps at 99,999,999 hours.
        const sent = Math.min(Math.max(0, remaining - margin), 99_999_999 * 3_600_000);
        expect(inbound).toBeDefined();
        expect(inbound!.timeoutMs).toBeGreaterThanOrEqual(sent);
        expect(inbound!.timeoutMs).toBeLessThan(sent + 1);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('decoders', () => {
  it('throw nothing but InvalidDeadlineHeaderError, whatever the input', () => {
    const decoders = [
      decodeGrpcTimeout,
      (v: string) => decodeTimeoutMs(v),
      (v: string) => readDeadlineHeaders({ 'grpc-timeout': v, 'x-request-timeout-ms': v }),
    ];
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[0-9]{0,12}[HMSmun]?$/)),
        (input) => {
          for (const decode of decoders) {
            try {
              const value = decode(input);
              if (typeof value === 'number') expect(value).toBeGreaterThanOrEqual(0);
            } catch (error) {
              expect(error).toBeInstanceOf(InvalidDeadlineHeaderError);
            }
          }
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe('readDeadlineHeaders', () => {
  it('takes the smallest budget among every header present', () => {
    expect(
      readDeadlineHeaders({
        'grpc-timeout': '2S',
        'x-request-timeout-ms': '1500',
        'connect-timeout-ms': '900',
        'x-envoy-expected-rq-timeout-ms': '1200',
      }),
    ).toEqual({ timeoutMs: 900, header: 'connect-timeout-ms' });
    expect(readDeadlineHeaders(new Headers({ 'X-Request-Timeout-Ms': '40', 'grpc-timeout': '50m' }))).toEqual(
      {
        timeoutMs: 40,
        header: 'x-request-timeout-ms',
      },
    );
  });

  it('reads repeated and comma-joined values, and mixed-case record keys', () => {
    expect(readDeadlineHeaders({ 'X-Request-Timeout-Ms': ['300', '200'] })?.timeoutMs).toBe(200);
    expect(
      readDeadlineHeaders(
        new Headers([
          ['x-request-timeout-ms', '300'],
          ['x-request-timeout-ms', '250'],
        ]),
      )?.timeoutMs,
    ).toBe(250);
  });

  it('returns undefined when no deadline header is present', () => {
    expect(readDeadlineHeaders({ host: 'example.test' })).toBeUndefined();
  });

  it('names the malformed header and its value', () => {
    expect(() => readDeadlineHeaders({ 'x-envoy-expected-rq-timeout-ms': 'soon' })).toThrow(
      'invalid x-envoy-expected-rq-timeout-ms header "soon": expected an integer number of milliseconds (1 to 15 digits)',
    );
    expect(() => readDeadlineHeaders({ 'connect-timeout-ms': '12345678901' })).toThrow(/connect-timeout-ms/);
  });
});

describe('deadlineHeaders', () => {
  it('sends the remaining budget minus the safety margin, never an absolute time', () => {
    expect(deadlineHeaders(1_000.2, { safetyMarginMs: 50, grpc: true })).toEqual({
      [DEADLINE_HEADERS.requestTimeoutMs]: '951',
      [DEADLINE_HEADERS.grpc]: '950200u',
    });
    expect(deadlineHeaders(10, { safetyMarginMs: 50 })).toEqual({ 'x-request-timeout-ms': '0' });
    expect(deadlineHeaders(Number.POSITIVE_INFINITY)).toEqual({});
  });

  it('rejects a bad margin or budget', () => {
    expect(() => deadlineHeaders(Number.NaN)).toThrow(/remainingMs must be a number, got NaN/);
    expect(() => deadlineHeaders(5, { safetyMarginMs: -1 })).toThrow(
      /safetyMarginMs must be a finite number >= 0, got -1/,
    );
  });
});
