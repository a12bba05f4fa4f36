import { hedging } from '@bulwark/hedging';

const policy = hedging({ delayMs: 100 }); // a second attempt if the first takes over 100 ms
policy.onHedge(({ attempt, trigger }) => console.debug(`hedge ${attempt} (${trigger})`));
export const page = await policy.execute((ctx) => fetch('http://a.internal/page', { signal: ctx.signal }));
