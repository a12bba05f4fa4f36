import { InvalidOptionsError } from '@bulwark/core';
import { retry } from '@bulwark/retry';

try {
  // p-retry's name for the option: refused, with the bulwark name in the message.
  retry({ retries: 3 } as never);
} catch (error) {
  if (error instanceof InvalidOptionsError) {
    console.error(error.message);
    // retry(): invalid options (1):
    //   - retries: not an option; use maxAttempts, which counts the first call too
    //     (p-retry's retries: N is maxAttempts: N + 1) (got 3)
  }
}
