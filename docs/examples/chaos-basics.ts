import { injectFault, injectLatency, injectOutcome } from '@bulwark/chaos';
import { seededRandom } from '@bulwark/clock';
import { pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { retry } from '@bulwark/retry';

const rehearsal = process.env.CHAOS === '1';
const random = seededRandom(42); // the same seed gives the same faults, run after run

// 5% of calls wait 2 s, 5% fail with a connection reset, 2% answer 503:
// does the pipeline around them keep the service within its deadline?
const slow = injectLatency({ rate: 0.05, latencyMs: 2_000, random, enabled: rehearsal });
const resets = injectFault({
  rate: 0.05,
  random,
  enabled: rehearsal,
  error: () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
});
const unavailable = injectOutcome({
  rate: 0.02,
  random,
  enabled: rehearsal,
  outcome: { ok: true, value: new Response(null, { status: 503 }) },
});

export const policy = pipeline(deadline(1_500), retry(), timeout(500), slow, resets, unavailable);

// Switch at run time, for example from an admin endpoint:
export function setChaos(on: boolean, rate: number): void {
  for (const p of [slow, resets]) {
    p.enabled = on;
    p.rate = rate;
  }
}
