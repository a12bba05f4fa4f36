// bulwark's client and server agree on a POST that outlives its attempt
// timeout: with default options on both sides, the retry finds the first run
// still in progress (409), polls, and gets that run's stored response within
// the caller's deadline. The handler runs once.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '@bulwark/clock';
import { bulwarkExpress, idempotent } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { createFetch, FETCH_DEFAULTS } from '@bulwark/fetch';
import { bulwarkHttp } from '@bulwark/http-server';
import { httpIdempotency, memoryStore } from '@bulwark/idempotency';
import { HTTP_CLIENT_DEFAULTS, presets } from 'bulwark';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

/** How long the handler works: longer than the client's attempt timeout. */
const HANDLER_MS = 1_200;
const ATTEMPT_TIMEOUT_MS = 500;

/** One run of the handler, as the server saw it. */
interface Run {
  readonly key: string | undefined;
  readonly attempt: string | undefined;
}

interface Running {
  readonly url: string;
  readonly runs: Run[];
  close(): Promise<void>;
}

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The work: it completes even when the caller stops waiting (the charge went out). */
async function charge(runs: Run[], headers: IncomingMessage['headers']): Promise<{ charge: number }> {
  runs.push({ key: first(headers['idempotency-key']), attempt: first(headers['x-retry-attempt']) });
  const charge = runs.length;
  await sleep(HANDLER_MS);
  return { charge };
}

async function startFastify(): Promise<Running> {
  const runs: Run[] = [];
  const app = Fastify({ forceCloseConnections: true });
  await app.register(bulwarkFastify);
  app.post('/charges', { config: { idempotency: { store: memoryStore() } } }, async (request) =>
    charge(runs, request.headers),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, runs, close: () => app.close() };
}

async function startExpress(): Promise<Running> {
  const runs: Run[] = [];
  const app = express();
  app.use(bulwarkExpress());
  app.use(express.json());
  app.post('/charges', idempotent({ store: memoryStore() }), async (req, res) => {
    res.json(await charge(runs, req.headers));
  });
  const { url, close } = await listenOnLoopback(createServer(app));
  return { url, runs, close };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

/** node:http with bulwarkHttp and the framework-neutral mapping, as docs/examples/idempotency-http.ts. */
async function startNodeHttp(): Promise<Running> {
  const runs: Run[] = [];
  const mapping = httpIdempotency({ store: memoryStore() });
  const handler = bulwarkHttp(async (req, res) => {
    const body = await readBody(req);
    const decision = await mapping.begin({
      key: first(req.headers['idempotency-key']),
      fingerprint: { method: req.method, url: req.url, body },
    });
    if (decision.action === 'respond') {
      res.writeHead(decision.response.status, decision.response.headers).end(decision.response.body);
      return;
    }
    const response = {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(await charge(runs, req.headers)),
    };
    await decision.commit(response);
    res.writeHead(response.status, response.headers).end(response.body);
  });
  const { url, close } = await listenOnLoopback(createServer(handler));
  return { url, runs, close };
}

describe.each([
  ['Fastify plugin', startFastify],
  ['Express middleware', startExpress],
  ['bulwarkHttp with httpIdempotency()', startNodeHttp],
] as const)('a POST slower than its attempt timeout, against the %s with default options', (_name, start) => {
  let server: Running;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each([
    [
      'createFetch()',
      () => createFetch({ idempotencyKeys: true, attemptTimeoutMs: ATTEMPT_TIMEOUT_MS }),
      FETCH_DEFAULTS.deadlineMs,
    ],
    [
      'presets.httpClient()',
      () => presets.httpClient({ attemptTimeoutMs: ATTEMPT_TIMEOUT_MS }),
      HTTP_CLIENT_DEFAULTS.deadlineMs,
    ],
  ] as const)(
    'gets the first run’s stored response through %s within its deadline, and the handler runs once',
    async (_client, makeFetch, deadlineMs) => {
      const fetch = makeFetch();
      const startedAt = systemClock.now();
      const response = await fetch(`${server.url}/charges`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 5 }),
      });
      const elapsedMs = systemClock.now() - startedAt;
      const body = await response.text();
      expect({ status: response.status, body }).toEqual({
        status: 200,
        body: expect.stringMatching(/^\{"charge":\d+\}$/),
      });
      // The first attempt reached the handler and timed out; what came back is its run, replayed.
      expect(response.headers.get('idempotent-replayed')).toBe('true');
      const key = server.runs.at(-1)?.key;
      expect(key).toMatch(/^"[0-9A-Z]{26}"$/);
      const runsOfKey = server.runs.filter((run) => run.key === key);
      expect(runsOfKey).toEqual([{ key, attempt: '1' }]);
      expect(JSON.parse(body)).toEqual({ charge: server.runs.indexOf(runsOfKey[0]!) + 1 });
      // Well within the deadline: the handler's time plus about one poll interval.
      expect(elapsedMs).toBeGreaterThanOrEqual(HANDLER_MS);
      expect(elapsedMs).toBeLessThan(Math.min(deadlineMs, HANDLER_MS + 3_000));
    },
  );
});
