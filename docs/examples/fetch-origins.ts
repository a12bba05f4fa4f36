import { createFetch } from '@bulwark/fetch';

// Three replicas of the catalogue: a retry (or a hedge) goes to another one
// whose breaker admits it, never straight back to the one that just failed.
export const fetch = createFetch({
  origins: [['https://catalogue-a.internal', 'https://catalogue-b.internal', 'https://catalogue-c.internal']],
});

// Sent to catalogue-a first; a retry goes to https://catalogue-b.internal/items/42?full=1.
const response = await fetch('https://catalogue-a.internal/items/42?full=1');
export const item = await response.json();
