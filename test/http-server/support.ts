// Minimal stand-ins for node:http objects and a bulkhead that records how each
// permit went, shared by the @bulwark/http-server unit tests.
import { EventEmitter } from 'node:events';
import type { BulkheadPermit, BulkheadPolicy } from '@bulwark/bulkhead';

/** Enough of a ServerResponse for admitRequest; `finish()` and `disconnect()` play the two ways it closes. */
export class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableEnded = false;
  finish(status = 200): void {
    this.statusCode = status;
    this.writableEnded = true;
    this.emit('close');
  }
  disconnect(): void {
    this.emit('close');
  }
}

const OUTCOMES = ['success', 'failure', 'dropped', 'release'] as const;

/** A bulkhead whose permits record their outcome in `outcomes`; `free` is how many slots are left. */
export function recordingBulkhead(free = Number.POSITIVE_INFINITY) {
  const outcomes: string[] = [];
  let left = free;
  const report = (outcome: string) => () => {
    left++;
    outcomes.push(outcome);
  };
  const policy = {
    tryAcquire(): BulkheadPermit | undefined {
      if (left === 0) return undefined;
      left--;
      return Object.fromEntries(
        OUTCOMES.map((outcome) => [outcome, report(outcome)]),
      ) as unknown as BulkheadPermit;
    },
  };
  return { policy: policy as unknown as BulkheadPolicy, outcomes };
}
