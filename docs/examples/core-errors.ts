import { type BulwarkError, isBulwarkError } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';

// A custom error of your own, known to isBulwarkError through declaration merging.
declare module '@bulwark/core' {
  interface BulwarkErrorMap {
    ERR_QUOTA_SPENT: BulwarkError<'ERR_QUOTA_SPENT'> & { readonly quota: string };
  }
}

try {
  await deadline(2_000).execute(({ signal }) => fetch('https://example.com/', { signal }));
} catch (error) {
  if (isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')) {
    // Narrowed to DeadlineExceededError: `source` and `budgetMs` are typed.
    console.warn(`${error.source} ran out after ${error.budgetMs} ms`);
  } else if (isBulwarkError(error, 'ERR_QUOTA_SPENT')) {
    console.warn(`quota ${error.quota} spent`);
  } else throw error;
}
