// Scopes are arbitrary strings (a principal from a token, a tenant name): a lone
// surrogate in one must neither make begin() reject with URIError nor let two
// scopes share records. httpIdempotency().begin() rejects only as documented.
import { isBulwarkError } from '@bulwark/core';
import {
  type HttpResponse,
  httpIdempotency,
  type IdempotencyStore,
  idempotency,
  memoryStore,
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

const created: HttpResponse = { status: 201, headers: { 'content-type': 'text/plain' }, body: 'made' };

/** A memory store that records the keys it was asked about. */
function recordingStore(): IdempotencyStore & { keys: string[] } {
  const inner = memoryStore();
  const keys: string[] = [];
  return {
    keys,
    begin: (request) => {
      keys.push(request.key);
      return inner.begin(request);
    },
    complete: (key, token, payload, ttlMs) => inner.complete(key, token, payload, ttlMs),
    release: (key, token) => inner.release(key, token),
    renew: (key, token, retainMs) => inner.renew(key, token, retainMs),
  };
}

describe('idempotency scopes with any string', () => {
  it('begins under a scope with a lone surrogate, without URIError', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    for (const scope of ['\uD800', 'a\uDFFFb', '\uDC00\uD800', 'user-\uD83D']) {
      const decision = await http.begin({ key: '"k"', fingerprint: 'b', scope });
      expect(decision.action).toBe('proceed');
      if (decision.action === 'proceed') expect(await decision.commit(created)).toBe('stored');
      const replay = await http.begin({ key: '"k"', fingerprint: 'b', scope });
      expect(replay).toMatchObject({ action: 'respond', reason: 'replayed' });
    }
    const guard = idempotency<string>({ store: memoryStore() });
    expect(await guard.run('k', 'r', () => 'v', { scope: '\uD800' })).toMatchObject({ kind: 'executed' });
  });

  it('keeps the stored key of a well-formed scope, and gives lone surrogates keys no other scope has', async () => {
    const store = recordingStore();
    const guard = idempotency<string>({ store });
    for (const scope of ['alice', 'ü:x', '\uD83D\uDE00', '\uD83D', '\uDE00', '\uFFFD', '%ED%A0%BD']) {
      await guard.run('k', 'r', () => 'v', { scope });
    }
    expect(store.keys).toEqual([
      'alice:k',
      '%C3%BC%3Ax:k',
      '%F0%9F%98%80:k',
      '%ED%A0%BD:k',
      '%ED%B8%80:k',
      '%EF%BF%BD:k',
      '%25ED%25A0%25BD:k',
    ]);
  });

  // Each run checks a batch of cases: asynchronous runs are costly, cases are cheap.
  it('never shares records between two different scopes (property, lone surrogates included)', async () => {
    const store = recordingStore();
    const guard = idempotency<string>({ store });
    const scope = codeUnits(8);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(scope, scope), { minLength: 1, maxLength: 40 }), async (pairs) => {
        for (const [a, b] of pairs) {
          if (a === b) continue;
          const key = `k${run++}`;
          await guard.run(key, 'r', () => 'a', { scope: a });
          const second = await guard.run(key, 'r', () => 'b', { scope: b });
          expect(second.kind).toBe('executed');
          expect(/^[\x21-\x39\x3b-\x7e]*:k[0-9]+$/.test(store.keys.at(-1)!)).toBe(true);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('httpIdempotency().begin resolves for any scope, key and fingerprint string (property)', async () => {
    const http = httpIdempotency({ store: memoryStore(), required: false });
    const text = codeUnits(12);
    const request = fc.record({
      key: fc.option(
        fc.oneof(
          fc.constantFrom(`"k"`, ` "order-1" `),
          text,
          text.map((t) => `"${t}"`),
        ),
        { nil: undefined },
      ),
      fingerprint: text,
      scope: fc.option(text, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 40 }), async (requests) => {
        for (const r of requests) {
          const decision = await http.begin(r).catch((error: unknown) => {
            throw new Error(`begin rejected: ${String(error)}`);
          });
          expect(['respond', 'proceed']).toContain(decision.action);
          if (decision.action === 'proceed') await decision.release();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('httpIdempotency() commit rejects a malformed response with a TypeError and frees the key', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    const decision = await http.begin({ key: '"k"', fingerprint: 'b' });
    if (decision.action !== 'proceed') throw new Error('expected proceed');
    await expect(decision.commit({ status: 200, headers: null, body: '' } as never)).rejects.toBeInstanceOf(
      TypeError,
    );
    expect((await http.begin({ key: '"k"', fingerprint: 'b' })).action).toBe('proceed');
  });

  it('httpIdempotency().begin refuses a stored record that is not an HTTP response with a CallbackError', async () => {
    const inner = memoryStore();
    const guard = idempotency<unknown>({ store: inner });
    await guard.run('k', 'b', () => null, { scope: '' }); // a record another writer left: [null]
    const error = await httpIdempotency({ store: inner })
      .begin({ key: '"k"', fingerprint: 'b' })
      .catch((e: unknown) => e);
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(
      /codec\.decode threw: the stored record for key "k" is not an HTTP response/,
    );
  });
});
