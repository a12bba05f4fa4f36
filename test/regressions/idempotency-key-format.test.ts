// Most clients send a bare Idempotency-Key (`Idempotency-Key: abc123`, as
// Stripe's API takes it), not the structured-field string the IETF draft
// defines; strict RFC 9651 parsing answered them 400. And RFC 9651 lets any
// item carry parameters (`"k";p=1`), which were refused too. The lenient key
// format (the default) reads both forms; parameters are checked and ignored.
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { routeIdempotency } from '@bulwark/http-server';
import {
  type HttpDecision,
  httpIdempotency,
  type IdempotencyKeyFormat,
  InvalidIdempotencyKeyError,
  memoryStore,
  parseIdempotencyKeyHeader,
} from '@bulwark/idempotency';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

function outcome(value: string | undefined, format?: IdempotencyKeyFormat): string {
  try {
    return `key ${parseIdempotencyKeyHeader(value, format === undefined ? undefined : { format })}`;
  } catch (error) {
    if (error instanceof InvalidIdempotencyKeyError) return error.reason;
    throw error;
  }
}

describe('parseIdempotencyKeyHeader() key formats', () => {
  it.each([
    ['abc123', 'key abc123'],
    ['8e03978e-40d5-43e8-bc93-6894a57f9324', 'key 8e03978e-40d5-43e8-bc93-6894a57f9324'],
    [' \tabc123\t ', 'key abc123'],
    ['order 42', 'key order 42'],
    ['abc;p=1', 'key abc;p=1'],
    ['a"b', 'key a"b'],
    ['"abc123"', 'key abc123'],
    ['abc,def', 'syntax'],
    ['"a", "b"', 'syntax'],
    ['a\u0001b', 'syntax'],
    ['abc\xA0', 'syntax'],
    ['é', 'syntax'],
    ['"abc', 'syntax'],
    ['k'.repeat(256), 'too-long'],
    ['k'.repeat(255), `key ${'k'.repeat(255)}`],
    ['', 'empty'],
    [' \t ', 'empty'],
    [undefined, 'missing'],
  ] as const)('lenient (the default) reads %j as: %s', (value, expected) => {
    expect(outcome(value)).toBe(expected);
    expect(outcome(value, 'lenient')).toBe(expected);
  });

  it('structured refuses a bare key, naming the other format', () => {
    expect(outcome('abc123', 'structured')).toBe('syntax');
    expect(() => parseIdempotencyKeyHeader('abc123', { format: 'structured' })).toThrow(/lenient key format/);
    expect(outcome('"abc123"', 'structured')).toBe('key abc123');
  });

  it.each([
    '"k";a',
    '"k";a=1',
    '"k";a=-999999999999999',
    '"k";a=-1.5;b=123456789012.123',
    '"k";a="x\\"y\\\\z"',
    '"k";a=tok:en/x*',
    '"k";a=*',
    '"k";a=:AQID:',
    '"k";a=?0;b=?1',
    '"k";a=@1700000000',
    '"k";a=%"caf%c3%a9 \\ ok"',
    '"k"; a=1;  b;*c=2',
    '"k";a=1;a=2',
    '  "k";a=1  ',
  ])('reads the key of %j and ignores its parameters, in both formats', (value) => {
    expect(outcome(value, 'structured')).toBe('key k');
    expect(outcome(value, 'lenient')).toBe('key k');
  });

  it.each([
    '"k";A=1',
    '"k";1a=1',
    '"k";a=',
    '"k";a=1.',
    '"k";a=.5',
    '"k";a=1234567890123.1',
    '"k";a=1.1234',
    '"k";a=1234567890123456',
    '"k";a="unterminated',
    '"k";a=?2',
    '"k";a=%"%C3%A9"',
    '"k";a=%"%c3"',
    '"k";a=%"%zz"',
    '"k" ;a=1',
    '"k";a=1 ',
    '"k" x',
    '"k",',
    '"k"a',
  ])('refuses %j: a malformed parameter makes the whole value malformed', (value) => {
    // Trailing spaces are stripped before parsing, so '"k";a=1 ' is well-formed: check the others.
    const expected = value === '"k";a=1 ' ? 'key k' : 'syntax';
    expect(outcome(value, 'structured')).toBe(expected);
    expect(outcome(value, 'lenient')).toBe(expected);
  });

  it('reads every value the structured format accepts to the same key in the lenient format', () => {
    const printable = fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    });
    fc.assert(
      fc.property(
        fc.oneof(
          printable,
          printable.map((s) => `"${s}"`),
          fc.string({
            unit: fc.constantFrom('"', '\\', 'a', ' ', '\t', ';', '=', '1', '.', '%', ','),
            maxLength: 24,
          }),
        ),
        (value) => {
          const structured = outcome(value, 'structured');
          if (structured.startsWith('key ')) expect(outcome(value, 'lenient')).toBe(structured);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('rejects an unknown format with a typed options error naming the value', () => {
    expect(() => parseIdempotencyKeyHeader('"k"', { format: 'strict' as never })).toThrow(
      InvalidOptionsError,
    );
    expect(() => parseIdempotencyKeyHeader('"k"', { format: 'strict' as never })).toThrow(/format.*"strict"/);
  });
});

describe('httpIdempotency() key formats', () => {
  const setup = (keyFormat?: IdempotencyKeyFormat) => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock });
    return httpIdempotency({ store, clock, ...(keyFormat === undefined ? {} : { keyFormat }) });
  };
  const statusOf = (decision: HttpDecision) =>
    decision.action === 'respond' ? decision.response.status : `proceed ${decision.key}`;

  it('serves a bare key by default, and replays it to the same key sent quoted', async () => {
    const http = setup();
    expect(http.keyFormat).toBe('lenient');
    const first = await http.begin({ key: 'abc123', fingerprint: 'POST /orders {}' });
    expect(statusOf(first)).toBe('proceed abc123');
    if (first.action !== 'proceed') return;
    await first.commit({ status: 201, headers: {}, body: 'made' });
    const again = await http.begin({ key: '"abc123";v=1', fingerprint: 'POST /orders {}' });
    expect(again.action === 'respond' && again.reason).toBe('replayed');
  });

  it("answers 400 to a bare key with keyFormat: 'structured', and still reads parameters", async () => {
    const http = setup('structured');
    expect(statusOf(await http.begin({ key: 'abc123', fingerprint: 'x' }))).toBe(400);
    expect(statusOf(await http.begin({ key: '"abc123";p=1', fingerprint: 'x' }))).toBe('proceed abc123');
  });

  it('rejects an unknown keyFormat in the one options error', () => {
    expect(() => httpIdempotency({ store: memoryStore(), keyFormat: 'bare' as never })).toThrow(
      /keyFormat must be 'lenient' or 'structured', got "bare"/,
    );
  });

  it('takes keyFormat through a server route, as the Fastify and Express plugins build it', async () => {
    const message = (key: string) => ({
      headers: { 'idempotency-key': key },
      method: 'POST',
      url: '/orders',
      body: {},
    });
    const lenient = routeIdempotency('route POST /orders', { store: memoryStore() });
    const structured = routeIdempotency('route POST /orders', {
      store: memoryStore(),
      keyFormat: 'structured',
    });
    expect(statusOf(await lenient.begin({}, message('abc123')))).toBe('proceed abc123');
    expect(statusOf(await structured.begin({}, message('abc123')))).toBe(400);
    expect(() =>
      routeIdempotency('route POST /orders', { store: memoryStore(), keyFormat: 1 as never }),
    ).toThrow(/route POST \/orders.*keyFormat/s);
  });
});
