import { VirtualClock } from '@bulwark/clock';
import {
  CallbackError,
  type ExecutionContext,
  InvalidOptionsError,
  type Operation,
  pipeline,
} from '@bulwark/core';
import { BasePolicy, withAttempt } from '@bulwark/core/authoring';
import {
  formatIdempotencyKeyHeader,
  idempotency,
  idempotencyKey,
  memoryStore,
  newIdempotencyKey,
  parseIdempotencyKeyHeader,
} from '@bulwark/idempotency';
import { constant, retry } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

/** Runs fn until it succeeds, at most `attempts` times, with no delay. */
class RetryThrice extends BasePolicy {
  constructor() {
    super(undefined);
  }
  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(withAttempt(ctx, attempt));
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
  }
}

describe('newIdempotencyKey()', () => {
  it('returns 26-character ULIDs that sort in the order they were made', () => {
    const keys = Array.from({ length: 1_000 }, () => newIdempotencyKey());
    for (const key of keys) expect(key).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...keys].sort()).toEqual(keys);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('idempotencyKey()', () => {
  it('gives every attempt of one operation the same key when placed outside a retry', async () => {
    const seen: Array<[number, string | undefined]> = [];
    const policy = pipeline(idempotencyKey(), new RetryThrice());
    const result = await policy.execute((ctx) => {
      seen.push([ctx.attempt, ctx.idempotencyKey]);
      if (ctx.attempt < 3) throw new Error('transient');
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(seen.map(([a]) => a)).toEqual([1, 2, 3]);
    expect(new Set(seen.map(([, k]) => k)).size).toBe(1);
    expect(seen[0]![1]).toMatch(/^[0-9A-Z]{26}$/);
  });

  it('gives separate operations separate keys', async () => {
    const policy = idempotencyKey();
    const a = await policy.execute((ctx) => ctx.idempotencyKey);
    const b = await policy.execute((ctx) => ctx.idempotencyKey);
    expect(a).not.toBe(b);
  });

  it('keeps a key the caller already has', async () => {
    const key = await idempotencyKey().execute((ctx) => ctx.idempotencyKey, { idempotencyKey: 'order-42' });
    expect(key).toBe('order-42');
  });

  it('uses a custom generator, and reports one that throws as a CallbackError', async () => {
    expect(await idempotencyKey({ generate: () => 'fixed' }).execute((ctx) => ctx.idempotencyKey)).toBe(
      'fixed',
    );
    const failing = idempotencyKey({
      generate: () => {
        throw new Error('no entropy');
      },
    });
    await expect(failing.execute(() => 1)).rejects.toBeInstanceOf(CallbackError);
  });

  it('rejects a generate option that is not a function', () => {
    expect(() => idempotencyKey({ generate: 'abc' as never })).toThrow(InvalidOptionsError);
  });
});

describe('idempotencyKey() with retry() and a guarded server', () => {
  it('charges once when the first response is lost and retry() sends the request again', async () => {
    const clock = new VirtualClock();
    const guard = idempotency<{ charge: number }>({ store: memoryStore({ clock }), clock });
    let charges = 0;
    let attempts = 0;
    const headers: string[] = [];
    // The "server": guarded by the key the client sent in its header.
    const server = (header: string, body: { amount: number }) =>
      guard.run(parseIdempotencyKeyHeader(header), body, () => ({ charge: ++charges }));
    const client = pipeline(idempotencyKey(), retry({ maxAttempts: 3, backoff: constant(10), clock }));
    const call = client.execute(async (ctx) => {
      attempts++;
      const header = formatIdempotencyKeyHeader(ctx.idempotencyKey!);
      headers.push(header);
      const result = await server(header, { amount: 5 });
      if (attempts === 1) throw Object.assign(new Error('connection reset'), { retryable: true });
      return result;
    });
    await clock.advance(10);
    expect(await call).toEqual({ kind: 'replayed', value: { charge: 1 } });
    expect(attempts).toBe(2);
    expect(charges).toBe(1);
    expect(new Set(headers).size).toBe(1);
  });
});
