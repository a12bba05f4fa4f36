/**
 * The longest wait a `Retry-After` value gives: 2^31 seconds (about 68 years),
 * in milliseconds. Longer delays, and dates further away, are cut to it, as
 * HTTP caches treat an overflowing delta-seconds (RFC 9111 §1.2.2).
 */
const MAX_RETRY_AFTER_MS = 2 ** 31 * 1000;

const DAY_NAMES = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY_NAMES = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '([0-9]{2}):([0-9]{2}):([0-9]{2})';

/** delay-seconds = 1*DIGIT */
const DELAY_SECONDS = /^[0-9]+$/;
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^${DAY_NAMES}, ([0-9]{2}) ${MONTH} ([0-9]{4}) ${TIME} GMT$`);
/** obsolete RFC 850 format: `Sunday, 06-Nov-94 08:49:37 GMT` */
const RFC850_DATE = new RegExp(`^${LONG_DAY_NAMES}, ([0-9]{2})-${MONTH}-([0-9]{2}) ${TIME} GMT$`);
/** ANSI C's asctime() format: `Sun Nov  6 08:49:37 1994` */
const ASCTIME_DATE = new RegExp(`^${DAY_NAMES} ${MONTH} ([0-9]{2}| [0-9]) ${TIME} ([0-9]{4})$`);

/** Strips HTTP's optional whitespace, SP and HTAB only (RFC 9110 §5.6.3). */
function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09)) end--;
  return value.slice(start, end);
}

function daysInMonth(year: number, month: number): number {
  if (month === 1) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month]!;
}

/**
 * The instant of a date-time in UTC, or undefined when a field is out of range
 * (day 31 of a 30-day month, hour 24, ...). Second 60, a leap second, counts
 * as the first second of the next minute, so it is never early.
 */
function utcInstant(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number | undefined {
  if (day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) return undefined;
  // Date.UTC reads years 0–99 as 1900–1999; setUTCFullYear does not.
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

/** The instant an HTTP-date (RFC 9110 §5.6.7) names, or undefined when `text` is none. */
function httpDate(text: string, nowMs: number): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match !== null) {
    const [, day, month, year, hour, minute, second] = match;
    return utcInstant(+year!, MONTHS.indexOf(month!), +day!, +hour!, +minute!, +second!);
  }
  match = RFC850_DATE.exec(text);
  if (match !== null) {
    const [, day, month, yy, hour, minute, second] = match;
    // A two-digit year more than 50 years ahead is the latest past year ending
    // in those digits (RFC 9110 §5.6.7).
    const thisYear = new Date(nowMs).getUTCFullYear();
    let year = thisYear - (thisYear % 100) + +yy!;
    if (year > thisYear + 50) year -= 100;
    return utcInstant(year, MONTHS.indexOf(month!), +day!, +hour!, +minute!, +second!);
  }
  match = ASCTIME_DATE.exec(text);
  if (match !== null) {
    const [, month, day, hour, minute, second, year] = match;
    return utcInstant(+year!, MONTHS.indexOf(month!), +day!, +hour!, +minute!, +second!);
  }
  return undefined;
}

/**
 * Reads a `Retry-After` value as a wait in milliseconds, in exactly the forms
 * RFC 9110 §10.2.3 gives it:
 * - delay-seconds, one or more digits (`"120"`): that many seconds;
 * - an HTTP-date (RFC 9110 §5.6.7) in any of its three formats:
 *   IMF-fixdate (`"Sun, 06 Nov 1994 08:49:37 GMT"`), the obsolete RFC 850
 *   format (`"Sunday, 06-Nov-94 08:49:37 GMT"`) or asctime
 *   (`"Sun Nov  6 08:49:37 1994"`): the time from `nowMs` until that instant,
 *   0 when it has passed. Names are case-sensitive, as the grammar says; the
 *   day name is not checked against the date.
 *
 * Spaces and horizontal tabs around the value are ignored. Waits are cut to
 * 2^31 seconds (about 68 years), so the result is always a finite number >= 0.
 * Anything else (a sign, a fraction, a unit, another date format, two values
 * joined by a comma) gives undefined, as does a date when `nowMs` is not finite.
 *
 * `nowMs` is a wall-clock reading (milliseconds since the Unix epoch), the one
 * place bulwark reads the wall clock: the date is turned into a duration at
 * once, and only the duration is used.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = trimOws(value);
  if (DELAY_SECONDS.test(text)) {
    // More than 10 significant digits is past the cap; Number() would round (or overflow to Infinity).
    const digits = text.replace(/^0+(?=[0-9])/, '');
    return digits.length > 10 ? MAX_RETRY_AFTER_MS : Math.min(MAX_RETRY_AFTER_MS, Number(digits) * 1000);
  }
  if (!Number.isFinite(nowMs)) return undefined;
  const at = httpDate(text, nowMs);
  if (at === undefined) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - nowMs));
}
