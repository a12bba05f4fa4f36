import type { Clock } from '@bulwark/clock';
import type { Policy as CorePolicy, ExecuteOptions, ExecutionContext } from '@bulwark/core';

// The shape of every bulwark policy, as @bulwark/core declares it.
export interface Policy {
  execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T>;
  run<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, ctx: ExecutionContext): T | PromiseLike<T>;
  readonly clock: Clock;
}

// Assignable both ways, so this page cannot drift from the real interface.
export const sameShape: [Policy, CorePolicy] extends [CorePolicy, Policy] ? true : false = true;
