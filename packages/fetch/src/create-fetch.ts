import type { CircuitBreakerRegistry } from '@bulwark/circuit-breaker';
import { sleep } from '@bulwark/clock';
import { type ExecutionContext, type Outcome, remainingMs } from '@bulwark/core';
import { rootContext } from '@bulwark/core/authoring';
import {
  type DeadlinePolicy,
  deadline as deadlinePolicy,
  type TimeoutPolicy,
  timeout,
} from '@bulwark/deadline';
import type { HedgingPolicy } from '@bulwark/hedging';
import { isRetryableError, type RetryBudget, RetryPolicy, type RetryVerdict } from '@bulwark/retry';
import { attemptChain } from './attempt-chain.ts';
import { callChain } from './call-chain.ts';
import { OriginChooser, retarget } from './equivalent-origins.ts';
import { discardResponse, isInProgress } from './http.ts';
import type { CreateFetchOptions } from './options.ts';
import { resolveFetchOptions } from './options.ts';
import type { OriginBulkheads } from './origin-bulkheads.ts';
import { callPreparer, type PreparedCall } from './prepared-call.ts';
import { parseRetryAfter } from './retry-after.ts';
import { markStatus, requestAttributes, telemetry } from './telemetry.ts';
import { attemptSenders, BodyDeadline, raceHedged } from './transport.ts';

/**
 * What {@link createFetch} returns: a function with the signature and
 * behaviour of the global `fetch`, plus the parts it is built from, for
 * events and inspection.
 */
export interface ResilientFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The call's deadline (`deadlineMs`): subscribe to `onExpired`. */
  readonly deadline: DeadlinePolicy;
  /** The retry policy: subscribe to `onRetry`, `onGiveUp`, `onSuccess`. */
  readonly retry: RetryPolicy;
  /** The retry budget shared by every call of this fetch, or undefined when disabled. */
  readonly budget: RetryBudget | undefined;
  /** One circuit breaker per origin (`https://host:port`), or undefined when disabled. */
  readonly breakers: CircuitBreakerRegistry | undefined;
  /** One bulkhead per origin, or undefined when disabled. */
  readonly bulkheads: OriginBulkheads | undefined;
  /** The hedging policy (subscribe to `onHedge`, `onDenied`), or undefined when hedging is off. */
  readonly hedging: HedgingPolicy | undefined;
}

/** The wait before polling an in-progress 409 that has no usable `Retry-After`. */
const IN_PROGRESS_POLL_MS = 1_000;
/** The shortest wait between two polls, whatever `Retry-After` says. */
const MIN_POLL_MS = 100;

/** What a call's span learns from its attempts. */
interface CallTrace {
  attempts: number;
}

/**
 * A drop-in `fetch` with bulwark's policies around every call, outermost first:
 * an overall deadline (`deadlineMs`), your call-level `policies`, retries with
 * jittered backoff and a budget, hedging (when on), a circuit breaker and a
 * bulkhead per origin, a timeout per attempt (`attemptTimeoutMs`), and your
 * attempt-level `policies`.
 *
 * HTTP semantics:
 * - retries network errors, attempt timeouts, and 408, 429, 502, 503 and 504
 *   responses, waiting as long as `Retry-After` asks (delta-seconds or an
 *   HTTP-date) when the response has one;
 * - retries GET, HEAD, OPTIONS, TRACE, PUT and DELETE; any other method only
 *   when the request carries an `Idempotency-Key` (`idempotencyKeys: true`
 *   adds one, kept on every attempt); a body that is a stream is never retried;
 * - polls a bulwark server's in-progress 409 (`Idempotency-In-Progress: true`)
 *   after its `Retry-After` until the stored response comes, within the
 *   deadline, without spending retries on it (`pollInProgress`); other 409s
 *   are final;
 * - reads or cancels the body of every response it does not return;
 * - sends a retry or a hedge to another origin of the request's group of
 *   equivalent origins (`origins`) whose breaker admits it;
 * - sends the time left in `x-request-timeout-ms` and the attempt number in
 *   `x-retry-attempt`;
 * - errors the returned response's body with `DeadlineExceededError` when the
 *   deadline passes while it is being read.
 *
 * When retries run out, the last response is returned as it is (a 503 stays a
 * 503) and the last error is thrown. An open breaker throws
 * `BrokenCircuitError`, a full bulkhead `BulkheadRejectedError`, the deadline
 * `DeadlineExceededError`; the caller's abort rejects with the caller's reason.
 *
 * @throws InvalidOptionsError (a RangeError) listing every invalid option.
 */
