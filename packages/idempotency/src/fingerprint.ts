import { hash } from 'node:crypto';
import { UnfingerprintableError } from './errors.ts';

/** How deep {@link canonicalJson} follows nested arrays and objects before it refuses the input. */
export const MAX_FINGERPRINT_DEPTH = 1_000;

/** The text {@link canonicalJson} gives a top-level `undefined`; never valid JSON, so never a JSON value's text. */
const UNDEFINED_TEXT = 'undefined';

/**
 * The canonical JSON text of `input`, which {@link defaultFingerprint} hashes.
 * It is the text `JSON.stringify` gives, with every object's members in
 * ascending order of their names (UTF-16 code units), so inputs whose
 * `JSON.stringify` texts differ (once keys are sorted) have different canonical
 * texts, and objects that differ only in member order have the same one:
 * - `toJSON()` is called as `JSON.stringify` calls it (a `Date` becomes its ISO
 *   string, a `URL` its href, a `Buffer` `{ type: 'Buffer', data: [...] }`);
 * - an object member whose value is `undefined` is left out, as in JSON;
 *   `undefined` at the top level has its own text, `undefined`;
 * - `-0` is written `0`, as `JSON.stringify` (and RFC 8785) write it;
 * - a member named `__proto__` (as `JSON.parse` creates it) is a member like any other.
 *
 * Values without a faithful JSON form are refused rather than written as
 * something else: functions, symbols, bigints without `toJSON`, `NaN` and
 * ±Infinity (JSON would write `null`), `undefined` or a hole in an array (JSON
 * would write `null`), an invalid `Date` (JSON would write `null`), symbol-keyed
 * members, cycles, nesting deeper than {@link MAX_FINGERPRINT_DEPTH}, and any
 * object that is not an array or a plain object and has no `toJSON` (`Map`,
 * `Set`, class instances, typed arrays other than `Buffer`, streams: JSON would
 * write most of them as `{}`).
 *
 * @throws UnfingerprintableError (`ERR_UNFINGERPRINTABLE`) naming the path of the
 *   first value refused, such as `$.items[2].at`.
 */
export function canonicalJson(input: unknown): string {
  return new Canonicaliser().value(input, '', '$', 0) ?? UNDEFINED_TEXT;
}

/**
 * The default fingerprint: SHA-256 (hex) of the {@link canonicalJson} text of
 * the input. Inputs whose canonical JSON differs get different fingerprints
 * (short of a SHA-256 collision); `{ a, b }` and `{ b, a }` get the same one. A
 * string input is hashed as the JSON string it is (`"abc"` with its quotes).
 *
 * @throws UnfingerprintableError (`ERR_UNFINGERPRINTABLE`) when the input holds a
 *   value with no faithful JSON form; see {@link canonicalJson}.
 */
export function defaultFingerprint(input: unknown): string {
  return hash('sha256', canonicalJson(input), 'hex');
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function memberPath(parent: string, name: string): string {
  return IDENTIFIER.test(name) ? `${parent}.${name}` : `${parent}[${JSON.stringify(name)}]`;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  // Object.prototype of this realm or another one (a vm context, a worker's structured clone).
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

class Canonicaliser {
  /** The objects on the path from the root to the value being written, to find cycles. */
  readonly #ancestors = new Set<object>();

  /** The canonical text of `raw`, or undefined when it has none (it is, or its toJSON gives, undefined). */
  value(raw: unknown, name: string, path: string, depth: number): string | undefined {
    let value = raw;
    if ((typeof value === 'object' && value !== null) || typeof value === 'bigint') {
      if (value instanceof Date && Number.isNaN(value.getTime())) {
        throw new UnfingerprintableError(path, raw, 'invalid-date');
      }
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') value = toJSON.call(value, name);
    }
    switch (typeof value) {
      case 'undefined':
        return undefined;
      case 'string':
        return JSON.stringify(value);
      case 'number':
        if (!Number.isFinite(value)) throw new UnfingerprintableError(path, value, 'non-finite-number');
        return JSON.stringify(value);
      case 'boolean':
        return value ? 'true' : 'false';
      case 'object':
        return value === null ? 'null' : this.#object(value, path, depth);
      default:
        // function, symbol, bigint
        throw new UnfingerprintableError(path, value, typeof value as 'function' | 'symbol' | 'bigint');
    }
  }

  #object(value: object, path: string, depth: number): string {
    if (depth >= MAX_FINGERPRINT_DEPTH) throw new UnfingerprintableError(path, value, 'too-deep');
    if (this.#ancestors.has(value)) throw new UnfingerprintableError(path, value, 'cycle');
    const isArray = Array.isArray(value);
    if (!isArray && !isPlainObject(value))
      throw new UnfingerprintableError(path, value, 'unsupported-object');
    this.#ancestors.add(value);
    let text: string;
    if (isArray) {
      const array = value as readonly unknown[];
      text = '[';
      for (let i = 0; i < array.length; i++) {
        const at = `${path}[${i}]`;
        const element = i in array ? this.value(array[i], String(i), at, depth + 1) : undefined;
        // JSON would write null for it, the same as for a null element.
        if (element === undefined) throw new UnfingerprintableError(at, array[i], 'undefined-element');
        text += i === 0 ? element : `,${element}`;
      }
      text += ']';
    } else {
      for (const symbol of Object.getOwnPropertySymbols(value)) {
        if (Object.prototype.propertyIsEnumerable.call(value, symbol)) {
          throw new UnfingerprintableError(`${path}[${String(symbol)}]`, symbol, 'symbol-key');
        }
      }
      const record = value as Record<string, unknown>;
      text = '{';
      for (const name of Object.keys(value).sort()) {
        const member = this.value(record[name], name, memberPath(path, name), depth + 1);
        // An undefined member is left out, as JSON leaves it out.
        if (member === undefined) continue;
        text += `${text.length === 1 ? '' : ','}${JSON.stringify(name)}:${member}`;
      }
      text += '}';
    }
    this.#ancestors.delete(value);
    return text;
  }
}
