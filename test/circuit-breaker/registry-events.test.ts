import { circuitBreakers, consecutive, type KeyedStateChangeEvent } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

const fail = (): Promise<never> => Promise.reject(new Error('down'));

describe('circuitBreakers().onStateChange', () => {
  it('reports every breaker’s transitions with its key, breakers made after subscribing included', async () => {
    const clock = new VirtualClock();
    const registry = circuitBreakers({ name: 'api', clock, trip: consecutive(1), openMs: 100 });
    const early = registry.get('a');
    const seen: KeyedStateChangeEvent[] = [];
    const subscription = registry.onStateChange((e) => seen.push(e));
    await early.execute(fail).catch(() => {});
    await registry
      .get('b')
      .execute(fail)
      .catch(() => {});
    await clock.advance(100);
    await registry.get('b').execute(() => Promise.resolve('ok'));
    expect(seen.map((e) => `${e.key} ${e.from}->${e.to} ${e.reason}`)).toEqual([
      'a closed->open trip',
      'b closed->open trip',
      'b open->half-open open-elapsed',
      'b half-open->closed probe-success',
    ]);
    expect(seen[0]!.name).toBe('api');
    subscription[Symbol.dispose]();
    registry.get('a').reset();
    expect(seen).toHaveLength(4);
  });

  it('reports each transition once to each listener, however many subscribe and whenever', async () => {
    const clock = new VirtualClock();
    const registry = circuitBreakers({ clock, trip: consecutive(1), openMs: 100 });
    const made = registry.get('a');
    const first: string[] = [];
    const second: string[] = [];
    registry.onStateChange((e) => first.push(`${e.key} ${e.to}`));
    registry.onStateChange((e) => second.push(`${e.key} ${e.to}`));
    await made.execute(fail).catch(() => {});
    await registry
      .get('b')
      .execute(fail)
      .catch(() => {});
    expect(first).toEqual(['a open', 'b open']);
    expect(second).toEqual(first);
  });

  it('a listener that throws does not break the breaker or the other listeners', async () => {
    const clock = new VirtualClock();
    const registry = circuitBreakers({ clock, trip: consecutive(1), openMs: 100 });
    const seen: string[] = [];
    registry.onStateChange(() => {
      throw new Error('listener bug');
    });
    registry.onStateChange((e) => seen.push(e.key));
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }): void => {
      warnings.push(w.code ?? w.name);
    };
    process.on('warning', onWarning);
    try {
      await registry
        .get('x')
        .execute(fail)
        .catch(() => {});
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(registry.get('x').state).toBe('open');
    expect(seen).toEqual(['x']);
    expect(warnings).toContain('BULWARK_LISTENER_ERROR');
  });
});
