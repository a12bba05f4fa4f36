import { BulwarkError, DeadlineExceededError } from '@bulwark/core';
import { isRetryableError, retryAfterHint } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('isRetryableError()', () => {
  it('accepts Node.js network error codes', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']) {
      expect(isRetryableError(withCode(code)), code).toBe(true);
    }
  });

  it('accepts undici codes except those that mean a bad argument or an abort', () => {
    expect(isRetryableError(withCode('UND_ERR_SOCKET'))).toBe(true);
    expect(isRetryableError(withCode('UND_ERR_CONNECT_TIMEOUT'))).toBe(true);
    expect(isRetryableError(withCode('UND_ERR_HEADERS_TIMEOUT'))).toBe(true);
    expect(isRetryableError(withCode('UND_ERR_INVALID_ARG'))).toBe(false);
    expect(isRetryableError(withCode('UND_ERR_ABORTED'))).toBe(false);
  });

  it('accepts fetch’s network TypeError, by its message or its cause', () => {
    expect(isRetryableError(new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') }))).toBe(true);
    expect(isRetryableError(new TypeError('fetch failed'))).toBe(true);
    expect(isRetryableError(new TypeError('fetch failed', { cause: new Error('other side closed') }))).toBe(
      true,
    );
    expect(isRetryableError(new TypeError('fetch failed', { cause: withCode('UND_ERR_SOCKET') }))).toBe(true);
    // Permanent causes: another attempt would fail the same way.
    expect(isRetryableError(new TypeError('fetch failed', { cause: withCode('ENOTFOUND') }))).toBe(false);
    expect(isRetryableError(new TypeError('fetch failed', { cause: withCode('CERT_HAS_EXPIRED') }))).toBe(
      false,
    );
    expect(isRetryableError(new TypeError('terminated', { cause: withCode('UND_ERR_SOCKET') }))).toBe(true);
  });

  it('finds a transient code in a cause chain or an AggregateError', () => {
    expect(isRetryableError(new Error('query failed', { cause: withCode('ECONNRESET') }))).toBe(true);
    expect(isRetryableError(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]))).toBe(
      true,
    );
  });

  it('rejects programming errors', () => {
    expect(isRetryableError(new TypeError('x is not a function'))).toBe(false);
    expect(isRetryableError(new RangeError('bad length'))).toBe(false);
    expect(isRetryableError(new SyntaxError('Unexpected token'))).toBe(false);
    expect(isRetryableError(new ReferenceError('y is not defined'))).toBe(false);
  });

  it('follows an explicit retryable mark either way, and a retryAfterMs hint', () => {
    expect(isRetryableError(Object.assign(new Error('busy'), { retryable: true }))).toBe(true);
    expect(isRetryableError(Object.assign(withCode('ECONNRESET'), { retryable: false }))).toBe(false);
    expect(isRetryableError(Object.assign(new Error('later'), { retryAfterMs: 100 }))).toBe(true);
  });

  it('retries an attempt timeout but never the overall deadline', () => {
    expect(isRetryableError(new DeadlineExceededError('timeout', 100))).toBe(true);
    expect(isRetryableError(new DeadlineExceededError('deadline', 100))).toBe(false);
  });

  it('never retries an open circuit, a full bulkhead, an abort or an unknown error', () => {
    expect(isRetryableError(new BulwarkError('ERR_CIRCUIT_OPEN', 'open', { retryAfterMs: 5 }))).toBe(false);
    expect(isRetryableError(new BulwarkError('ERR_BULKHEAD_FULL', 'full', { retryAfterMs: 5 }))).toBe(false);
    expect(isRetryableError(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isRetryableError(new Error('something else'))).toBe(false);
    expect(isRetryableError('a string')).toBe(false);
    expect(isRetryableError(undefined)).toBe(false);
  });
});

describe('retryAfterHint()', () => {
  it('reads a finite retryAfterMs >= 0 and ignores anything else', () => {
    expect(retryAfterHint(Object.assign(new Error(), { retryAfterMs: 250 }))).toBe(250);
    expect(retryAfterHint(Object.assign(new Error(), { retryAfterMs: -1 }))).toBeUndefined();
    expect(
      retryAfterHint(Object.assign(new Error(), { retryAfterMs: Number.POSITIVE_INFINITY })),
    ).toBeUndefined();
    expect(retryAfterHint(Object.assign(new Error(), { retryAfterMs: '5' }))).toBeUndefined();
    expect(retryAfterHint(null)).toBeUndefined();
  });
});
