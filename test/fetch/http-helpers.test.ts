import { BulkheadRejectedError } from '@bulwark/bulkhead';
import { InvalidOptionsError } from '@bulwark/core';
import {
  discardResponse,
  isIdempotentMethod,
  isReplayableBody,
  OriginBulkheads,
  parseRetryAfter,
} from '@bulwark/fetch';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { settle, trackedResponse } from './helpers.ts';

const NOW = Date.parse('Sat, 05 Dec 2026 17:00:00 GMT');

describe('parseRetryAfter()', () => {
  it('reads delta-seconds as milliseconds', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 3 ', NOW)).toBe(3_000);
  });

  it('reads an HTTP-date as the time until it, and 0 once it has passed', () => {
    expect(parseRetryAfter('Sat, 05 Dec 2026 17:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Sat, 05 Dec 2026 16:59:00 GMT', NOW)).toBe(0);
    // The obsolete RFC 850 form is still an HTTP-date (RFC 9110 §5.6.7).
    expect(parseRetryAfter('Saturday, 05-Dec-26 17:00:10 GMT', NOW)).toBe(10_000);
  });

  it('gives undefined for a missing or malformed value', () => {
    for (const value of [null, undefined, '', '  ', '-1', '1.5', '1e3', 'soon', '0x10', 'Mon, 99 Foo 2026']) {
      expect(parseRetryAfter(value, NOW)).toBeUndefined();
    }
  });

  it('never gives a negative or non-finite wait', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 4_102_444_800_000 }), (value, now) => {
        const wait = parseRetryAfter(value, now);
        expect(wait === undefined || (wait >= 0 && Number.isFinite(wait))).toBe(true);
      }),
    );
  });

  it('round-trips any whole number of seconds in either form', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400 }), (seconds) => {
        const date = new Date(NOW + seconds * 1000).toUTCString();
        expect(parseRetryAfter(String(seconds), NOW)).toBe(seconds * 1000);
        expect(parseRetryAfter(date, NOW)).toBe(seconds * 1000);
      }),
    );
  });
});

describe('isIdempotentMethod()', () => {
  it('accepts the idempotent methods of RFC 9110 in any case, and nothing else', () => {
    for (const m of ['GET', 'head', 'Options', 'TRACE', 'PUT', 'delete'])
      expect(isIdempotentMethod(m)).toBe(true);
    for (const m of ['POST', 'patch', 'CONNECT', 'PURGE']) expect(isIdempotentMethod(m)).toBe(false);
  });
});

describe('isReplayableBody()', () => {
  it('accepts bodies that can be sent twice and refuses streams', () => {
    for (const body of [
      null,
      undefined,
      'text',
      new Uint8Array(2),
      new ArrayBuffer(1),
      new Blob(['x']),
      new FormData(),
      new URLSearchParams('a=1'),
    ]) {
      expect(isReplayableBody(body)).toBe(true);
    }
    expect(isReplayableBody(new ReadableStream())).toBe(false);
    expect(isReplayableBody((async function* () {})())).toBe(false);
  });
});

describe('discardResponse()', () => {
  it('reads a short body with a Content-Length to the end and cancels any other', async () => {
    const short = trackedResponse(503, 'abc', { 'content-length': '3' });
    const long = trackedResponse(503, 'abcdef', { 'content-length': '6' });
    const unsized = trackedResponse(503, 'abc');
    discardResponse(short.response, 5);
    discardResponse(long.response, 5);
    discardResponse(unsized.response, 5);
    await settle();
    expect(short.state).toEqual({ cancelled: false, finished: true });
    expect(long.state).toEqual({ cancelled: true, finished: false });
    expect(unsized.state).toEqual({ cancelled: true, finished: false });
  });

  it('leaves alone a response without a body or whose body is already taken', async () => {
    expect(() => discardResponse(new Response(null, { status: 204 }), 10)).not.toThrow();
    const taken = trackedResponse(200, 'abc');
    const reader = taken.response.body!.getReader();
    discardResponse(taken.response, 10);
    await settle();
    expect(taken.state.cancelled).toBe(false);
    reader.releaseLock();
  });
});

describe('OriginBulkheads', () => {
  it('refuses bad bulkhead options at construction, naming each value, with maxOrigins', () => {
    let caught: unknown;
    try {
      new OriginBulkheads({ maxConcurrent: 0, maxQueue: -1, queueTimeoutMs: -5, maxOrigins: 1.5 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    const message = (caught as Error).message;
    expect(message).toContain('OriginBulkheads');
    expect(message).toContain('maxConcurrent must be an integer >= 1, got 0');
    expect(message).toContain('maxQueue must be an integer >= 0, got -1');
    expect(message).toMatch(/queueTimeoutMs .*got -5/);
    expect(message).toContain('maxOrigins must be an integer >= 1, got 1.5');
    expect(() => new OriginBulkheads({ capacity: 3 } as never)).toThrow(/capacity/);
  });

  it('builds every bulkhead from its resolved options', () => {
    const bulkheads = new OriginBulkheads({ maxConcurrent: 2, queueTimeoutMs: 50, name: 'api' });
    const a = bulkheads.get('http://a.test');
    const b = bulkheads.get('http://b.test');
    expect(a).not.toBe(b);
    for (const bulkhead of [a, b]) {
      expect([bulkhead.limit, bulkhead.maxQueue, bulkhead.queueTimeoutMs, bulkhead.name]).toEqual([
        2,
        256,
        50,
        'api',
      ]);
    }
  });

  it('gives each origin its own bulkhead', async () => {
    const bulkheads = new OriginBulkheads({ maxConcurrent: 1, maxQueue: 0 });
    const a = bulkheads.get('http://a.test');
    expect(bulkheads.get('http://a.test')).toBe(a);
    const held = a.tryAcquire()!;
    await expect(a.execute(async () => 1)).rejects.toBeInstanceOf(BulkheadRejectedError);
    await expect(bulkheads.get('http://b.test').execute(async () => 2)).resolves.toBe(2);
    held.release();
  });

  it('drops the least recently used idle bulkhead past maxOrigins, never a busy one', () => {
    const bulkheads = new OriginBulkheads({ maxOrigins: 2, maxConcurrent: 1 });
    const busy = bulkheads.get('http://1.test');
    const permit = busy.tryAcquire()!;
    bulkheads.get('http://2.test');
    bulkheads.get('http://3.test');
    expect([...bulkheads.keys()]).toEqual(['http://1.test', 'http://3.test']);
    bulkheads.get('http://4.test');
    expect([...bulkheads.keys()]).toEqual(['http://1.test', 'http://4.test']);
    expect(bulkheads.peek('http://1.test')).toBe(busy);
    permit.release();
    bulkheads.get('http://5.test');
    expect([...bulkheads.keys()]).toEqual(['http://4.test', 'http://5.test']);
    expect(bulkheads.size).toBe(2);
  });

  it('holds one more than maxOrigins while every bulkhead is busy', () => {
    const bulkheads = new OriginBulkheads({ maxOrigins: 1, maxConcurrent: 1 });
    const permit = bulkheads.get('http://1.test').tryAcquire()!;
    bulkheads.get('http://2.test');
    expect(bulkheads.size).toBe(2);
    permit.release();
    bulkheads.get('http://3.test');
    expect([...bulkheads.keys()]).toEqual(['http://3.test']);
  });

  it('rejects invalid options with one RangeError', () => {
    let error: unknown;
    try {
      new OriginBulkheads({ maxOrigins: 0, maxConcurrent: -1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'maxOrigins',
      'maxConcurrent',
    ]);
  });
});
