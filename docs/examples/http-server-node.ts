// A plain node:http server: inbound deadlines, disconnect-aware signals and load shedding.
import { createServer } from 'node:http';
import { adaptiveLimit, bulkhead } from '@bulwark/bulkhead';
import { deadlineHeaders } from '@bulwark/deadline';
import { bulwarkHttp } from '@bulwark/http-server';

const handler = bulwarkHttp(
  async (req, res, bulwark) => {
    if (req.method !== 'GET' || req.url?.startsWith('/stock/') !== true) {
      res.writeHead(404).end();
      return;
    }
    // The signal aborts at the deadline or when the client goes away; the time
    // left travels downstream as x-request-timeout-ms.
    const upstream = await fetch(`http://inventory.internal/items/${req.url.slice('/stock/'.length)}`, {
      signal: bulwark.signal,
      headers: deadlineHeaders(bulwark.remainingMs(), { safetyMarginMs: 20 }),
    });
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
  },
  {
    // A request that finds no free slot gets 503 with Retry-After: 1.
    bulkhead: bulkhead({ maxConcurrent: adaptiveLimit({ algorithm: 'gradient2', initialLimit: 50 }) }),
    defaultTimeoutMs: 10_000, // a request without a deadline header gets 10 s
    maxTimeoutMs: 30_000, // and none may ask for more than 30 s
    // A handler that throws gets 500 problem+json; log what went wrong.
    onError: (error, req) => console.error(`${req.method} ${req.url} failed`, error),
  },
);

export const server = createServer(handler);
server.listen(3000, '127.0.0.1');
