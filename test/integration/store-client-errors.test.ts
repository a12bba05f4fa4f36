// A store's client losing its connection must fail requests closed, never
// crash the process: node-redis clients and pg pools emit 'error', and an
// emitter with no 'error' listener throws the event (the process exits).
// The stores give a client that has no listener one of their own.
import { EventEmitter } from 'node:events';
import { isBulwarkError } from '@bulwark/core';
import { idempotency } from '@bulwark/idempotency';
import { listenForClientErrors } from '@bulwark/idempotency/authoring';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import { redisIdempotencyStore } from '@bulwark/redis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { atPort, DATABASE_URL, postgresAvailable, RUN_ID, sleep } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

/** A stand-in for a node-redis client: an event emitter with eval and evalSha. */
class ScriptClient extends EventEmitter {
  eval(): Promise<unknown> {
    return Promise.reject(new Error('offline'));
  }
  evalSha(): Promise<unknown> {
    return Promise.reject(new Error('offline'));
  }
}

describe('listenForClientErrors()', () => {
  it('gives an emitter with no error listener one, once, so that an error event no longer throws', () => {
    const client = new ScriptClient();
    expect(() => client.emit('error', new Error('before'))).toThrow('before');
    listenForClientErrors(client);
    listenForClientErrors(client);
    expect(client.listenerCount('error')).toBe(1);
    expect(client.emit('error', new Error('socket closed'))).toBe(true);
  });

  it('leaves alone a client that has its own listener, and an object that is not an emitter', () => {
    const client = new ScriptClient();
    const own = (): void => {};
    client.on('error', own);
    listenForClientErrors(client);
    expect(client.listeners('error')).toEqual([own]);
    expect(() => listenForClientErrors({ query: () => Promise.resolve() })).not.toThrow();
  });
});

describe('the stores and their clients’ error events', () => {
  it('redisIdempotencyStore() keeps a client without a listener from crashing, and the guard fails closed', async () => {
    const client = new ScriptClient();
    const store = redisIdempotencyStore(client);
    redisIdempotencyStore(client, { prefix: 'other:' });
    expect(client.listenerCount('error')).toBe(1);
    expect(client.emit('error', new Error('Socket closed unexpectedly'))).toBe(true);
    const error = await idempotency({ store })
      .run('k', 'request', () => 'ran')
      .catch((e: unknown) => e);
    expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
  });

  it('postgresIdempotencyStore() gives a pg.Pool without a listener one', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL });
    try {
      postgresIdempotencyStore(pool, { table: 'unused' });
      expect(pool.listenerCount('error')).toBe(1);
      expect(pool.emit('error', new Error('Connection terminated unexpectedly'))).toBe(true);
    } finally {
      await pool.end();
    }
  });
});

const pgAvailable = await postgresAvailable();

describe.skipIf(!pgAvailable)('a pg.Pool given to the PostgreSQL store, when its connections are cut', () => {
  it('does not crash when an idle connection dies, and the guard fails closed', async () => {
    const proxy = await startProxy('127.0.0.1', Number(new URL(DATABASE_URL).port || 5432));
    // As a user who forgot pool.on('error') would make it.
    const pool = new pg.Pool({
      connectionString: atPort(DATABASE_URL, proxy.port),
      max: 2,
      connectionTimeoutMillis: 1_000,
    });
    const table = `bulwark_idem_errors_${RUN_ID}`.toLowerCase();
    try {
      const store = postgresIdempotencyStore(pool, { table });
      await pool.query('select 1'); // one idle connection stays in the pool
      expect(pool.idleCount).toBe(1);
      expect(pool.listeners('error')).toHaveLength(1); // the store's, and no other
      await proxy.cut();
      // The pool emits 'error' for the dead idle connection and drops it. With no
      // listener, that event would be thrown as an uncaught exception.
      for (let i = 0; i < 100 && pool.idleCount > 0; i++) await sleep(20);
      expect(pool.idleCount).toBe(0);
      const error = await idempotency({ store })
        .run('k', 'request', () => 'ran')
        .catch((e: unknown) => e);
      expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    } finally {
      await pool.end();
    }
  });
});
