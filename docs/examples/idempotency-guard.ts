// Server side, framework-neutral: run an operation once per key.
import { idempotency, memoryStore } from '@bulwark/idempotency';

interface Payment {
  readonly id: string;
  readonly amount: number;
}

declare function charge(account: string, amount: number): Promise<Payment>;

const guard = idempotency<Payment>({
  store: memoryStore({ maxEntries: 50_000 }),
  ttlMs: 24 * 60 * 60 * 1000,
  leaseMs: 30_000,
});

export async function pay(key: string, account: string, amount: number): Promise<Payment> {
  const result = await guard.run(key, { account, amount }, () => charge(account, amount));
  switch (result.kind) {
    case 'executed':
    case 'replayed':
      return result.value;
    case 'in-progress':
      throw new Error(`payment ${key} is still running; retry in ${result.retryAfterMs} ms`);
    case 'mismatch':
      throw new Error(`key ${key} was already used for a different payment`);
  }
}
