// A fleet store's timeout is "no answer from Redis within timeoutMs". When the
// process itself stalled past that deadline (a long synchronous task, a CPU
// starved by other work), Node.js runs due timers before it polls the sockets
// again, so a reply that arrived during the stall used to be reported as a
// timeout: on a loaded machine a key on a healthy Redis node was refused with
// ERR_STORE_UNAVAILABLE (reason 'timeout') although Redis had answered in time.
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { systemClock } from '@bulwark/clock';
import { rateLimit } from '@bulwark/rate-limit';
import { type RedisScriptClient, redisRateLimitStore, redisSemaphoreStore } from '@bulwark/redis';
import { afterEach, describe, expect, it } from 'vitest';

/** A connected loopback socket pair: what one end writes waits in the other's receive buffer until the loop polls. */
async function socketPair(): Promise<{ near: Socket; far: Socket; close(): void }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const near = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => near.once('connect', resolve));
  const far = await accepted;
  return {
    near,
    far,
    close() {
      near.destroy();
      far.destroy();
      server.close();
    },
  };
}

/** A script client whose every reply is the next JSON value read from `socket`. */
function replyingFrom(socket: Socket): RedisScriptClient {
  const next = () =>
    new Promise<unknown>((resolve) => socket.once('data', (data) => resolve(JSON.parse(String(data)))));
  return { evalSha: next, eval: next };
}

/** Blocks the event loop for `ms` milliseconds, as a stalled process does. */
function stall(ms: number): void {
  const end = systemClock.now() + ms;
  while (systemClock.now() < end) {
    // busy
  }
}

/**
 * Starts `call` in the check phase of the event loop, sends `reply` to it at
 * once (it reaches the socket's receive buffer), then stalls the loop well
 * past the store's 20 ms timeout: the deadline is due before the reply is read.
 * Resolves with how the call ended and how many bytes of the reply were still
 * queued in the process (none: all of it was in the kernel before the stall).
 */
function stalledPastTimeout(
  far: Socket,
  reply: unknown,
  call: () => Promise<unknown>,
): Promise<{ outcome: unknown; queued: number }> {
  return new Promise((resolve) => {
    setImmediate(() => {
      const ended = call().then(
        (value) => value,
        (error: unknown) => error,
      );
      far.write(JSON.stringify(reply));
      const queued = far.writableLength;
      stall(150);
      void ended.then((outcome) => resolve({ outcome, queued }));
    });
  });
}

let close: (() => void) | undefined;
afterEach(() => {
  close?.();
  close = undefined;
});

describe('a fleet store after the process stalled past its timeout', () => {
  it('takes a rate-limit decision whose reply arrived during the stall instead of reporting a timeout', async () => {
    const pair = await socketPair();
    close = pair.close;
    const store = redisRateLimitStore(replyingFrom(pair.near), {
      onStoreError: 'fail-closed',
      timeoutMs: 20,
    });
    const rule = rateLimit({ ratePerSecond: 200, burst: 20, store }).rule;
    const { outcome, queued } = await stalledPastTimeout(pair.far, 5_000, () =>
      Promise.resolve(store.take('tenant', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity })),
    );
    expect(queued).toBe(0);
    expect(outcome).toMatchObject({ allowed: true, remaining: 19 });
    expect(store.stats().storeErrors).toBe(0);
  });

  it('grants a distributed permit whose reply arrived during the stall instead of reporting a timeout', async () => {
    const pair = await socketPair();
    close = pair.close;
    const store = redisSemaphoreStore(replyingFrom(pair.near), { timeoutMs: 20 });
    const { outcome, queued } = await stalledPastTimeout(pair.far, ['acquired'], () =>
      store.acquire('db', 'h1', 4, []),
    );
    expect(queued).toBe(0);
    expect(outcome).toEqual({ acquired: true });
  });

  it('still times out a command whose reply comes only after the stall', async () => {
    const pair = await socketPair();
    close = pair.close;
    const store = redisSemaphoreStore(replyingFrom(pair.near), { timeoutMs: 20 });
    const result = await new Promise<unknown>((resolve) => {
      setImmediate(() => {
        store.acquire('db', 'h1', 4, []).then(resolve, resolve);
        stall(150);
      });
    });
    expect(result).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE', reason: 'timeout', operation: 'acquire' });
  });
});
