import { pipeline } from '@bulwark/core';
import { deadline, deadlineHeaders, readDeadlineHeaders, timeout, withDeadline } from '@bulwark/deadline';

// Five seconds for the whole operation, one second for each attempt.
const policy = pipeline(deadline(5_000), timeout(1_000));

export async function getUser(id: string): Promise<unknown> {
  return policy.execute(
    async (ctx) => {
      // Send the time left downstream, never an absolute time.
      const remaining =
        ctx.deadline === undefined ? Number.POSITIVE_INFINITY : ctx.deadline - ctx.clock.now();
      const response = await fetch(`http://127.0.0.1:8080/users/${id}`, {
        signal: ctx.signal,
        headers: deadlineHeaders(remaining, { safetyMarginMs: 10 }),
      });
      return response.json();
    },
    { operation: 'get-user' },
  );
}

// On the server: honour the budget the caller sent.
export async function handle(
  headers: Record<string, string | undefined>,
  work: () => Promise<void>,
): Promise<void> {
  const inbound = readDeadlineHeaders(headers); // throws InvalidDeadlineHeaderError if malformed
  if (inbound === undefined) return work();
  // Every bulwark call inside sees this deadline as ctx.deadline.
  return withDeadline(inbound.timeoutMs, work);
}
