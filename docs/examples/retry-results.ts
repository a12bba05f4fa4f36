import { retry } from '@bulwark/retry';

// Retry 503 and 429 responses as well as network errors, honouring Retry-After
// (delta-seconds) when the server sends one. @bulwark/fetch does all of this
// for you, including the HTTP-date form; this shows the primitive.
const policy = retry({
  retryOn: (outcome) => {
    if (!outcome.ok) return true;
    const response = outcome.value as Response;
    if (response.status !== 503 && response.status !== 429) return false;
    const seconds = Number(response.headers.get('retry-after'));
    return Number.isFinite(seconds) && seconds >= 0 ? { retry: true, delayMs: seconds * 1000 } : true;
  },
});

const response = await policy.execute((ctx) => fetch('http://search.internal/?q=x', { signal: ctx.signal }));
export const body = await response.text();
