import { pipeline } from '@bulwark/core';
import { deadline, deadlineHeaders, readDeadlineHeaders, timeout, withDeadline } from '@bulwark/deadline';

const policy = pipeline(deadline(5_000), timeout(1_000)); // 5 s overall, 1 s per attempt
const inbound = readDeadlineHeaders({ 'grpc-timeout': '800m' }); // { timeoutMs: 800, header: 'grpc-timeout' }
await withDeadline(inbound?.timeoutMs ?? 10_000, () =>
  policy.execute((ctx) => fetch('http://a.internal', { signal: ctx.signal })),
);
deadlineHeaders(750, { safetyMarginMs: 10 }); // { 'x-request-timeout-ms': '740' }
