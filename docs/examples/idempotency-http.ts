// The HTTP mapping that framework plugins build on, here with node:http.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type HttpResponse, httpIdempotency, memoryStore } from '@bulwark/idempotency';

const http = httpIdempotency({ store: memoryStore(), leaseMs: 30_000 });

declare function createOrder(body: string): Promise<HttpResponse>;
declare function principalOf(req: IncomingMessage): string;
declare function readBody(req: IncomingMessage): Promise<string>;

function send(res: ServerResponse, response: HttpResponse): void {
  res.writeHead(response.status, response.headers).end(response.body);
}

export const server = createServer(async (req, res) => {
  const body = await readBody(req);
  const decision = await http.begin({
    key: req.headers['idempotency-key'] as string | undefined,
    fingerprint: { method: req.method, url: req.url, body },
    scope: principalOf(req),
  });
  if (decision.action === 'respond') return send(res, decision.response);
  try {
    const response = await createOrder(body);
    await decision.commit(response); // 2xx and 4xx are kept; 5xx, 408 and 429 release the key
    send(res, response);
  } catch (error) {
    await decision.release();
    throw error;
  }
});
