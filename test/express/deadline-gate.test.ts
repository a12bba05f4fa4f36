// deadlineGate() in a real Express 5 app on 127.0.0.1 (port 0), on a VirtualClock:
// a "slow" middleware advances the clock instead of sleeping.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VirtualClock } from '@bulwark/clock';
import { currentDeadline } from '@bulwark/deadline';
import { bulwarkExpress, deadlineGate, idempotent } from '@bulwark/express';
import { memoryStore } from '@bulwark/idempotency';
import express, { type RequestHandler } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer } from '../support/loopback.ts';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(closeServer));
});

/** Starts `app` on an ephemeral loopback port and returns its base URL. */
async function listen(app: express.Express): Promise<string> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Middleware that takes `ms` of the virtual clock, as a slow auth check or body parser would. */
function slow(clock: VirtualClock, ms: number): RequestHandler {
  return async (_req, _res, next) => {
    await clock.advance(ms);
    next();
  };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
}

describe('deadlineGate() in an Express app', () => {
  it('answers 504 problem+json, without running the handler, when middleware before it used up the deadline', async () => {
    const clock = new VirtualClock();
    const app = express();
    let ran = 0;
    app.use(bulwarkExpress({ clock, defaultTimeoutMs: 100 }));
    app.use(express.json());
    app.use(slow(clock, 200));
    app.use(deadlineGate());
    app.post('/orders', (_req, res) => {
      ran++;
      res.status(201).json({ ok: true });
    });
    const base = await listen(app);
    const response = await post(`${base}/orders`, { sku: 'a' });
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await response.json()) as { type: string; detail: string };
    expect(problem.type).toBe('urn:bulwark:deadline:expired');
    expect(problem.detail).toContain('100 ms');
    expect(ran).toBe(0);
  });

  it('runs the handler inside the deadline when there is time left', async () => {
    const clock = new VirtualClock();
    const app = express();
    app.use(bulwarkExpress({ clock, defaultTimeoutMs: 100 }));
    app.use(express.json());
    app.use(slow(clock, 30));
    app.use(deadlineGate());
    app.post('/orders', (req, res) => {
      res.status(201).json({
        body: req.body,
        aborted: req.bulwark.signal.aborted,
        scoped: currentDeadline({ clock })?.remaining(),
      });
    });
    const base = await listen(app);
    const response = await post(`${base}/orders`, { sku: 'a' }, { 'x-request-timeout-ms': '80' });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ body: { sku: 'a' }, aborted: false, scoped: 50 });
  });

  it('lets every request through when bulwarkExpress() is not in front of it', async () => {
    const app = express();
    app.use(deadlineGate());
    app.get('/', (_req, res) => {
      res.send('ran');
    });
    const base = await listen(app);
    const response = await fetch(base, { signal: AbortSignal.timeout(5_000) });
    expect(await response.text()).toBe('ran');
  });

  it('is what idempotent() does after taking the key: 504, and the key is released for the retry', async () => {
    const clock = new VirtualClock();
    const store = memoryStore();
    const app = express();
    let ran = 0;
    let delay = 200;
    app.use(bulwarkExpress({ clock, defaultTimeoutMs: 100 }));
    app.use(express.json());
    app.post(
      '/pay',
      async (_req, _res, next) => {
        await clock.advance(delay);
        next();
      },
      idempotent({ store }),
      (req, res) => {
        ran++;
        res.status(201).json({ paid: req.body });
      },
    );
    const base = await listen(app);
    const late = await post(`${base}/pay`, { amount: 5 }, { 'idempotency-key': '"k1"' });
    expect(late.status).toBe(504);
    expect(ran).toBe(0);
    delay = 0;
    const retry = await post(`${base}/pay`, { amount: 5 }, { 'idempotency-key': '"k1"' });
    expect(retry.status).toBe(201);
    expect(ran).toBe(1);
  });
});
