// Shared by the Redis and PostgreSQL corrupt-record tests: a guard over a store
// whose record for "order-7" was completed without a payload must fail closed
// with a store error naming the key, never running fn or calling the codec.
import { isBulwarkError } from '@bulwark/core';
import { type IdempotencyStore, idempotency, StoreUnavailableError } from '@bulwark/idempotency';
import { expect } from 'vitest';

export async function expectCorruptRecordFailsClosed(
  store: IdempotencyStore,
  message: RegExp,
): Promise<void> {
  let ran = false;
  let decoded = false;
  const guard = idempotency<string>({
    store,
    codec: {
      encode: (value) => JSON.stringify(value),
      decode: (text) => {
        decoded = true;
        return JSON.parse(text);
      },
    },
  });
  const error = await guard
    .run('order-7', 'request', () => {
      ran = true;
      return 'charged';
    })
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(false);
  expect((error as StoreUnavailableError).operation).toBe('begin');
  expect((error as Error).message).toMatch(message);
  expect(ran).toBe(false);
  expect(decoded).toBe(false);
}
