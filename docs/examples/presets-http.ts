import { isBulwarkError, presets } from 'bulwark';

// One client per process (or per dependency): its retry budget, breakers and
// bulkheads are shared by every call made through it.
const api = presets.httpClient({ name: 'inventory' });
api.retry.onGiveUp(({ attempts, reason }) =>
  console.warn(`inventory: gave up after ${attempts} (${reason})`),
);

try {
  // The same signature as fetch. A POST carries an Idempotency-Key, the same on every attempt.
  const response = await api('http://inventory.internal/reservations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sku: 'A-1', quantity: 2 }),
  });
  console.log(response.status, await response.json());
} catch (error) {
  if (isBulwarkError(error, 'ERR_CIRCUIT_OPEN'))
    console.warn(`inventory is down; retry in ${error.retryAfterMs} ms`);
  else throw error;
}
