import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { rateLimit } from '@bulwark/rate-limit';

// A partner API allows 5 calls per second. Calls over the limit wait for their
// slot (in order) while the 2 s deadline allows, and are refused otherwise.
export const partner = pipeline(
  deadline(2_000),
  rateLimit({ ratePerSecond: 5, burst: 1, wait: true, maxWaitMs: 1_500 }),
);
