// Deadlines, timeouts and hedges wait on one shared deadline timer per clock,
// whose callbacks run in the async context of whichever call armed its
// platform timer. What they record or start must still belong to their own
// call: the span event of a deadline that ends a call lands on that call's
// span, with calls overlapping. Real SDK, real timers.

import { trace } from '@opentelemetry/api';
import { constant, deadline, pipeline, retry, timeout } from 'bulwark';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

const hang = () => new Promise<never>(() => {});
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('span events from the shared deadline timer', () => {
  it("land on their own call's span when calls overlap", async () => {
    const otel = installOtel({ tracing: true });
    const tracer = trace.getTracer('e2e');
    const call = (name: string, policy: ReturnType<typeof pipeline>) =>
      tracer.startActiveSpan(name, (span) =>
        policy.execute(hang).then(
          () => span.end(),
          () => span.end(),
        ),
      );
    // A arms the shared timer first; B's and C's expiries are due after A's,
    // so their entries fire from timers A's callbacks re-armed.
    const calls = [
      call('A', pipeline(deadline(30))),
      pause(3).then(() => call('B', pipeline(deadline(80)))),
      pause(6).then(() =>
        call('C', pipeline(deadline(5_000), retry({ maxAttempts: 2, backoff: constant(1) }), timeout(50))),
      ),
    ];
    await Promise.all(calls);
    const events = Object.fromEntries(
      otel
        .spans()
        .map((span) => [
          span.name,
          span.events.map(
            (event) =>
              `${event.name} ${String(event.attributes?.source)} ${String(event.attributes?.attempt)}`,
          ),
        ]),
    );
    expect(events).toEqual({
      A: ['bulwark.deadline.exceeded deadline 1'],
      B: ['bulwark.deadline.exceeded deadline 1'],
      C: [
        'bulwark.deadline.exceeded timeout 1',
        'bulwark.retry undefined 1',
        'bulwark.deadline.exceeded timeout 2',
      ],
    });
  });
});
