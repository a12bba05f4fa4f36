import { type ExecutionContext, type Operation, pipeline, remainingMs } from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import { deadline } from '@bulwark/deadline';

/** Logs each call and how much of its deadline was left when it started. */
export class LoggingPolicy extends BasePolicy {
  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    console.log(`${ctx.operation ?? 'call'} attempt ${ctx.attempt}, ${remainingMs(ctx)} ms left`);
    return fn(ctx);
  }
}

export const policy = pipeline(deadline(2_000), new LoggingPolicy(undefined));
