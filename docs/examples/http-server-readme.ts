import { createServer } from 'node:http';
import { bulkhead } from '@bulwark/bulkhead';
import { bulwarkHttp } from '@bulwark/http-server';

const server = createServer(
  bulwarkHttp(
    async (_req, res, bulwark) => {
      // Aborts at the caller's deadline (grpc-timeout, x-request-timeout-ms, ...) or on disconnect.
      const report = await fetch('http://reports.internal/latest', { signal: bulwark.signal });
      res.writeHead(200, { 'content-type': 'application/json' }).end(await report.text());
    },
    { bulkhead: bulkhead({ maxConcurrent: 100 }) },
  ),
);

export { server };
