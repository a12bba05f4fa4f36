/** Delta-seconds: one or more digits, nothing else (RFC 9110 §10.2.3). */
const DELTA_SECONDS = /^[0-9]+$/;

/**
 * Reads a `Retry-After` value as a wait in milliseconds, in either of its two
 * forms (RFC 9110 §10.2.3):
 * - delta-seconds (`"120"`): that many seconds;
 * - an HTTP-date (`"Wed, 21 Oct 2026 07:28:00 GMT"`): the time from `nowMs`
 *   until that instant, 0 when it has passed.
 *
 * `nowMs` is a wall-clock reading (milliseconds since the Unix epoch), the one
 * place bulwark reads the wall clock: the date is turned into a duration at
 * once, and only the duration is used. Returns undefined when the value is
 * missing or is neither form.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text.length === 0) return undefined;
  if (DELTA_SECONDS.test(text)) {
    const seconds = Number(text);
    return Number.isFinite(seconds) ? seconds * 1000 : undefined;
  }
  // An HTTP-date has a letter (the day or month name) and a space; a lone
  // number that is not delta-seconds (negative, fractional) is malformed.
  if (!/[a-z]/i.test(text) || !text.includes(' ')) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at) || !Number.isFinite(nowMs)) return undefined;
  return Math.max(0, at - nowMs);
}
