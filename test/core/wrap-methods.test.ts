import { VirtualClock } from '@bulwark/clock';
import { BasePolicy, type ExecutionContext, type Operation, wrapMethods } from '@bulwark/core';
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
});