export function createFetch(options: CreateFetchOptions = {}): ResilientFetch {
  const resolved = resolveFetchOptions(options);
  const {
    clock,
    name,
    budget,
    breakers,
    bulkheads,
    hedging: hedger,
    callPolicy,
    attemptPolicy,
    adaptiveTimeouts,
    attemptTimeoutMs,
    maxRetryAfterMs,
    retryStatuses,
    wallClock,
    maxDrainBytes,
    spans,
    fetch: baseFetch,
  } = resolved;

  const retryOn = (outcome: Outcome): RetryVerdict => {
    if (!outcome.ok) return isRetryableError(outcome.error);
    const response = outcome.value as Response;
    if (!retryStatuses.has(response.status)) return false;
    const waitMs = parseRetryAfter(response.headers.get('retry-after'), wallClock());
    // A wait longer than maxRetryAfterMs ends the loop as a give-up (reason
    // 'retry-after'): the retry policy is told maxRetryAfterMs below.
    return waitMs === undefined ? true : { retry: true, delayMs: waitMs };
  };

  // Every option retry() checks was checked above, so this cannot throw.
  const retryPolicy = new RetryPolicy({
    maxAttempts: resolved.maxAttempts,
    minAttemptMs: resolved.minAttemptMs,
    maxRetryAfterMs,
    backoff: resolved.backoff,
    budget,
    clock,
    random: resolved.random,
    retryOn,
  });

  const attemptTimeout: TimeoutPolicy | undefined =
    adaptiveTimeouts !== undefined || attemptTimeoutMs === Number.POSITIVE_INFINITY
      ? undefined
      : timeout(attemptTimeoutMs, { clock });
  if (breakers !== undefined && adaptiveTimeouts !== undefined) {
    // A tripped origin's latency is unknown once it is back (a queue behind
    // the fault, and the calls that waited for it arriving together): its
    // attempts get the whole attempt timeout until fresh answers are in.
    breakers.onStateChange((event) => {
      if (event.from === 'closed' && event.to === 'open') adaptiveTimeouts.peek(event.key)?.forget();
    });
  }
  // Built once: every attempt of every call runs through it.
  const chain = attemptChain({
    clock,
    breakers,
    bulkheads,
    adaptiveTimeouts,
    attemptTimeout,
    attemptPolicy,
  });
  // Built once too: every call runs through one of the two.
  const deadlineMs = resolved.deadlineMs;
  const callDeadline = deadlinePolicy(deadlineMs, { clock });
  const calls = callChain({ clock, deadline: callDeadline, callPolicy, retry: retryPolicy, budget });
  const attemptSpans = spans === 'attempts';
  const minAttemptMs = retryPolicy.minAttemptMs;
  const canRetry = retryPolicy.maxAttempts > 1;

  // A response the retry loop will not return: let go of its connection.
  retryPolicy.onRetry(({ outcome }) => {
    if (outcome.ok && outcome.value instanceof Response) discardResponse(outcome.value, maxDrainBytes);
  });

  const prepare = callPreparer({
    generateKey: resolved.generateIdempotencyKey,
    idempotencyKeys: resolved.idempotencyKeys,
    canRetry,
    pollInProgress: resolved.pollInProgress,
    hedging: hedger !== undefined,
    originGroups: resolved.originGroups,
  });

  const { sendOneAttempt, sendInSpan } = attemptSenders({
    baseFetch,
    attemptSpans,
    sendAttempt: resolved.attemptHeader,
    sendDeadline: resolved.deadlineHeader,
    safetyMarginMs: resolved.safetyMarginMs,
    maxDrainBytes,
  });

  /**
   * One attempt as the retries see it: hedged when the call is, and sent to
   * an origin of the call's group when it has one (see OriginChooser).
   * `route(call)` is the attempt to `call.origin`.
   */
  const attemptThrough = (
    call: PreparedCall,
    route: (to: PreparedCall) => (ctx: ExecutionContext) => Promise<Response>,
    deadline: BodyDeadline,
  ): ((ctx: ExecutionContext) => Promise<Response>) => {
    const group = call.group;
    let sent: (ctx: ExecutionContext) => Promise<Response>;
    if (group === undefined) sent = route(call);
    else {
      const chooser = new OriginChooser(call.origin, group, breakers);
      const routes = new Map<string, (ctx: ExecutionContext) => Promise<Response>>();
      sent = (ctx) => {
        const origin = chooser.next();
        let send = routes.get(origin);
        if (send === undefined) {
          let moved = call;
          if (origin !== call.origin) {
            const target = retarget(call.url, origin);
            moved = { ...call, origin, url: target, target };
          }
          send = route(moved);
          routes.set(origin, send);
        }
        return send(ctx);
      };
    }
    return call.hedged && hedger !== undefined ? raceHedged(hedger, sent, deadline, maxDrainBytes) : sent;
  };

  /** One attempt to `call.origin`: its breaker, its bulkhead, the attempt timeout, attempt policies, the transport; polled while in progress. */
  const attemptTo = (
    call: PreparedCall,
    input: string | URL | Request,
    deadline: BodyDeadline,
    outer: AbortSignal | undefined,
    traced: CallTrace | undefined,
  ): ((ctx: ExecutionContext) => Promise<Response>) => {
    const sendOnce = (ctx: ExecutionContext): Promise<Response> => {
      if (traced !== undefined) traced.attempts = ctx.attempt;
      return attemptSpans
        ? sendInSpan(call, input, ctx, deadline, outer)
        : sendOneAttempt(call, input, ctx, deadline, outer);
    };
    let guarded = sendOnce;
    if (chain !== undefined) {
      const origin = call.origin;
      guarded = (ctx: ExecutionContext) => chain.run(sendOnce, ctx, origin);
    }
    return call.pollable ? (ctx: ExecutionContext) => pollWhileInProgress(guarded, ctx) : guarded;
  };

  /**
   * Sends one attempt; while the server answers that an earlier request with
   * the same key is still running there, waits as its `Retry-After` asks and
   * sends again, through the breaker, the bulkhead and the attempt timeout each
   * time. Polls are not retries: the loop around takes nothing from the budget
   * or the attempts for them. The deadline bounds them.
   */
  const pollWhileInProgress = async (
    send: (ctx: ExecutionContext) => Promise<Response>,
    ctx: ExecutionContext,
  ): Promise<Response> => {
    for (;;) {
      const response = await send(ctx);
      if (!isInProgress(response)) return response;
      const hintMs = parseRetryAfter(response.headers.get('retry-after'), wallClock());
      const waitMs = Math.max(MIN_POLL_MS, hintMs ?? IN_PROGRESS_POLL_MS);
      if (waitMs > maxRetryAfterMs) return response;
      const left = remainingMs(ctx);
      // Never sleep into the deadline: the 409 is the answer then.
      if (left !== Number.POSITIVE_INFINITY && (waitMs >= left || left - waitMs < minAttemptMs)) {
        return response;
      }
      discardResponse(response, maxDrainBytes);
      // Ends at once with the signal's reason when the caller aborts.
      await sleep(waitMs, { clock: ctx.clock, signal: ctx.signal });
    }
  };

  // Not async itself: the call without spans is one async function (callThrough), as before.
  const resilientFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let call: PreparedCall | undefined;
    try {
      call = prepare(input, init);
      if (call === undefined) return baseFetch(input, init);
    } catch (error) {
      return Promise.reject(error);
    }
    // Spans off, or no tracer provider: no span, and nothing built for one.
    if (spans === false || !telemetry.tracing) return callThrough(call, input, init, undefined);
    const traced: CallTrace = { attempts: 0 };
    return telemetry.inSpan(
      `${name} ${call.method}`,
      { kind: 'internal', attributes: () => requestAttributes(call.method, call.url) },
      (span) => {
        const pending = callThrough(call, input, init, span === undefined ? undefined : traced);
        if (span === undefined) return pending;
        return pending.then(
          (response) => {
            span.setAttribute('bulwark.attempts', traced.attempts);
            return markStatus(span, response);
          },
          (error: unknown) => {
            span.setAttribute('bulwark.attempts', traced.attempts);
            throw error;
          },
        );
      },
    );
  };

  const callThrough = async (
    call: PreparedCall,
    input: string | URL | Request,
    init: RequestInit | undefined,
    traced: CallTrace | undefined,
  ): Promise<Response> => {
    // As with fetch: init.signal replaces the Request's own; null means none.
    const callerSignal = init?.signal !== undefined ? (init.signal ?? undefined) : call.request?.signal;
    if (callerSignal?.aborted) throw callerSignal.reason;
    // The caller's signal is followed through a signal of the call's own, so
    // that the listeners this call adds never land on the caller's signal,
    // which may live much longer than the call; the body's deadline ends it.
    let joined: AbortSignal | undefined;
    let joinedUntil: AbortController | undefined;
    if (callerSignal !== undefined) {
      joinedUntil = new AbortController();
      joined = AbortSignal.any([callerSignal, joinedUntil.signal]);
    }
    const body = new BodyDeadline(clock.now(), deadlineMs, joinedUntil);
    // A body's read follows the caller's signal through that signal of the
    // call's own; the body's deadline aborts the answering attempt itself.
    const attempt = attemptThrough(call, (to) => attemptTo(to, input, body, joined, traced), body);
    let response: Response;
    try {
      response = await calls.run(
        call.retryable,
        attempt,
        rootContext(clock, { signal: joined, operation: name, idempotencyKey: call.key }),
        body,
      );
    } catch (error) {
      // Nothing of this call will be read: let go of a body a policy still
      // held (or one that comes later) and of the call's joined signal.
      body.end(error);
      throw error;
    }
    if (response.body !== null) body.watch(clock);
    else body.release();
    return response;
  };

  return Object.defineProperties(resilientFetch, {
    deadline: { value: callDeadline, enumerable: true },
    retry: { value: retryPolicy, enumerable: true },
    budget: { value: budget, enumerable: true },
    breakers: { value: breakers, enumerable: true },
    bulkheads: { value: bulkheads, enumerable: true },
    hedging: { value: hedger, enumerable: true },
    name: { value: 'resilientFetch' },
  }) as ResilientFetch;
}
