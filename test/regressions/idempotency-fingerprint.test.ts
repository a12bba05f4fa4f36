// The default fingerprint must tell apart every two requests whose JSON differs,
// and refuse (never silently flatten) values that have no faithful JSON form:
// a reused key with a different request is refused with `mismatch`, never replayed.
import { isBulwarkError } from '@bulwark/core';
import {
  canonicalJson,
  defaultFingerprint,
  idempotency,
  MAX_FINGERPRINT_DEPTH,
  memoryStore,
  UnfingerprintableError,
} from '@bulwark/idempotency';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** Strings of any UTF-16 code units: lone surrogates, pairs, separators. */
function codeUnits(maxLength: number): fc.Arbitrary<string> {
  const unit = fc.oneof(
    fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
    fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uD83D\uDE00', '\uFFFD', ':', '%', '"'),
  );
  return fc.string({ unit, maxLength });
}

/** Runs `first` then `second` under one key; returns what the second request got. */
async function reuse(first: unknown, second: unknown): Promise<string> {
  const guard = idempotency<string>({ store: memoryStore() });
  await guard.run('k', first, () => 'first');
  return (await guard.run('k', second, () => 'second')).kind;
}

function refusal(input: unknown): UnfingerprintableError {
  try {
    defaultFingerprint(input);
  } catch (error) {
    if (error instanceof UnfingerprintableError) return error;
    throw error;
  }
  throw new Error(`expected ${String(input)} to be refused`);
}

/** Structural equality of JSON data: objects by their members in any order, -0 equal to 0. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const rb = b as Record<string, unknown>;
  const ra = a as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(ra[k], rb[k]));
}

/** `value` rebuilt with every object's members in reverse order (`__proto__` members kept as members). */
function reversed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversed);
  if (typeof value !== 'object' || value === null) return value;
  const out = {};
  for (const k of Object.keys(value).reverse()) {
    Object.defineProperty(out, k, {
      value: reversed((value as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** JSON data, with keys and strings that include lone surrogates and `__proto__`. */
const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -0, 1, -1, 0.5, 1e21, ''),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    codeUnits(6),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(
        fc.tuple(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'a', 'b'), codeUnits(4)), tie('value')),
        { maxLength: 4 },
      )
      // JSON.parse makes `__proto__` an own member; build objects the same way.
      .map((entries) =>
        JSON.parse(
          `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`,
        ),
      ),
  ),
})).value;

