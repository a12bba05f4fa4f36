import { bulkhead } from '@bulwark/bulkhead';
import { bulwarkErrorHandler, bulwarkExpress, deadlineGate, idempotent } from '@bulwark/express';
import { memoryStore } from '@bulwark/idempotency';
import express from 'express';

export const app = express();
app.use(bulwarkExpress({ bulkhead: bulkhead({ maxConcurrent: 100 }) }));
app.use(express.json());
app.use(deadlineGate()); // 504 if the deadline passed while the body was read

app.get('/report', async (req, res) => {
  // Aborts at the caller's deadline (grpc-timeout, x-request-timeout-ms, ...) or on disconnect.
  const report = await fetch('http://reports.internal/latest', { signal: req.bulwark.signal });
  res.json(await report.json());
});

app.post('/payments', idempotent({ store: memoryStore() }), (req, res) => {
  res.status(201).json({ accepted: req.body });
});

app.use(bulwarkErrorHandler()); // after the routes: 504 / 503 problem+json for bulwark errors
