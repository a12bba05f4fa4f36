import { pipeline, traced } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { retry } from '@bulwark/retry';

// One span per call, named "payments", active while the call runs: the retry
// and deadline span events land on it even when nothing else made a span.
const payments = pipeline(
  traced('payments', { attributes: { 'peer.service': 'payments' } }),
  deadline(2_000),
  retry(),
  timeout(500),
);

export const receipt = await payments.execute(
  ({ signal }) => fetch('https://payments.internal/charge', { method: 'PUT', signal }),
  {
    operation: 'charge',
  },
);