describe('the default fingerprint', () => {
  it('replays nothing for a reused key with a different Date, URL, Map, Set or __proto__ member', async () => {
    expect(await reuse({ at: new Date(0) }, { at: new Date(1) })).toBe('mismatch');
    expect(await reuse({ to: new URL('https://a.example/') }, { to: new URL('https://b.example/') })).toBe(
      'mismatch',
    );
    expect(await reuse(JSON.parse('{"__proto__":{"x":1}}'), JSON.parse('{"__proto__":{"x":2}}'))).toBe(
      'mismatch',
    );
    expect(await reuse(JSON.parse('{"__proto__":1}'), {})).toBe('mismatch');
    // Maps and Sets have no faithful JSON form: refused, never flattened to {}.
    const guard = idempotency<string>({ store: memoryStore() });
    await expect(guard.run('k', { m: new Map([['a', 1]]) }, () => 'v')).rejects.toBeInstanceOf(
      UnfingerprintableError,
    );
    await expect(guard.run('k', { s: new Set([1]) }, () => 'v')).rejects.toBeInstanceOf(
      UnfingerprintableError,
    );
    // A Date is its JSON (the ISO string), as JSON.stringify writes it.
    expect(await reuse({ at: new Date(0) }, { at: '1970-01-01T00:00:00.000Z' })).toBe('replayed');
  });

  it('tells apart strings that differ only in lone surrogates, and a string from the JSON it holds', async () => {
    expect(await reuse('\uD800', '\uD801')).toBe('mismatch');
    expect(await reuse({ s: '\uDC00' }, { s: '\uFFFD' })).toBe('mismatch');
    expect(await reuse('{"a":1}', { a: 1 })).toBe('mismatch');
    expect(await reuse('null', null)).toBe('mismatch');
  });

  it('refuses values without a faithful JSON form with a typed error naming the path', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    class Order {
      readonly id: number;
      constructor(id: number) {
        this.id = id;
      }
    }
    const cases: Array<[unknown, string, string]> = [
      [{ f: () => 1 }, '$.f', 'function'],
      [[Symbol('s')], '$[0]', 'symbol'],
      [{ [Symbol('k')]: 1 }, '$[Symbol(k)]', 'symbol-key'],
      [{ n: 1n }, '$.n', 'bigint'],
      [{ a: [1, Number.NaN] }, '$.a[1]', 'non-finite-number'],
      [{ a: Number.POSITIVE_INFINITY }, '$.a', 'non-finite-number'],
      [[1, undefined], '$[1]', 'undefined-element'],
      // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
      [[1, , 3], '$[1]', 'undefined-element'],
      [{ at: new Date(Number.NaN) }, '$.at', 'invalid-date'],
      [{ 'a b': { c: new Map() } }, '$["a b"].c', 'unsupported-object'],
      [{ s: new Set() }, '$.s', 'unsupported-object'],
      [{ o: new Order(1) }, '$.o', 'unsupported-object'],
      [{ u: new Uint8Array([1]) }, '$.u', 'unsupported-object'],
      [cycle, '$.self', 'cycle'],
      [Number.NaN, '$', 'non-finite-number'],
    ];
    for (const [input, path, reason] of cases) {
      const error = refusal(input);
      expect(isBulwarkError(error, 'ERR_UNFINGERPRINTABLE')).toBe(true);
      expect({ path: error.path, reason: error.reason }).toEqual({ path, reason });
      expect(error.message).toContain(path);
    }
    expect(refusal({ o: new Order(1) }).message).toMatch(/cannot fingerprint a Order at \$\.o/);
  });

  it('refuses nesting deeper than MAX_FINGERPRINT_DEPTH instead of overflowing the stack', () => {
    const deep = JSON.parse(
      `${'['.repeat(MAX_FINGERPRINT_DEPTH + 1)}${']'.repeat(MAX_FINGERPRINT_DEPTH + 1)}`,
    );
    expect(refusal(deep).reason).toBe('too-deep');
    const fine = JSON.parse(`${'['.repeat(MAX_FINGERPRINT_DEPTH)}${']'.repeat(MAX_FINGERPRINT_DEPTH)}`);
    expect(defaultFingerprint(fine)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('follows JSON for undefined members, toJSON, -0, shared references and buffers', () => {
    expect(canonicalJson({ b: 1, a: undefined, c: { toJSON: () => undefined } })).toBe('{"b":1}');
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(undefined)).toBe('undefined');
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
    expect(canonicalJson(Buffer.from('hi'))).toBe('{"data":[104,105],"type":"Buffer"}');
    expect(canonicalJson({ z: new URL('https://a.example/x') })).toBe('{"z":"https://a.example/x"}');
  });

  it('keeps the fingerprint of plain JSON objects it always gave (sorted keys, JSON text)', () => {
    // Records written before this contract keep matching their retries.
    expect(canonicalJson({ method: 'POST', url: '/o', body: { b: [1, 'x'], a: null } })).toBe(
      '{"body":{"a":null,"b":[1,"x"]},"method":"POST","url":"/o"}',
    );
  });

  it('gives distinct fingerprints to JSON data that differs, the same to data that does not (property)', () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        const same = defaultFingerprint(a) === defaultFingerprint(b);
        expect(same).toBe(jsonEqual(a, b));
      }),
      { numRuns: 2_000 },
    );
  });

  it('ignores the order of object members (property)', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(defaultFingerprint(reversed(value))).toBe(defaultFingerprint(value));
      }),
      { numRuns: 1_000 },
    );
  });

  it('either writes what JSON.stringify writes or refuses with UnfingerprintableError, for any value (property)', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withBoxedValues: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withObjectString: true,
          withSparseArray: true,
          withTypedArray: true,
        }),
        (value) => {
          let text: string;
          try {
            text = canonicalJson(value);
          } catch (error) {
            expect(error).toBeInstanceOf(UnfingerprintableError);
            return;
          }
          if (value === undefined) return;
          expect(jsonEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)))).toBe(true);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
