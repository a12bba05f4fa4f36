import { VirtualClock } from '@bulwark/clock';
import {
  type ExecutionContext,
  InvalidOptionsError,
  isBulwarkError,
  type Operation,
  pipeline,
} from '@bulwark/core';
import { BasePolicy, DerivedContext, KeyedRegistry, keyed } from '@bulwark/core/authoring';
import { describe, expect, it } from 'vitest';

/** A member policy that records the contexts it ran in and tags the result with its key. */
class Tagging extends BasePolicy {
  readonly seen: ExecutionContext[] = [];
  readonly key: string;
  constructor(key: string, clock: VirtualClock) {
    super(clock);
    this.key = key;
  }
  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    this.seen.push(ctx);
    return `${this.key}:${String(await fn(ctx))}` as T;
  }
}

class TenantContext extends DerivedContext {
  readonly tenant: string;
  constructor(parent: ExecutionContext, tenant: string) {
    super(parent, parent.attempt, parent.idempotencyKey);
    this.tenant = tenant;
  }
}

function setup() {
  const clock = new VirtualClock();
  const made: string[] = [];
  const registry = new KeyedRegistry<string, Tagging>({
    maxKeys: 10,
    create: (key) => {
      made.push(key);
      return new Tagging(key, clock);
    },
  });
  const policy = keyed(registry, (ctx) => (ctx as TenantContext).tenant, { clock });
  return { clock, made, registry, policy };
}

describe('keyed()', () => {
  it('rejects with a CallbackError naming keyOf when keyOf throws, without making a member', async () => {
    const { clock, made, registry } = setup();
    const bug = new Error('no tenant');
    const policy = keyed(
      registry,
      () => {
        throw bug;
      },
      { clock },
    );
    const error = await policy
      .execute(() => 1)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(true);
    expect((error as { callback?: string }).callback).toBe('keyOf');
    expect((error as Error).cause).toBe(bug);
    expect(made).toEqual([]);
  });

  it('runs each call under the member its key picks, made on first use, in the same context', async () => {
    const { clock, made, registry, policy } = setup();
    const root = pipeline().execute((ctx) => ctx);
    const parent = await root;
    const a = new TenantContext(parent, 'a');
    const b = new TenantContext(parent, 'b');
    expect(await policy.run(() => 1, a)).toBe('a:1');
    expect(await policy.run(() => 2, b)).toBe('b:2');
    expect(await policy.run(() => 3, a)).toBe('a:3');
    expect(made).toEqual(['a', 'b']);
    expect(registry.get('a').seen).toEqual([a, a]);
    expect(registry.get('b').seen).toEqual([b]);
    expect(policy.clock).toBe(clock);
  });

  it('composes into a pipeline, where the key is read from the context the outer policies pass on', async () => {
    const { registry, policy } = setup();
    const outer = new (class extends BasePolicy {
      run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
        return fn(new TenantContext(ctx, 'from-outer'));
      }
    })(policy.clock);
    const result = await pipeline(outer, policy).execute((ctx) => (ctx as TenantContext).tenant);
    expect(result).toBe('from-outer:from-outer');
    expect(registry.size).toBe(1);
  });

  it("passes the caller's abort through a derived context to the member's call", async () => {
    const controller = new AbortController();
    const { policy } = setup();
    const pending = pipeline(
      new (class extends BasePolicy {
        run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
          return fn(new TenantContext(ctx, 't'));
        }
      })(policy.clock),
      policy,
    ).execute(
      (ctx) =>
        new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      {
        signal: controller.signal,
      },
    );
    controller.abort(new Error('caller left'));
    await expect(pending).rejects.toThrow('caller left');
  });

  it('refuses a registry without get(), a keyOf that is not a function and unknown options, naming each value', () => {
    let caught: unknown;
    try {
      keyed({} as never, 'origin' as never, { clok: 1 } as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    const message = (caught as Error).message;
    expect(message).toContain('keyed()');
    expect(message).toMatch(/registry .*got \{\}/);
    expect(message).toMatch(/keyOf .*got "?origin"?/);
    expect(message).toContain('clok');
  });
});
