// The policy and the permit judge a call alike: run() takes a slot, runs the
// function, and reports through the permit, so what a limit learns from a call
// does not depend on whether a pipeline or a server plugin made it.
import { BulkheadRejectedError, bulkhead, type LimitSample, type LimitSource } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';

/** A limit source that records what it is told. */
class Recorder implements LimitSource {
  readonly limit = 2;
  readonly adaptive = true;
  readonly samples: LimitSample[] = [];
  onSample(sample: LimitSample): void {
    this.samples.push(sample);
  }
}

type Case = 'value' | 'error' | 'deadline' | 'shed' | 'abort';

function errorFor(how: Case, reason: unknown): unknown {
  if (how === 'deadline') return new DeadlineExceededError('timeout', 10);
  if (how === 'shed')
    return new BulkheadRejectedError('queue-full', { limit: 1, maxQueue: 0, waitedMs: 0 }, 'downstream');
  if (how === 'abort') return reason;
  return new Error('down');
}

/** What the limit learned from one call: no sample, or whether it was a drop. */
async function viaPolicy(how: Case): Promise<string> {
  const limit = new Recorder();
  const clock = new VirtualClock();
  const policy = bulkhead({ maxConcurrent: limit, clock });
  const controller = new AbortController();
  const call = policy.execute(
    async () => {
      if (how === 'value') return 1;
      const reason = new Error('the caller gave up');
      if (how === 'abort') controller.abort(reason);
      throw errorFor(how, reason);
    },
    { signal: controller.signal },
  );
  await call.catch(() => undefined);
  await Promise.resolve();
  expect(policy.active).toBe(0);
  return limit.samples.map((s) => (s.dropped ? 'drop' : 'sample')).join(',') || 'none';
}

async function viaPermit(how: Case): Promise<string> {
  const limit = new Recorder();
  const clock = new VirtualClock();
  const policy = bulkhead({ maxConcurrent: limit, clock });
  const controller = new AbortController();
  const permit = policy.tryAcquire({ signal: controller.signal })!;
  if (how === 'value') permit.success();
  else {
    const reason = new Error('the caller gave up');
    if (how === 'abort') controller.abort(reason);
    permit.failure(errorFor(how, reason));
  }
  expect(policy.active).toBe(0);
  return limit.samples.map((s) => (s.dropped ? 'drop' : 'sample')).join(',') || 'none';
}

describe('bulkhead policy and permit', () => {
  it.each([
    ['value', 'sample'],
    ['error', 'sample'],
    ['deadline', 'drop'],
    ['shed', 'drop'],
    ['abort', 'none'],
  ] as const)('teach an adaptive limit the same from a call that ends with %s', async (how, expected) => {
    expect(await viaPolicy(how)).toBe(expected);
    expect(await viaPermit(how)).toBe(expected);
  });
});
