import { OptionsChecker } from '@bulwark/core/authoring';
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
 * How an `Idempotency-Key` header value is read:
 * - `'structured'`: only a structured-field string (RFC 9651 §3.3.3), as the
 *   IETF draft defines the header: `Idempotency-Key: "abc123"`.
 * - `'lenient'`: that, or a bare key (`Idempotency-Key: abc123`) as Stripe's
 *   API and most client libraries send it. A value that starts with a double
 *   quote is read as a structured-field string, exactly as `'structured'`
 *   reads it, so no structured value changes meaning; any other value is the
 *   key itself, unless it holds a comma (two keys, or a repeated header).
 */
export type IdempotencyKeyFormat = 'lenient' | 'structured';

/** The format {@link parseIdempotencyKeyHeader} and `httpIdempotency()` read by default. */
export const DEFAULT_IDEMPOTENCY_KEY_FORMAT: IdempotencyKeyFormat = 'lenient';

/** Options for {@link parseIdempotencyKeyHeader}. */
export interface ParseIdempotencyKeyOptions {
  /** Which values are keys; see {@link IdempotencyKeyFormat}. Default: `'lenient'`. */
  readonly format?: IdempotencyKeyFormat | undefined;
}

/** Whether `code` is optional whitespace (SP or HTAB, RFC 9110 §5.6.3). */
function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** `;` key, at `lastIndex` (RFC 9651 §3.1.2). */
const PARAMETER_KEY = /;\x20*[a-z*][a-z0-9_\-.*]*/y;
/**
 * `=` and a bare item, at `lastIndex` (RFC 9651 §3.3): decimal, integer,
 * string, token, byte sequence, boolean, date or display string (whose
 * content is group 1).
 */
const PARAMETER_VALUE =
  /=(?:-?[0-9]{1,12}\.[0-9]{1,3}(?![0-9])|-?[0-9]{1,15}(?![0-9.])|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*|:[A-Za-z0-9+/=]*:|\?[01]|@-?[0-9]{1,15}(?![0-9.])|%"((?:[\x20\x21\x23\x24\x26-\x7e]|%[0-9a-f]{2})*)")/y;

/** Whether a display string's content, percent-decoded, is UTF-8 (RFC 9651 §4.2.10). */
function isUtf8DisplayString(content: string): boolean {
  const bytes: number[] = [];
  for (let i = 0; i < content.length; i++) {
    if (content[i] === '%') {
      bytes.push(Number.parseInt(content.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(content.charCodeAt(i));
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
    return true;
  } catch {
    return false;
  }
}

/** Whether `text` is zero or more well-formed parameters (RFC 9651 §4.2.3.2). */
function isParameters(text: string): boolean {
  let at = 0;
  while (at < text.length) {
    PARAMETER_KEY.lastIndex = at;
    if (!PARAMETER_KEY.test(text)) return false;
    at = PARAMETER_KEY.lastIndex;
    if (text.charCodeAt(at) !== 0x3d) continue;
    PARAMETER_VALUE.lastIndex = at;
    const value = PARAMETER_VALUE.exec(text);
    if (value === null) return false;
    if (value[1] !== undefined && !isUtf8DisplayString(value[1])) return false;
    at = PARAMETER_VALUE.lastIndex;
  }
  return true;
}

/**
 * Parses an `Idempotency-Key` header value into the key.
 *
 * A structured-field string (RFC 9651 §4.2.5) is read in either format, with
 * surrounding spaces allowed; parameters after it (`"k";p=1`) are checked for
 * form and ignored, as RFC 9651 lets a recipient do. With `format: 'lenient'`
 * (the default), a value that does not start with a double quote is a bare
 * key: the value itself, without the spaces and tabs around it.
 *
 * @throws InvalidIdempotencyKeyError (and nothing else) when the value is
 *   missing, not a key in `format`, empty, or longer than 255 characters.
 * @throws InvalidOptionsError (a RangeError) when `options.format` is neither format.
 */
export function parseIdempotencyKeyHeader(
  value: string | undefined,
  options?: ParseIdempotencyKeyOptions,
): string {
  const format = options?.format ?? DEFAULT_IDEMPOTENCY_KEY_FORMAT;
  if (format !== 'lenient' && format !== 'structured') {
    const check = new OptionsChecker('parseIdempotencyKeyHeader()');
    check.expect(false, 'format', format, "'lenient' or 'structured'");
    check.done();
  }
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
  if (format === 'lenient') {
    while (start < end && isOws(value.charCodeAt(start))) start++;
    while (end > start && isOws(value.charCodeAt(end - 1))) end--;
    if (start < end && value.charCodeAt(start) !== 0x22) return bareKey(value, start, end);
  } else {
    while (start < end && value.charCodeAt(start) === 0x20) start++;
    while (end > start && value.charCodeAt(end - 1) === 0x20) end--;
  }
  if (start === end) throw new InvalidIdempotencyKeyError('empty', value, 'the header value is empty');
  if (value.charCodeAt(start) !== 0x22) {
    throw new InvalidIdempotencyKeyError(
      'syntax',
      value,
      'expected a structured-field string in double quotes, e.g. "01J9Z…" (the lenient key format also reads bare keys)',
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
  if (!isParameters(value.slice(i + 1, end))) {
    throw new InvalidIdempotencyKeyError(
      'syntax',
      value,
      'after the closing quote only parameters may follow (;name or ;name=value, RFC 9651)',
    );
  }
  assertIdempotencyKey(key);
  return key;
}

/** A bare key: `value` from `start` to `end`, printable ASCII without a comma. */
function bareKey(value: string, start: number, end: number): string {
  const key = value.slice(start, end);
  if (key.includes(',')) {
    throw new InvalidIdempotencyKeyError(
      'syntax',
      value,
      'a bare key may not contain a comma (two keys, or the header sent twice); send one key',
    );
  }
  assertIdempotencyKey(key);
  return key;
}
