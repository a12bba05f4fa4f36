// createFetch() against the bare global fetch on a loopback keep-alive server,
// each call reading its small body. Side by side: p-retry around fetch (what
// many codebases do by hand), and a bare fetch sent the way createFetch() sends
// every attempt (two more request headers and an AbortSignal), a floor that no
// wrapper sending the same request can go under. The server runs in this
// process, so its cost is in every subject alike; the figure that matters is the
// ratio of whole-call times, createFetch / bare fetch.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFetch } from '@bulwark/fetch';
import pRetry from 'p-retry';
import { runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const server = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const full = createFetch();
  const noKeyed = createFetch({ breakers: false, bulkheads: false });
  const read = async (response: Promise<Response>): Promise<string> => (await response).text();
  // What createFetch() adds to the wire with its defaults: the attempt number
  // and the time left (30 s less the 10 ms margin), and a signal undici follows.
  const asSent = (): Promise<Response> =>
    fetch(url, {
      headers: { 'x-retry-attempt': '1', 'x-request-timeout-ms': '29990' },
      signal: new AbortController().signal,
    });

  try {
    const result = await runSuite(
      'fetch-loopback',
      [
        { name: 'bare fetch', call: () => read(fetch(url)) },
        { name: 'bare fetch + 2 headers + signal', call: () => read(asSent()) },
        { name: 'bulwark createFetch()', call: () => read(full(url)) },
        { name: 'bulwark createFetch() without breakers, bulkheads', call: () => read(noKeyed(url)) },
        {
          name: 'p-retry(fetch, { retries: 2 })',
          call: () => read(pRetry(() => fetch(url), { retries: 2 })),
        },
      ],
      // A loopback call's round time swings by as much as createFetch()'s
      // overhead on a shared machine, so 41 rounds (it took 15 before) give
      // the best round a better chance of being a quiet one (see docs/benchmarks.md).
      { batch: 2_000, rounds: 41, warmup: 2_000 },
    );
    const ns = (name: string): number => result.measurements.find((m) => m.name === name)!.nsPerCall;
    const bare = ns('bare fetch');
    const ratio = ns('bulwark createFetch()') / bare;
    console.log(`time per call, createFetch() / bare fetch: ${ratio.toFixed(3)}`);
    console.log(
      `time per call, bare fetch + 2 headers + signal / bare fetch: ${(ns('bare fetch + 2 headers + signal') / bare).toFixed(3)}`,
    );
    console.log(
      `time per call, p-retry(fetch) / bare fetch: ${(ns('p-retry(fetch, { retries: 2 })') / bare).toFixed(3)}`,
    );
    return target('createFetch() time per loopback call <= 1.25 x bare fetch', ratio, 1.25);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}
