import { VirtualClock } from '@bulwark/clock';
import type { ExecutionContext } from '@bulwark/core';
import {
  DATABASE_CLIENT_DEFAULTS,
  InvalidOptionsError,
  isBulwarkError,
  isDatabaseFailure,
  isSafeDatabaseRetry,
  presets,
} from 'bulwark';
import { describe, expect, it } from 'vitest';

/** An error shaped as node-postgres raises it: `code` is the SQLSTATE. */
const pgError = (code: string) => Object.assign(new Error(`database error ${code}`), { code });
const socketError = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

const hang = (ctx: ExecutionContext) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

async function settle<T>(clock: VirtualClock, promise: Promise<T>) {
  const result = promise.then(
    (value) => ({ value, error: undefined as unknown, at: clock.now() }),
    (error: unknown) => ({ value: undefined, error, at: clock.now() }),
  );
  await clock.runAll();
  return result;
}

describe('presets.databaseClient()', () => {
  it('retries a serialization failure, which the database rolled back, and succeeds', async () => {
    const clock = new VirtualClock();
    const db = presets.databaseClient({ clock, random: () => 0.5 });
    let calls = 0;
    const { value } = await settle(
      clock,
      db.execute(() => {
        calls++;
        if (calls === 1) throw pgError('40001');
        return 'rows';
      }),
    );
    expect(value).toBe('rows');
    expect(calls).toBe(2);
  });

  it('does not retry an error after which the statement may have run, or an error in the query', async () => {
    for (const error of [socketError('ECONNRESET'), pgError('23505'), pgError('42601')]) {
      const clock = new VirtualClock();
      const db = presets.databaseClient({ clock });
      let calls = 0;
      const { error: thrown } = await settle(
        clock,
        db.execute(() => {
          calls++;
          throw error;
        }),
      );
      expect(thrown).toBe(error);
      expect(calls).toBe(1);
    }
  });

  it('ends a hanging query at the attempt timeout and does not run it again', async () => {
    const clock = new VirtualClock();
    const db = presets.databaseClient({ clock, attemptTimeoutMs: 300 });
    let calls = 0;
    const { error, at } = await settle(
      clock,
      db.execute((ctx) => {
        calls++;
        return hang(ctx);
      }),
    );
    expect(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(at).toBe(300);
    expect(calls).toBe(1);
  });

  it('opens its breaker when the database is unwell, but not for errors in the queries themselves', async () => {
    // The calls fail at once, so the virtual clock stands still and every call
    // falls in one window of the failure-rate trip.
    const clock = new VirtualClock();
    const db = presets.databaseClient({ clock, maxAttempts: 1 });
    const fail = (code: string) =>
      db.execute(() => {
        throw pgError(code);
      });
    for (let i = 0; i < 40; i++) await expect(fail('23505')).rejects.toThrow('23505');
    expect(db.breaker.state).toBe('closed');
    for (let i = 0; i < 40; i++) await expect(fail('57P01')).rejects.toThrow('57P01'); // admin_shutdown
    expect(db.breaker.state).toBe('open');
    expect(clock.now()).toBe(0);
    const refused = await db.execute(() => 'never called').catch((error: unknown) => error);
    expect(isBulwarkError(refused, 'ERR_CIRCUIT_OPEN')).toBe(true);
  });

  it('lets at most maxConcurrent queries run at once and queues the rest', async () => {
    const clock = new VirtualClock();
    const db = presets.databaseClient({ clock, maxConcurrent: 2, maxQueue: 10 });
    let running = 0;
    let peak = 0;
    const query = async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 10));
      running--;
      return 'ok';
    };
    const calls = Array.from({ length: 6 }, () => db.execute(query));
    await clock.runAll();
    expect(await Promise.all(calls)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(peak).toBe(2);
    expect(db.bulkhead.active).toBe(0);
  });

  it('rejects bad options with one RangeError that lists each of them with its value', () => {
    let caught: unknown;
    try {
      presets.databaseClient({
        maxAttempts: 0,
        maxConcurrent: 1.5,
        failureRateThreshold: 2,
        deadlineMs: -1,
        backoff: 5 as never,
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RangeError);
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    const message = (caught as Error).message;
    expect(message).toContain('maxAttempts must be an integer >= 1, got 0');
    expect(message).toContain('maxConcurrent must be an integer >= 1, got 1.5');
    expect(message).toContain('failureRateThreshold');
    expect(message).toContain('deadlineMs');
    expect(message).toContain('backoff must be a backoff from @bulwark/retry');
    expect((caught as InvalidOptionsError).violations).toHaveLength(5);
  });

  it('has the documented defaults and freezes its resolved options', () => {
    expect(DATABASE_CLIENT_DEFAULTS).toEqual({
      name: 'database',
      deadlineMs: 5_000,
      attemptTimeoutMs: 2_000,
      maxAttempts: 2,
      backoff: { initialMs: 50, maxMs: 1_000 },
      maxConcurrent: 10,
      maxQueue: 100,
      queueTimeoutMs: 1_000,
      failureRateThreshold: 0.5,
      minimumCalls: 20,
      failureWindowMs: 10_000,
      openMs: 5_000,
    });
    const db = presets.databaseClient();
    expect(db.options.deadlineMs).toBe(5_000);
    expect(db.options.maxConcurrent).toBe(10);
    expect(db.options.minimumCalls).toBe(20);
    expect(Object.isFrozen(db.options)).toBe(true);
    expect(Object.isFrozen(DATABASE_CLIENT_DEFAULTS)).toBe(true);
  });

  it('waits between attempts by its backoff, 50 ms at most for the first retry by default', async () => {
    const clock = new VirtualClock();
    const db = presets.databaseClient({ clock, random: () => 0.999 });
    const starts: number[] = [];
    const done = db.execute(() => {
      starts.push(clock.now());
      if (starts.length === 1) throw pgError('40P01');
      return 'ok';
    });
    await clock.runAll();
    expect(await done).toBe('ok');
    expect(starts[1]! - starts[0]!).toBeGreaterThan(49);
    expect(starts[1]! - starts[0]!).toBeLessThanOrEqual(50);
  });

  it('judges the breaker over minimumCalls and failureWindowMs when given', async () => {
    const clock = new VirtualClock();
    const db = presets.databaseClient({ clock, maxAttempts: 1, minimumCalls: 4, failureWindowMs: 1_000 });
    const fail = () =>
      db.execute(() => {
        throw pgError('08006');
      });
    for (let i = 0; i < 3; i++) await expect(fail()).rejects.toThrow('08006');
    expect(db.breaker.state).toBe('closed');
    await expect(fail()).rejects.toThrow('08006');
    expect(db.breaker.state).toBe('open');
  });
});

describe('database classifiers', () => {
  it('retry only errors after which the statement surely did not run', () => {
    expect(isSafeDatabaseRetry({ ok: false, error: pgError('40P01') })).toBe(true);
    expect(isSafeDatabaseRetry({ ok: false, error: socketError('ECONNREFUSED') })).toBe(true);
    expect(isSafeDatabaseRetry({ ok: false, error: socketError('ECONNRESET') })).toBe(false);
    expect(isSafeDatabaseRetry({ ok: false, error: new Error('no code') })).toBe(false);
    expect(isSafeDatabaseRetry({ ok: true, value: [] })).toBe(false);
  });

  it('count the database as unwell for connection, resource, server and code-less driver errors only', () => {
    expect(isDatabaseFailure(pgError('08006'))).toBe(true);
    expect(isDatabaseFailure(pgError('53300'))).toBe(true);
    expect(isDatabaseFailure(pgError('XX000'))).toBe(true);
    expect(isDatabaseFailure(socketError('ECONNRESET'))).toBe(true);
    expect(isDatabaseFailure(socketError('EPIPE'))).toBe(true); // five capitals, but an errno, not a SQLSTATE
    expect(isDatabaseFailure(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isDatabaseFailure(new TypeError('values must be an array'))).toBe(false);
    expect(isDatabaseFailure(new RangeError('bad limit'))).toBe(false);
    expect(isDatabaseFailure(pgError('23505'))).toBe(false);
    expect(isDatabaseFailure(pgError('22P02'))).toBe(false);
    expect(isDatabaseFailure(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toBe(false);
  });
});
