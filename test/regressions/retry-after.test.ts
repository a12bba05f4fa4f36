// Retry-After used to go through Date.parse, which reads almost anything as a
// date: `x 5`, `Mon 1` and `---.E --6` came out as dates long past, a wait of
// 0 ms, so retries went out with no backoff. And 306 to 308 digits of
// delay-seconds gave Infinity, which made the call throw ERR_CALLBACK_FAILED.
// Only RFC 9110 §10.2.3 counts: delay-seconds or an HTTP-date in its three formats.
import { VirtualClock } from '@bulwark/clock';
import { createFetch, parseRetryAfter } from '@bulwark/fetch';
import { constant } from '@bulwark/retry';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fakeFetch } from '../fetch/helpers.ts';

const NOW = Date.UTC(2026, 11, 5, 17, 0, 0); // Sat, 05 Dec 2026 17:00:00 GMT
const CAP_MS = 2 ** 31 * 1000;

describe('parseRetryAfter() reads exactly RFC 9110', () => {
  it.each([
    ['0', 0],
    ['120', 120_000],
    ['000007', 7_000],
    [' \t3\t ', 3_000],
    ['2147483648', CAP_MS],
    ['2147483649', CAP_MS],
    ['9'.repeat(307), CAP_MS],
    ['9'.repeat(400), CAP_MS],
    [`${'0'.repeat(300)}5`, 5_000],
    // IMF-fixdate
    ['Sat, 05 Dec 2026 17:00:30 GMT', 30_000],
    ['Sat, 05 Dec 2026 16:59:00 GMT', 0],
    ['Sun, 06 Nov 1994 08:49:37 GMT', 0],
    ['Mon, 29 Feb 2028 00:00:00 GMT', Date.UTC(2028, 1, 29) - NOW],
    ['Fri, 31 Dec 9999 23:59:59 GMT', CAP_MS],
    // A leap second (second 60) reads as the next minute's start, as POSIX time has it.
    ['Sat, 05 Dec 2026 17:00:60 GMT', 60_000],
    // The obsolete RFC 850 format; a two-digit year more than 50 years ahead is in the past.
    ['Saturday, 05-Dec-26 17:00:10 GMT', 10_000],
    ['Sunday, 06-Nov-94 08:49:37 GMT', 0],
    ['Thursday, 01-Jan-70 00:01:00 GMT', Date.UTC(2070, 0, 1, 0, 1) - NOW],
    // asctime, with its space-padded day
    ['Sat Dec  5 17:00:20 2026', 20_000],
    ['Sat Dec 05 17:00:20 2026', 20_000],
  ] as const)('reads %j as %d ms', (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });

  it.each([
    'x 5',
    'Mon 1',
    '---.E --6',
    '',
    ' \t ',
    '-1',
    '+5',
    '1.5',
    '1e3',
    '5s',
    '0x10',
    '5\xA0',
    '\xA05',
    '\v5',
    'soon',
    '1, 2',
    'Sat, 05 Dec 2026 17:00:30 UTC',
    'Sat, 05 Dec 2026 17:00:30 +0000',
    'sat, 05 Dec 2026 17:00:30 GMT',
    'Sat, 05 dec 2026 17:00:30 GMT',
    'Sat, 5 Dec 2026 17:00:30 GMT',
    'Sat,  05 Dec 2026 17:00:30 GMT',
    'Sat, 05 Dec 26 17:00:30 GMT',
    'Sat, 05 Dec 2026 17:00 GMT',
    'Sat, 05 Dec 2026 24:00:00 GMT',
    'Sat, 05 Dec 2026 17:60:00 GMT',
    'Sat, 05 Dec 2026 17:00:61 GMT',
    'Mon, 31 Apr 2026 00:00:00 GMT',
    'Sun, 29 Feb 2026 00:00:00 GMT',
    'Wed, 00 Dec 2026 17:00:30 GMT',
    'Sat, 05 Dec 2026 17:00:30 GMT, Sat, 05 Dec 2026 17:00:30 GMT',
    'Saturday, 05 Dec 2026 17:00:30 GMT',
    'Sat, 05-Dec-26 17:00:10 GMT',
    'Saturday, 05-Dec-2026 17:00:10 GMT',
    'Sat Dec 5 17:00:20 2026',
    'Sat Dec  5 17:00:20 2026 GMT',
    '2026-12-05T17:00:30Z',
    '12/05/2026',
    'Dec 5, 2026',
  ])('gives undefined for %j', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it('gives undefined for a date when the wall clock reading is not finite, but still reads delay-seconds', () => {
    expect(parseRetryAfter('Sat, 05 Dec 2026 17:00:30 GMT', Number.NaN)).toBeUndefined();
    expect(parseRetryAfter('30', Number.NaN)).toBe(30_000);
  });
});

/** Strings near the grammar: digits, day and month names, separators, signs and exponents. */
const nearlyRetryAfter = fc
  .array(
    fc.oneof(
      fc.constantFrom('Mon', 'Sunday', 'Dec', 'GMT', ', ', ' ', '-', ':', '.', 'E', 'e', '+', '\t', '\xA0'),
      fc.stringMatching(/^[0-9]{1,400}$/),
      fc.string({ maxLength: 4 }),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(''));

describe('parseRetryAfter() on any input', () => {
  it('never throws and never gives NaN, Infinity or a negative wait', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), nearlyRetryAfter, fc.stringMatching(/^[0-9]{300,320}$/)),
        fc.oneof(fc.integer({ min: 0, max: 253_402_300_799_000 }), fc.constantFrom(Number.NaN, -1e15)),
        (value, now) => {
          const wait = parseRetryAfter(value, now);
          expect(wait === undefined || (Number.isFinite(wait) && wait >= 0 && wait <= CAP_MS)).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('reads every instant of years 1970 to 9999 back from its IMF-fixdate, never early', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 253_402_300_799 }),
        fc.integer({ min: 0, max: 4_102_444_800 }),
        (at, now) => {
          const date = new Date(at * 1000).toUTCString();
          expect(parseRetryAfter(date, now * 1000)).toBe(Math.min(CAP_MS, Math.max(0, (at - now) * 1000)));
        },
      ),
    );
  });
});

describe('createFetch() and a malformed Retry-After', () => {
  it('backs off as usual when a retryable answer carries garbage instead of a Retry-After', async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch((_, attempt) =>
      attempt === 1
        ? new Response('busy', { status: 503, headers: { 'retry-after': 'x 5' } })
        : new Response('ok'),
    );
    const fetch = createFetch({ clock, fetch: fake.fetch, backoff: constant(500) });
    const call = fetch('http://a.test/');
    await clock.advance(499);
    expect(fake.seen).toHaveLength(1);
    await clock.advance(1);
    expect(fake.seen).toHaveLength(2);
    expect((await call).status).toBe(200);
  });

  it('does not fail the call when delay-seconds has hundreds of digits: the wait is too long to honour', async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch(
      () => new Response('busy', { status: 503, headers: { 'retry-after': '9'.repeat(307) } }),
    );
    // Even with no ceiling of its own on Retry-After, the wait is finite, and longer than the deadline.
    const fetch = createFetch({
      clock,
      fetch: fake.fetch,
      backoff: constant(100),
      maxRetryAfterMs: Number.POSITIVE_INFINITY,
    });
    const outcome = await fetch('http://a.test/').then(
      (response) => response.status,
      (error: { code?: string }) => error.code,
    );
    expect(outcome).not.toBe('ERR_CALLBACK_FAILED');
    expect(fake.seen).toHaveLength(1);
  });
});
