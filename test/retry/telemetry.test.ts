import { VirtualClock } from '@bulwark/clock';
import { constant, retry } from '@bulwark/retry';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

describe('retry telemetry', () => {
  it('counts attempts and give-ups, and adds a span event per retry', async () => {
    const otel = installOtel({ tracing: true });

    const clock = new VirtualClock();
    const policy = retry({ clock, backoff: constant(10) });
    const fail = () => {
      throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    };
    await trace.getTracer('test').startActiveSpan('call', async (span) => {
      const done = policy.execute(fail).catch(() => undefined);
      await clock.runAll();
      await done;
      span.end();
    });

    const collected = await otel.collect();
    expect(collected.sum('bulwark.retry.attempts', 'retry')).toEqual({ false: 1, true: 2 });
    expect(collected.points('bulwark.retry.giveups').map((p) => [p.reason, p.value])).toEqual([
      ['attempts', 1],
    ]);
    expect(otel.events()).toEqual([
      ['bulwark.retry', { attempt: 1, delay_ms: 10 }],
      ['bulwark.retry', { attempt: 2, delay_ms: 10 }],
    ]);
  });
});
