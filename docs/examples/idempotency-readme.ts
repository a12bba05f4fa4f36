import { idempotency, memoryStore } from '@bulwark/idempotency';

declare function charge(account: string, amount: number): Promise<{ id: string }>;

const guard = idempotency<{ id: string }>({ store: memoryStore() });

export async function pay(key: string, account: string, amount: number): Promise<{ id: string }> {
  const result = await guard.run(key, { account, amount }, () => charge(account, amount));
  if (result.kind === 'executed' || result.kind === 'replayed') return result.value;
  if (result.kind === 'in-progress') throw new Error(`retry in ${result.retryAfterMs} ms`);
  throw new Error(`key ${key} was already used for a different payment`);
}
