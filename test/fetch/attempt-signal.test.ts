import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError } from '@bulwark/core';
import { createFetch } from '@bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { fakeFetch, hang, type Script, settle, stallingResponse } from './helpers.ts';

const URL_A = 'http://a.test/items';

function setup(script: Script, options: Parameters<typeof createFetch>[0] = {}) {
  const clock = new VirtualClock();
  const fake = fakeFetch(script);
  const fetch = createFetch({ clock, fetch: fake.fetch, maxAttempts: 1, ...options });
  return { clock, fetch, seen: fake.seen };
}

// Under the attempt timeout an attempt is sent with the timeout's own signal;
// without one, with a controller of its own. Both must bound the attempt and
// its body alike.
for (const attemptTimeoutMs of [1_000, Number.POSITIVE_INFINITY]) {
  describe(`the signal an attempt is sent with (attemptTimeoutMs: ${attemptTimeoutMs})`, () => {
    it('aborts a hanging attempt when the deadline passes', async () => {
      const { clock, fetch, seen } = setup(hang, { attemptTimeoutMs, deadlineMs: 1_000 });
      const outcome = fetch(URL_A).catch((error: unknown) => error);
      await settle();
      await clock.advance(1_000);
      const error = await outcome;
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect((error as DeadlineExceededError).source).toBe('deadline');
      expect(seen[0]!.request.signal.aborted).toBe(true);
    });

    it('errors the body with DeadlineExceededError when the deadline passes mid-read, not before', async () => {
      const { clock, fetch, seen } = setup((request) => stallingResponse(request.signal, 'x'), {
        attemptTimeoutMs,
        deadlineMs: 5_000,
      });
      const response = await fetch(URL_A);
      const reading = response.text().catch((error: unknown) => error);
      await clock.advance(4_999);
      await settle();
      expect(seen[0]!.request.signal.aborted).toBe(false);
      await clock.advance(1);
      const error = await reading;
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect((error as DeadlineExceededError).budgetMs).toBe(5_000);
    });

    it('aborts a body being read when the caller aborts, with the caller reason', async () => {
      const { fetch } = setup((request) => stallingResponse(request.signal, 'x'), { attemptTimeoutMs });
      const controller = new AbortController();
      const response = await fetch(URL_A, { signal: controller.signal });
      const reading = response.text().catch((error: unknown) => error);
      await settle();
      controller.abort('stop reading');
      expect(await reading).toBe('stop reading');
    });
  });
}
