// The policy and the permit judge a call alike: run() takes a slot, runs the
// function, and reports through the permit, so what a limit learns from a call
// does not depend on whether a pipeline or a server plugin made it.
import {
  type BulkheadPolicy,
  BulkheadRejectedError,
  bulkhead,
  type LimitSample,
  type LimitSource,
} from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError, type ExecutionContext, NoopPolicy, pipeline } from '@bulwark/core';
import { runWithDeadline } from '@bulwark/core/authoring';
import { timeout } from '@bulwark/deadline';
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

describe('a bulkhead around a timeout', () => {
  it('frees its slot as the attempt succeeds, fails or times out', async () => {
    const clock = new VirtualClock();
    const slots = bulkhead({ maxConcurrent: 1, clock });
    const guarded = pipeline(slots, timeout(100, { clock }));
    let release!: (value: string) => void;
    const ok = guarded.execute(() => new Promise<string>((resolve) => (release = resolve)));
    expect(slots.active).toBe(1);
    release('done');
    expect(await ok).toBe('done');
    expect(slots.active).toBe(0);
    await expect(guarded.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(slots.active).toBe(0);
    const slow = guarded.execute(() => new Promise<never>(() => {})).catch((e: unknown) => e);
    expect(slots.active).toBe(1);
    await clock.advance(100);
    expect(await slow).toBeInstanceOf(DeadlineExceededError);
    expect(slots.active).toBe(0);
    expect(slots.stats()).toMatchObject({ admitted: 3 });
  });
});

describe("a fixed bulkhead's execute() and run()", () => {
  /** Calls through `enter`: one that resolves, one that rejects, one that throws synchronously, each seen while running. */
  async function observe(enter: (fn: (ctx: ExecutionContext) => unknown) => Promise<unknown>) {
    const clock = new VirtualClock();
    const slots = bulkhead({ maxConcurrent: 2, maxQueue: 1, clock });
    const seen: unknown[] = [];
    const run = (fn: (ctx: ExecutionContext) => unknown) =>
      runWithDeadline(clock.now() + 250, clock, () => enter.call(slots, fn));
    const during = <T>(ctx: ExecutionContext, then: T): T => {
      seen.push([slots.active, ctx.deadline, ctx.attempt, ctx.signal.aborted]);
      return then;
    };
    seen.push(await run(async (ctx) => during(ctx, 'value')));
    seen.push(
      await run(async (ctx) => during(ctx, Promise.reject(new Error('down')))).catch((e) => String(e)),
    );
    seen.push(
      await run((ctx) => {
        throw during(ctx, new Error('sync'));
      }).catch((e) => String(e)),
    );
    seen.push(slots.active, slots.stats());
    return seen;
  }

  it('take, release and count a free slot alike, with the same context', async () => {
    const viaExecute = await observe(function (this: BulkheadPolicy, fn) {
      return this.execute(fn);
    });
    const viaPipeline = await observe(function (this: BulkheadPolicy, fn) {
      return pipeline(this, new NoopPolicy(this.clock)).execute(fn);
    });
    expect(viaExecute).toEqual(viaPipeline);
    expect(viaExecute).toEqual([
      [1, 250, 1, false],
      'value',
      [1, 250, 1, false],
      'Error: down',
      [1, 250, 1, false],
      'Error: sync',
      0,
      { limit: 2, active: 0, queued: 0, admitted: 3, rejected: 0, queueTimeouts: 0 },
    ]);
  });
});
