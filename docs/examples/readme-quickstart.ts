import { pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';

const policy = pipeline(deadline(5_000), timeout(1_000));
export const user = await policy.execute((ctx) => fetch('http://users.internal/42', { signal: ctx.signal }));
