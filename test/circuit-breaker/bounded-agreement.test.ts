// The breaker's policy and its permit judge every outcome alike when the call
// is a bounded one: a breaker directly around a deadline() or timeout() joins
// that call's race and is told how it ended, rather than awaiting it, and a
// breaker inside one sees the call that the limit ends. In both orders, for
// results, errors, failureOn, the caller's abort and our own expiry, a policy
// and a permit fed the same outcomes count the same successes, failures and
// ignored calls after every call. (test/circuit-breaker/model.test.ts drives
// the policy alone, with every trip, against a reference model.)
import { type CallOutcome, circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { describe, expect, it } from 'vitest';

type How = 'value' | 'bad-value' | 'error' | 'benign-error' | 'abort' | 'expire';
const HOWS: readonly How[] = ['value', 'bad-value', 'error', 'benign-error', 'abort', 'expire'];

describe('a breaker around or inside a time limit', () => {
  it.each([
    ['deadline', 'breaker outermost', false],
    ['deadline', 'breaker outermost', true],
    ['deadline', 'limit outermost', false],
    ['deadline', 'limit outermost', true],
    ['timeout', 'breaker outermost', false],
    ['timeout', 'breaker outermost', true],
    ['timeout', 'limit outermost', false],
    ['timeout', 'limit outermost', true],
  ] as const)(
    '%s, %s (the call reads its signal: %s): policy and permit count alike',
    async (kind, order, reads) => {
      const clock = new VirtualClock();
      const options = {
        clock,
        trip: consecutive(100),
        failureOn: (o: CallOutcome) => (o.ok ? o.value === 'bad' : !(o.error instanceof RangeError)),
      };
      const byPolicy = circuitBreaker(options);
      const byPermit = circuitBreaker(options);
      const limit = kind === 'deadline' ? deadline(100, { clock }) : timeout(100, { clock });
      const policy = order === 'breaker outermost' ? pipeline(byPolicy, limit) : pipeline(limit, byPolicy);
      for (const how of [...HOWS, ...HOWS]) {
        const caller = new AbortController();
        let settle!: (ok: boolean, result: unknown) => void;
        const done = policy
          .execute(
            (ctx) => {
              if (reads) void ctx.signal;
              return new Promise((resolve, reject) => {
                settle = (ok, result) => (ok ? resolve(result) : reject(result));
              });
            },
            { signal: caller.signal },
          )
          .catch((error: unknown) => error);
        const permitCaller = new AbortController();
        const permit = byPermit.tryAcquire({ signal: permitCaller.signal });
        expect(permit).toBeDefined();
        await clock.advance(10);
        switch (how) {
          case 'value':
          case 'bad-value': {
            const value = how === 'value' ? 'good' : 'bad';
            settle(true, value);
            permit!.success(undefined, value);
            break;
          }
          case 'error':
          case 'benign-error': {
            const error = how === 'error' ? new Error('down') : new RangeError('not the dependency');
            settle(false, error);
            permit!.failure(error);
            break;
          }
          case 'abort': {
            // The caller gives up; the function then ends as its signal asks.
            const reason = new Error('the caller gave up');
            caller.abort(reason);
            permitCaller.abort(reason);
            permit!.failure(reason);
            settle(false, new Error('aborted'));
            break;
          }
          case 'expire': {
            // Our limit ends the call; the function then ends as its signal asks.
            await clock.advance(100);
            const error = await done;
            expect(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
            permitCaller.abort(error);
            permit!.failure(error);
            settle(false, new Error('aborted'));
            break;
          }
        }
        await done;
        await clock.advance(0);
        const a = byPolicy.stats();
        const b = byPermit.stats();
        expect({ how, successes: a.successes, failures: a.failures, ignored: a.ignored }).toEqual({
          how,
          successes: b.successes,
          failures: b.failures,
          ignored: b.ignored,
        });
      }
      // Each kind was judged: 2 successes, 3 failures (a bad value, an error, the expiry), 1 ignored, twice.
      expect(byPolicy.stats()).toMatchObject({ successes: 4, failures: 6, ignored: 2, admitted: 12 });
    },
  );
});
