import { isBulwarkError } from '@bulwark/core';
import { rateLimit } from '@bulwark/rate-limit';

// 20 calls at once after a quiet spell, 100 per second sustained, per tenant.
const limit = rateLimit({ ratePerSecond: 100, burst: 20, key: (ctx) => ctx.operation ?? 'anonymous' });

export async function report(tenant: string): Promise<Response | 'try later'> {
  try {
    return await limit.execute((ctx) => fetch('http://reports.internal/run', { signal: ctx.signal }), {
      operation: tenant,
    });
  } catch (error) {
    if (isBulwarkError(error, 'ERR_RATE_LIMITED')) return 'try later'; // error.retryAfterMs says when
    throw error;
  }
}
