// A 503 whose Retry-After asked for longer than maxRetryAfterMs used to be
// reported as a success (onSuccess with attempts 1, no give-up event, no
// bulwark.retry.giveups): retryOn answered "do not retry" for a failure. A call
// that ends on a retryable failure is a give-up, with reason 'retry-after'.
import { VirtualClock } from '@bulwark/clock';
import { createFetch } from '@bulwark/fetch';
import { type GiveUpEvent, retry } from '@bulwark/retry';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeFetch } from '../fetch/helpers.ts';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

describe('a retryable failure that asks for too long a wait is a give-up', () => {
  it('createFetch: a 503 with Retry-After above maxRetryAfterMs gives up, not succeeds', async () => {
    const otel = installOtel();
    const clock = new VirtualClock();
    const { fetch, seen } = fakeFetch(
      () => new Response('busy', { status: 503, headers: { 'retry-after': '120' } }),
    );
    const client = createFetch({ fetch, clock, maxRetryAfterMs: 5_000, breakers: false, bulkheads: false });
    const successes: number[] = [];
    const giveUps: GiveUpEvent[] = [];
    client.retry.onSuccess((e) => successes.push(e.attempts));
    client.retry.onGiveUp((e) => giveUps.push(e));

    const response = await client('http://api.test/items');
    expect(response.status).toBe(503);
    expect(seen).toHaveLength(1);
    expect(successes).toEqual([]);
    expect(giveUps).toHaveLength(1);
    expect(giveUps[0]).toMatchObject({ attempts: 1, reason: 'retry-after', outcome: { ok: true } });
    const collected = await otel.collect('@bulwark/retry');
    expect(collected.points('bulwark.retry.giveups')).toEqual([{ reason: 'retry-after', value: 1 }]);
  });

  it('createFetch: a Retry-After within maxRetryAfterMs is still waited for', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = fakeFetch((_, n) =>
      n === 1 ? new Response('busy', { status: 503, headers: { 'retry-after': '2' } }) : new Response('ok'),
    );
    const client = createFetch({ fetch, clock, maxRetryAfterMs: 5_000, breakers: false, bulkheads: false });
    const pending = client('http://api.test/items');
    await clock.advance(2_000);
    expect((await pending).status).toBe(200);
    expect(seen).toHaveLength(2);
  });

  it('retry(): an error whose retryAfterMs exceeds maxRetryAfterMs is thrown at once as a give-up', async () => {
    const clock = new VirtualClock();
    const policy = retry({ clock, maxRetryAfterMs: 1_000 });
    const reasons: string[] = [];
    policy.onGiveUp((e) => reasons.push(e.reason));
    const busy = Object.assign(new Error('busy'), { retryAfterMs: 60_000, code: 'ECONNRESET' });
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        throw busy;
      }),
    ).rejects.toBe(busy);
    expect(calls).toBe(1);
    expect(reasons).toEqual(['retry-after']);
  });

  it('retry() rejects a maxRetryAfterMs that is not a number >= 0', () => {
    expect(() => retry({ maxRetryAfterMs: -1 })).toThrow(/maxRetryAfterMs must be a number >= 0, got -1/);
  });
});
