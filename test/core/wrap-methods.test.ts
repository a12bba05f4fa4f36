import { VirtualClock } from '@bulwark/clock';
import { type ExecutionContext, type Operation, wrapMethods } from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import { deadline } from '@bulwark/deadline';
import { describe, expect, it } from 'vitest';

class FakeClient {
  readonly name = 'fake';
  calls: string[] = [];
  async query(sql: string, params: unknown[] = []): Promise<{ rows: unknown[] }> {
    this.calls.push(sql);
    return { rows: params };
  }
  async ping(): Promise<string> {
    return 'pong';
  }
  end(): string {
    return 'ended';
  }
}

class Counting extends BasePolicy {
  operations: Array<string | undefined> = [];
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    this.operations.push(ctx.operation);
    return fn(ctx);
  }
}

describe('wrapMethods', () => {
  it('runs the chosen methods through the policy and leaves the rest alone', async () => {
    const client = new FakeClient();
    const policy = new Counting(undefined);
    const wrapped = wrapMethods(client, policy, { methods: ['query'] });
    await expect(wrapped.query('select 1', [1])).resolves.toEqual({ rows: [1] });
    await expect(wrapped.ping()).resolves.toBe('pong');
    expect(wrapped.end()).toBe('ended');
    expect(wrapped.name).toBe('fake');
    expect(policy.operations).toEqual(['query']);
    expect(client.calls).toEqual(['select 1']);
  });

  it('names operations and lets a custom invoker see the context', async () => {
    const clock = new VirtualClock();
    const client = new FakeClient();
    const seen: Array<number | undefined> = [];
    const wrapped = wrapMethods(client, deadline(250, { clock }), {
      methods: ['query', 'ping'],
      operation: (m) => `db.${m}`,
      invoke: (call, ctx) => {
        seen.push(ctx.deadline);
        return call.method === 'query' ? call.target.query(String(call.args[0])) : call.target.ping();
      },
    });
    await wrapped.ping();
    await wrapped.query('select 2');
    expect(seen).toEqual([250, 250]);
    expect(client.calls).toEqual(['select 2']);
  });

  it('refuses callback-style calls, which the policy could not observe', () => {
    const wrapped = wrapMethods(new FakeClient(), new Counting(undefined), { methods: ['query'] });
    expect(() => (wrapped.query as (...a: unknown[]) => unknown)('select 1', [], () => {})).toThrow(
      /query\(\) was called with a callback/,
    );
  });

  it('lists every bad option with its value', () => {
    expect(() => wrapMethods(new FakeClient(), {} as never, { methods: ['nope' as never] })).toThrow(
      /wrapMethods\(\): invalid options \(2\):\n {2}- policy must be a policy, got \{\}\n {2}- methods\["nope"\] must be a method of the target, got undefined/,
    );
  });

  it('hands the signal callOptions takes out of the arguments to the policy: the call rejects with its reason and invoke sees the abort', async () => {
    const clock = new VirtualClock();
    const client = new FakeClient();
    const seen: Array<{ args: readonly unknown[]; aborted: unknown }> = [];
    let release: () => void = () => {};
    const wrapped = wrapMethods(client, deadline(10_000, { clock }), {
      methods: ['query'],
      callOptions: ({ args }) => {
        const last = args[args.length - 1] as { signal?: AbortSignal } | undefined;
        return typeof last === 'object' && last !== null && !Array.isArray(last)
          ? { args: args.slice(0, -1), signal: last.signal }
          : undefined;
      },
      invoke: (call, ctx) => {
        if (call.args[0] !== 'select 1')
          return call.target.query(String(call.args[0]), call.args[1] as unknown[]);
        return new Promise((resolve) => {
          release = () => resolve('late');
          ctx.signal.addEventListener('abort', () =>
            seen.push({ args: call.args, aborted: ctx.signal.reason }),
          );
        });
      },
    });
    const controller = new AbortController();
    const reason = new Error('gone');
    const call = (wrapped.query as (...a: unknown[]) => Promise<unknown>)('select 1', [7], {
      signal: controller.signal,
    }).catch((e: unknown) => e);
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(seen).toEqual([{ args: ['select 1', [7]], aborted: reason }]);
    release();
    // Without options, arguments pass through whole and nothing but the policy can abort.
    await expect(wrapped.query('select 2', [1])).resolves.toEqual({ rows: [1] });
    expect(client.calls).toEqual(['select 2']);
  });

  it('rejects a call with what callOptions throws, without running it', async () => {
    const client = new FakeClient();
    const policy = new Counting(undefined);
    const refused = new RangeError('bad options');
    const wrapped = wrapMethods(client, policy, {
      methods: ['query'],
      callOptions: () => {
        throw refused;
      },
    });
    await expect(wrapped.query('select 1')).rejects.toBe(refused);
    expect(policy.operations).toEqual([]);
    expect(client.calls).toEqual([]);
    expect(() => wrapMethods(client, policy, { methods: ['query'], callOptions: 5 as never })).toThrow(
      /callOptions must be a function, got 5/,
    );
  });
});
