import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { fromOpossum } from '@bulwark/interop/opossum';
import { retry } from '@bulwark/retry';
import CircuitBreaker from 'opossum';

// An existing breaker, bound to its own action, used all over the codebase.
const controller = new AbortController();
const userBreaker = new CircuitBreaker(
  async (id: string) => {
    const response = await fetch(`http://users.internal/users/${id}`, { signal: controller.signal });
    return (await response.json()) as { name: string };
  },
  { name: 'users', timeout: 1_000, resetTimeout: 10_000, abortController: controller },
);

// Same parameters as userBreaker.fire, with bulwark semantics.
const getUser = fromOpossum(userBreaker);

const policy = pipeline(deadline(3_000), retry());
try {
  // withContext(ctx) honours the pipeline's deadline and the caller's signal.
  const user = await policy.execute((ctx) => getUser.withContext(ctx)('u-42'));
  console.warn(`hello, ${user.name}`);
} catch (error) {
  if (isBulwarkError(error, 'ERR_CIRCUIT_OPEN')) {
    console.warn(`users is down; try again in ${error.retryAfterMs} ms`);
  } else {
    throw error;
  }
}
