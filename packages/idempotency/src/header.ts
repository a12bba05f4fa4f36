import { InvalidIdempotencyKeyError } from './errors.ts';

/** The longest key bulwark accepts, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** The request header that carries the key. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

/** The response header a replayed response carries. */
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';

/**
 * The response header (value `true`) of the 409 that answers a request whose
 * key another request holds while its handler still runs. It tells that 409
 * apart from any other: a client may poll it after its `Retry-After` for the
 * stored response. `@bulwark/fetch` does.
 */
export const IDEMPOTENCY_IN_PROGRESS_HEADER = 'Idempotency-In-Progress';

function isPrintable(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

/**
 * Checks that `key` can be used as an idempotency key: 1 to 255 printable
 * ASCII characters (0x20–0x7E).
 * @throws InvalidIdempotencyKeyError otherwise.
 */
export function assertIdempotencyKey(key: string): void {
  if (typeof key !== 'string') {
    throw new InvalidIdempotencyKeyError('syntax', String(key), 'a key must be a string');
  }
  if (key.length === 0) throw new InvalidIdempotencyKeyError('empty', key, 'a key must not be empty');
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new InvalidIdempotencyKeyError(
      'too-long',
      key,
      `a key has at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters, this one has ${key.length}`,
    );
  }
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (!isPrintable(code)) {
      throw new InvalidIdempotencyKeyError(
        'syntax',
        key,
        `character ${i} (U+${code.toString(16).padStart(4, '0')}) is not printable ASCII`,
      );
    }
  }
}

/**
 * The value of an `Idempotency-Key` header for `key`: a structured-field string
 * (RFC 9651 §3.3.3), in double quotes with `\` and `"` escaped.
 *
 * ```ts
 * formatIdempotencyKeyHeader('01JD…') // '"01JD…"'
 * ```
 * @throws InvalidIdempotencyKeyError when the key is empty, too long or not printable ASCII.
 */
export function formatIdempotencyKeyHeader(key: string): string {
  assertIdempotencyKey(key);
  let out = '"';
  for (const ch of key) out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
  return `${out}"`;
}

/**
 * Parses an `Idempotency-Key` header value into the key: a structured-field
 * string (RFC 9651 §4.2.5), with surrounding spaces allowed. Parameters after
 * the string are not accepted.
 *
 * @throws InvalidIdempotencyKeyError (and nothing else) when the value is
 *   missing, not a well-formed sf-string, empty, or longer than 255 characters.
 */
export function parseIdempotencyKeyHeader(value: string | undefined): string {
  if (value === undefined) {
    throw new InvalidIdempotencyKeyError(
      'missing',
      undefined,
      `the ${IDEMPOTENCY_KEY_HEADER} header is missing`,
    );
  }
  if (typeof value !== 'string') {
    throw new InvalidIdempotencyKeyError('syntax', String(value), 'a header value must be a string');
  }
  let start = 0;
  let end = value.length;
  while (start < end && value.charCodeAt(start) === 0x20) start++;
  while (end > start && value.charCodeAt(end - 1) === 0x20) end--;
  if (value.charCodeAt(start) !== 0x22) {
    throw new InvalidIdempotencyKeyError(
      'syntax',
      value,
      'expected a structured-field string in double quotes, e.g. "01J9Z…"',
    );
  }
  let key = '';
  let i = start + 1;
  for (;;) {
    if (i >= end)
      throw new InvalidIdempotencyKeyError('syntax', value, 'the closing double quote is missing');
    const code = value.charCodeAt(i);
    if (code === 0x5c) {
      const next = value.charCodeAt(i + 1);
      if (i + 1 >= end || (next !== 0x22 && next !== 0x5c)) {
        throw new InvalidIdempotencyKeyError('syntax', value, 'a backslash may only escape " or \\');
      }
      key += value[i + 1];
      i += 2;
      continue;
    }
    if (code === 0x22) break;
    if (!isPrintable(code)) {
      throw new InvalidIdempotencyKeyError(
        'syntax',
        value,
        `character ${i} (U+${code.toString(16).padStart(4, '0')}) is not printable ASCII`,
      );
    }
    key += value[i];
    i++;
  }
  if (i + 1 !== end) {
    throw new InvalidIdempotencyKeyError('syntax', value, 'unexpected characters after the closing quote');
  }
  assertIdempotencyKey(key);
  return key;
}
