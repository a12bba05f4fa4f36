// A hedge launched when its delay runs out runs in its own call's async
// context (AsyncLocalStorage stores, the active trace), whichever call armed
// the shared deadline timer it waited on.
import { AsyncLocalStorage } from 'node:async_hooks';
import { hedging } from '@bulwark/hedging';
import { describe, expect, it } from 'vitest';

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('hedging and async context', () => {
  it("runs each call's hedge in that call's AsyncLocalStorage context, with calls overlapping", async () => {
    const store = new AsyncLocalStorage<string>();
    const policy = hedging({ delayMs: 20, maxHedgedAttempts: 2 });
    const seen: string[] = [];
    const call = (name: string) =>
      store.run(name, () =>
        policy.execute(async (ctx) => {
          seen.push(`${name} attempt ${ctx.attempt} in ${store.getStore()}`);
          await pause(ctx.attempt === 1 ? 60 : 5);
          return name;
        }),
      );
    // B's hedge is due in the same shared timer A armed.
    const calls = [call('A'), pause(2).then(() => call('B')), pause(4).then(() => call('C'))];
    expect(await Promise.all(calls)).toEqual(['A', 'B', 'C']);
    expect(seen.sort()).toEqual([
      'A attempt 1 in A',
      'A attempt 2 in A',
      'B attempt 1 in B',
      'B attempt 2 in B',
      'C attempt 1 in C',
      'C attempt 2 in C',
    ]);
  });
});
