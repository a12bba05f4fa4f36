import { BulwarkError } from '@bulwark/core';
import { formatMs, markRefusal } from '@bulwark/core/authoring';

/** Why a bulkhead refused a call. */
export type BulkheadRejectReason = 'queue-full' | 'queue-timeout';

/**
 * A call the bulkhead refused: every slot was taken and the queue was full
 * (`queue-full`), or the call waited in the queue longer than
 * `queueTimeoutMs` (`queue-timeout`). Built with `{ stack: false }` (a
 * bulkhead's `refusalStacks: false`), it has no stack trace.
 */
export class BulkheadRejectedError extends BulwarkError<'ERR_BULKHEAD_FULL'> {
  readonly reason: BulkheadRejectReason;
  /** The bulkhead's name, when it has one. */
  readonly bulkhead: string | undefined;

  constructor(
    reason: BulkheadRejectReason,
    detail: { limit: number; maxQueue: number; waitedMs?: number | undefined },
    name?: string,
    options?: { readonly stack?: boolean | undefined },
  ) {
    const who = name === undefined ? 'the bulkhead' : `bulkhead "${name}"`;
    const message =
      reason === 'queue-full'
        ? `call refused: ${who} is full (${detail.limit} running, ${detail.maxQueue} queued); shed load or raise maxConcurrent/maxQueue`
        : `call refused: it waited ${formatMs(detail.waitedMs ?? 0)} in the queue of ${who} (queueTimeoutMs) without a free slot`;
    super('ERR_BULKHEAD_FULL', message, { stack: options?.stack });
    this.reason = reason;
    this.bulkhead = name;
  }
}
markRefusal(BulkheadRejectedError);

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_BULKHEAD_FULL: BulkheadRejectedError;
  }
}
