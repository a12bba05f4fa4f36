import { isBulwarkError } from '@bulwark/core';
import {
  formatIdempotencyKeyHeader,
  InvalidIdempotencyKeyError,
  parseIdempotencyKeyHeader,
} from '@bulwark/idempotency';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

function reasonOf(value: string | undefined, format: 'lenient' | 'structured' = 'structured'): string {
  try {
    parseIdempotencyKeyHeader(value, { format });
  } catch (error) {
    if (error instanceof InvalidIdempotencyKeyError) return error.reason;
    throw error;
  }
  return 'ok';
}

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
});

describe('Idempotency-Key header', () => {
  it('formats a key as a structured-field string, escaping quotes and backslashes', () => {
    expect(formatIdempotencyKeyHeader('01JD8X')).toBe('"01JD8X"');
    expect(formatIdempotencyKeyHeader('a"b\\c')).toBe('"a\\"b\\\\c"');
  });

  it('parses a quoted key, unescaping, and ignores surrounding spaces', () => {
    expect(parseIdempotencyKeyHeader('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe(
      '8e03978e-40d5-43e8-bc93-6894a57f9324',
    );
    expect(parseIdempotencyKeyHeader('  "a\\"b\\\\c" ')).toBe('a"b\\c');
  });

  it('rejects a missing, empty, overlong or unquoted key with the typed error and a reason', () => {
    expect(reasonOf(undefined)).toBe('missing');
    expect(reasonOf('""')).toBe('empty');
    expect(reasonOf(`"${'k'.repeat(256)}"`)).toBe('too-long');
    expect(reasonOf(`"${'k'.repeat(255)}"`)).toBe('ok');
    expect(reasonOf('abc')).toBe('syntax');
    expect(reasonOf('"abc')).toBe('syntax');
    expect(reasonOf('"a\\nb"')).toBe('syntax');
    expect(reasonOf('"a"b"')).toBe('syntax');
    expect(reasonOf('"a";P=1')).toBe('syntax');
    expect(reasonOf('"tab\there"')).toBe('syntax');
    expect(reasonOf('"é"')).toBe('syntax');
  });

  it('refuses to format a key that cannot be sent', () => {
    expect(() => formatIdempotencyKeyHeader('')).toThrow(InvalidIdempotencyKeyError);
    expect(() => formatIdempotencyKeyHeader('line\nbreak')).toThrow(/not printable ASCII/);
  });

  it('round-trips every printable ASCII key of 1 to 255 characters', () => {
    fc.assert(
      fc.property(
        printable.filter((s) => s.length > 0 && s.length <= 255),
        (key) => {
          expect(parseIdempotencyKeyHeader(formatIdempotencyKeyHeader(key))).toBe(key);
        },
      ),
    );
  });

  it('throws nothing but InvalidIdempotencyKeyError, whatever the input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          printable.map((s) => `"${s}"`),
          printable.map((s) => ` "${s}`),
          fc.string({ unit: fc.constantFrom('"', '\\', 'a', ' ', '\t', ';'), maxLength: 20 }),
        ),
        (value) => {
          let key: string;
          try {
            key = parseIdempotencyKeyHeader(value);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidIdempotencyKeyError);
            expect(isBulwarkError(error, 'ERR_INVALID_IDEMPOTENCY_KEY')).toBe(true);
            return;
          }
          expect(key.length).toBeGreaterThanOrEqual(1);
          expect(key.length).toBeLessThanOrEqual(255);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
