import { createServer } from 'node:http';
import { bulkhead } from '@bulwark/bulkhead';

// Load shedding in a server: the primitive, without the wrapper.
const inbound = bulkhead({ maxConcurrent: 64, name: 'http-in' });

async function handle(url: string | undefined): Promise<string> {
  return `you asked for ${url}`;
}

export const server = createServer((req, res) => {
  const permit = inbound.tryAcquire();
  if (permit === undefined) {
    res.writeHead(503, { 'retry-after': '1' }).end('busy');
    return;
  }
  handle(req.url).then(
    (body) => {
      permit.success();
      res.end(body);
    },
    () => {
      permit.failure();
      res.writeHead(500).end();
    },
  );
});

// Waiting for a slot instead, for as long as the client stays connected.
export async function withSlot<T>(work: () => Promise<T>, signal: AbortSignal): Promise<T> {
  const permit = await inbound.acquire({ signal }); // rejects with signal.reason if it aborts
  try {
    return await work();
  } finally {
    permit.release(); // exactly once; a second release frees nothing and warns
  }
}
