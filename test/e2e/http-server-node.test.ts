// bulwarkHttp() on a real node:http server on 127.0.0.1 (port 0), with deadlines on a
// VirtualClock. Nothing sleeps: each test waits on events, is bounded to 5 s (each
// request too), and the server is closed (with its connections) after each test
// even when it fails. Moved here from test/http-server/ because it uses real sockets.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { currentDeadline } from '@bulwark/deadline';
import { type BulwarkHttpHandler, type BulwarkHttpOptions, bulwarkHttp } from '@bulwark/http-server';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer } from '../support/loopback.ts';

let server: Server | undefined;

afterEach(async () => {
  const running = server;
  server = undefined;
  if (running === undefined) return;
  await closeServer(running);
});

async function serve(handler: BulwarkHttpHandler, options?: BulwarkHttpOptions): Promise<string> {
  server = createServer(bulwarkHttp(handler, options));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A promise and the function that resolves it. */
function latch<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The longest a test (or one of its requests) may take; a hang fails it rather than the run. */
const BOUND_MS = 5_000;

/** fetch() that gives up after BOUND_MS. */
function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(BOUND_MS) });
}

describe('bulwarkHttp() on node:http', { timeout: BOUND_MS }, () => {
  it('runs the handler inside the inbound deadline and gives it the context', async () => {
    const clock = new VirtualClock();
    const url = await serve(
      (_req, res, bulwark) => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            header: bulwark.deadlineHeader,
            remaining: bulwark.remainingMs(),
            ambient: currentDeadline({ clock })?.remaining(),
            aborted: bulwark.signal.aborted,
          }),
        );
      },
      { clock },
    );
    const response = await get(`${url}/x`, { headers: { 'grpc-timeout': '250m' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      header: 'grpc-timeout',
      remaining: 250,
      ambient: 250,
      aborted: false,
    });
  });

  it('answers a malformed deadline header with 400 problem+json and never runs the handler', async () => {
    let ran = false;
    const url = await serve((_req, res) => {
      ran = true;
      res.end();
    });
    const response = await get(url, { headers: { 'x-request-timeout-ms': 'soon' } });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(((await response.json()) as { title: string }).title).toContain('x-request-timeout-ms');
    expect(ran).toBe(false);
  });

  it('sheds with 503 and Retry-After while the bulkhead is full, and gets its slot back', async () => {
    const limit = bulkhead({ maxConcurrent: 1 });
    const started = latch();
    const gate = latch();
    const url = await serve(
      async (_req, res) => {
        started.resolve();
        await gate.promise;
        res.end('done');
      },
      { bulkhead: limit, retryAfterSeconds: 3 },
    );
    const first = get(url);
    await started.promise;
    const shed = await get(url);
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('3');
    expect(((await shed.json()) as { type: string }).type).toBe('urn:bulwark:server:overloaded');
    gate.resolve();
    expect(await (await first).text()).toBe('done');
    const again = await get(url);
    expect(await again.text()).toBe('done');
    expect(limit.active).toBe(0);
  });

  it('answers 500 problem+json when the handler throws or rejects, and tells onError', async () => {
    const errors: unknown[] = [];
    const url = await serve(
      (req) => {
        if (req.url === '/sync') throw new Error('sync');
        return Promise.reject(new Error('async'));
      },
      { onError: (error, req) => errors.push([(error as Error).message, req.url]) },
    );
    for (const path of ['/sync', '/async']) {
      const response = await get(`${url}${path}`);
      expect(response.status).toBe(500);
      expect(((await response.json()) as { type: string }).type).toBe('urn:bulwark:server:handler-failed');
    }
    expect(errors).toEqual([
      ['sync', '/sync'],
      ['async', '/async'],
    ]);
  });

  it("aborts the handler's signal with an AbortError when the client disconnects", async () => {
    const started = latch();
    const reason = latch<unknown>();
    const url = await serve((_req, _res, bulwark) => {
      bulwark.signal.addEventListener('abort', () => reason.resolve(bulwark.signal.reason), { once: true });
      started.resolve();
    });
    const client = httpRequest(url);
    client.on('error', () => undefined); // the socket is destroyed on purpose
    client.end();
    await started.promise;
    client.destroy();
    const why = await reason.promise;
    expect((why as DOMException).name).toBe('AbortError');
  });

  it('aborts the signal at the deadline with a DeadlineExceededError', async () => {
    const clock = new VirtualClock();
    const started = latch();
    const url = await serve(
      (_req, res, bulwark) => {
        bulwark.signal.addEventListener(
          'abort',
          () => {
            res.statusCode = 504;
            res.end((bulwark.signal.reason as { code: string }).code);
          },
          { once: true },
        );
        started.resolve();
      },
      { clock, defaultTimeoutMs: 100 },
    );
    const pending = get(url);
    await started.promise;
    await clock.advance(100);
    const response = await pending;
    expect(response.status).toBe(504);
    expect(await response.text()).toBe('ERR_DEADLINE_EXCEEDED');
  });
});
