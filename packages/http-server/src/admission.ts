import type { ServerResponse } from 'node:http';
import type { BulkheadPermit } from '@bulwark/bulkhead';
import { type HeaderSource, readInboundDeadline, withDeadline } from '@bulwark/deadline';
import { type HttpResponse, problemResponse } from '@bulwark/idempotency';
import { type BulwarkRequestContext, RequestScope } from './context.ts';
import type { ResolvedServerOptions } from './options.ts';
import { REFUSED, refusalsCounter } from './telemetry.ts';

/**
 * What admission needs from a response: node:http's `ServerResponse` (Fastify's
 * `reply.raw`, Express's `res`) has it. Node.js emits `close` exactly once,
 * whether the response was ended or the client went away first.
 */
export interface ClosingResponse {
  readonly writableEnded: boolean;
  readonly statusCode: number;
  once(event: 'close', listener: () => void): unknown;
}

/** The outcome of {@link admitRequest}. */
export type Admission =
  /** Serve the request; `context` is its deadline, signal and bulkhead slot. */
  | { readonly admitted: true; readonly context: RequestScope }
  /** Answer `response` (400, 503 or 504 problem+json) and do not run the handler. */
  | { readonly admitted: false; readonly response: HttpResponse };

/** The 503 of a shed request. */
function overloaded(retryAfterSeconds: number): HttpResponse {
  return problemResponse(
    503,
    {
      type: 'urn:bulwark:server:overloaded',
      title: 'The server is at capacity',
      detail: 'The request was not processed. Retry it after the time given in Retry-After.',
    },
    retryAfterSeconds,
  );
}

/**
 * The 504 of a request whose deadline passed: before its handler started, or
 * at the deadline while it was still being served (`detail` says which).
 */
export function deadlineExpired(detail: string): HttpResponse {
  return problemResponse(504, {
    type: 'urn:bulwark:deadline:expired',
    title: 'The deadline of the request passed before it could be processed',
    detail,
  });
}

/**
 * Ends a response whose request's deadline passed while it was still being
 * served (the body was being read, a hook or the handler ran, or the store
 * had not answered): 504 problem+json with `Connection: close` when nothing
 * was sent yet, so a client still sending its body is cut off too; the
 * connection destroyed when the response had started. Does nothing once the
 * response has ended.
 */
export function answerExpired(res: ServerResponse, context: BulwarkRequestContext): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const budget = context.deadline?.budgetMs;
  const response = deadlineExpired(
    `The ${budget ?? 0} ms budget ran out before the response was ready. The request may have been partly processed.`,
  );
  res.writeHead(response.status, { ...response.headers, connection: 'close' }).end(response.body);
}

/**
 * Decides, on a request's arrival, whether to serve it: a malformed deadline
 * header gets 400 naming it, a budget spent before arrival 504, and a full
 * bulkhead 503 with `Retry-After` (a slot is taken with `tryAcquire()`, never
 * queued). An admitted request's context closes when `response` emits `close`:
 * its signal aborts if the client went away first, its deadline timer is
 * dropped, and its slot goes back exactly once. At the deadline, if the
 * response has not closed by then, the signal aborts, the slot goes back and
 * `onTimeout` ends the request (for a node:http response, {@link answerExpired}).
 * Every refusal is counted in `bulwark.server.refusals`.
 */
export function admitRequest(
  headers: HeaderSource,
  response: ClosingResponse,
  options: ResolvedServerOptions,
  onTimeout?: (context: RequestScope) => void,
): Admission {
  const inbound = readInboundDeadline(headers, options);
  if (inbound.kind !== 'budget') {
    refusalsCounter.add(1, inbound.kind === 'invalid' ? REFUSED.invalidDeadline : REFUSED.deadlineExpired);
    return { admitted: false, response: problemResponse(inbound.status, inbound.problem) };
  }
  let permit: BulkheadPermit | undefined;
  if (options.bulkhead !== undefined) {
    permit = options.bulkhead.tryAcquire();
    if (permit === undefined) {
      refusalsCounter.add(1, REFUSED.overloaded);
      return { admitted: false, response: overloaded(options.retryAfterSeconds) };
    }
  }
  const context = new RequestScope(inbound.timeoutMs, inbound.header, permit, options.clock, onTimeout);
  response.once('close', () => context.close(response.writableEnded, response.statusCode));
  return { admitted: true, context };
}

/**
 * Calls `proceed` inside the request's deadline (`withDeadline`), so
 * `currentDeadline()` and every policy the handler runs see it; right away
 * when the request has no deadline (or no context). Returns the 504 to answer
 * instead, without calling `proceed`, when the deadline has already passed,
 * for example while the body was read.
 */
export function enterDeadline(
  context: BulwarkRequestContext | null | undefined,
  proceed: () => void,
): HttpResponse | undefined {
  const deadline = context?.deadline;
  if (deadline === undefined) {
    proceed();
    return undefined;
  }
  if (deadline.expired()) {
    refusalsCounter.add(1, REFUSED.deadlineExpired);
    return deadlineExpired(`The ${deadline.budgetMs} ms budget ran out before the handler started.`);
  }
  withDeadline(deadline.remaining(), proceed, { clock: deadline.clock });
  return undefined;
}
