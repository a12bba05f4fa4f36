import { readFile, writeFile } from 'node:fs/promises';
import { type BreakerSnapshot, circuitBreaker } from '@bulwark/circuit-breaker';

// Serverless: carry an open breaker across cold starts.
const saved = await readFile('/tmp/payments-breaker.json', 'utf8').then(
  (text) => JSON.parse(text) as BreakerSnapshot,
  () => undefined,
);
export const breaker = circuitBreaker({ name: 'payments', initialState: saved });

export async function persist(): Promise<void> {
  await writeFile('/tmp/payments-breaker.json', JSON.stringify(breaker)); // toJSON(): relative durations
}
