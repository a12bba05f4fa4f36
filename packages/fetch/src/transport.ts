import type { Clock } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import { DeadlineExceededError, type ExecutionContext, remainingMs } from '@bulwark/core';
import { followAbort } from '@bulwark/core/authoring';
import { DEADLINE_HEADERS, encodeTimeoutMs } from '@bulwark/deadline';
import type { HedgingPolicy } from '@bulwark/hedging';
import { discardResponse, isInProgress, RETRY_ATTEMPT_HEADER } from './http.ts';
import type { FetchFunction } from './options.ts';
import type { PreparedCall } from './prepared-call.ts';
import { type Attributes, markStatus, requestAttributes, telemetry } from './telemetry.ts';

const ONCE = Object.freeze({ once: true });
/** The reason a call's own signal (joined to the caller's) ends with once the call has returned with nothing left to read. */
const CALL_ENDED = new DOMException('the call has ended', 'AbortError');
const UNREF = Object.freeze({ unref: true });
/** The header that carries the time left, as a record key: in lower case, as a Headers holds it. */
const REQUEST_TIMEOUT_HEADER = DEADLINE_HEADERS.requestTimeoutMs.toLowerCase();

/**
 * What a call's deadline still bounds once the call has returned: the read of
 * the returned response's body. The call itself runs under a `deadline()`
 * policy, whose scope ends when the call settles; a body is read after that,
 * so when a response with a body is returned this watch takes over: one entry
 * in the clock's shared deadline timer until the deadline passes (nothing
 * tells it when the caller has finished with the body). It keeps only what
 * the abort needs: this object and the answering attempt's controller (whose
 * signal the underlying fetch follows), plus, when the caller gave a signal,
 * the controller that ends the call's signal joined to the caller's (which
 * that body follows) at the deadline. Not the request, the response, the
 * call's closures, contexts or the policies' state.
 *
 * A call that fails instead lets go at once ({@link end}): the body of a
 * response nobody will return (one a policy still held when the deadline
 * passed, or one that comes after the call ended) is aborted, and so is the
 * call's signal joined to the caller's.
 */
export class BodyDeadline {
  /** The controller of the attempt whose response (with a body) came last: it aborts that body's read. */
  #body: AbortController | undefined = undefined;
  /** The call's deadline (its `deadline()` scope's); undefined when it has none. */
  #at: number | undefined = undefined;
  readonly #startedAt: number;
  readonly #deadlineMs: number;
  /** Ends the call's signal joined to the caller's, when the caller gave one. */
  readonly #joined: AbortController | undefined;
  /** Why the call failed, once it has: a body that comes later is aborted with it. */
  #ended: { reason: unknown } | undefined = undefined;

  constructor(startedAt: number, deadlineMs: number, joined: AbortController | undefined) {
    this.#startedAt = startedAt;
    this.#deadlineMs = deadlineMs;
    this.#joined = joined;
  }

  /** The call runs under the deadline `at` (its `deadline()` scope's). */
  seen(at: number | undefined): void {
    this.#at = at;
  }

  /** An attempt's response with a body came: its controller aborts that body's read. */
  register(controller: AbortController): void {
    if (this.#ended !== undefined) controller.abort(this.#ended.reason);
    else this.#body = controller;
  }

  /** The call returned a response with a body: abort its read when the deadline passes. */
  watch(clock: Clock): void {
    const at = this.#at;
    if (at === undefined || this.#body === undefined) return;
    // Unref'd: the entry waits for a body nobody may read, and must not hold the process.
    deadlineTimers(clock).schedule(at, () => this.#expire(at), UNREF);
  }

  /**
   * The call returned a response without a body: nothing is left to abort,
   * so end the call's signal joined to the caller's, on which the discarded
   * bodies of earlier attempts would otherwise keep their listeners for as
   * long as the caller's signal lives.
   */
  release(): void {
    this.#body = undefined;
    this.#joined?.abort(CALL_ENDED);
  }

  /** The call failed with `reason`: abort what it still holds, and any body that comes later. */
  end(reason: unknown): void {
    this.#ended = { reason };
    const body = this.#body;
    this.#body = undefined;
    body?.abort(reason);
    this.#joined?.abort(reason);
  }

  #expire(at: number): void {
    // The budget that ran out: deadlineMs, or what an earlier enclosing
    // deadline had left when the call began (read a moment before the
    // deadline policy read it: within a millisecond of deadlineMs is deadlineMs).
    const left = at - this.#startedAt;
    const budgetMs = Math.abs(left - this.#deadlineMs) < 1 ? this.#deadlineMs : Math.max(0, left);
    const error = new DeadlineExceededError('deadline', budgetMs);
    // The body first, so that it ends with this error rather than with the
    // reason the call's signal would pass on to it.
    this.#body?.abort(error);
    this.#body = undefined;
    this.#joined?.abort(error);
  }
}

/**
 * Aborts `target` with `signal`'s reason when `signal` aborts. A function of
 * its own so that the listener holds only these two, not the attempt's state.
 */
function abortOnAbort(signal: AbortSignal, target: AbortController): void {
  if (signal.aborted) target.abort(signal.reason);
  else signal.addEventListener('abort', () => target.abort(signal.reason), ONCE);
}

/**
 * The controller of each hedged attempt's response with a body: the deadline
 * watches the winner's only, and the winner is known once the race is over.
 */
const hedgedBodies = new WeakMap<Response, AbortController>();

/**
 * One attempt as a race of hedged attempts under `hedger`. Every response an
 * attempt brings that does not win is discarded (read out or cancelled): one
 * that came before the race ended when the race ends, one that comes later
 * at once. The winner's body is the one the deadline aborts.
 *
 * An attempt answered with an in-progress 409 (the server runs an earlier
 * attempt of this call with the same key: the first one, usually) does not
 * win while another attempt of the race is running: its answer is held until
 * none is, and dropped if the race ends first.
 */
export function raceHedged(
  hedger: HedgingPolicy,
  send: (ctx: ExecutionContext) => Promise<Response>,
  deadline: BodyDeadline | undefined,
  maxDrainBytes: number,
): (ctx: ExecutionContext) => Promise<Response> {
  return (ctx) => {
    const answers: Response[] = [];
    let over = false;
    let running = 0;
    /** Held in-progress answers, released when no other attempt runs. */
    const held: Array<() => void> = [];
    const finished = (): void => {
      if (--running === 0 && held.length > 0) for (const wake of held.splice(0)) wake();
    };
    const attempt = (attemptCtx: ExecutionContext): Promise<Response> => {
      running++;
      return send(attemptCtx).then(
        (response) => {
          finished();
          if (over) {
            discardResponse(response, maxDrainBytes);
            return response;
          }
          answers.push(response);
          if (running > 0 && isInProgress(response)) return holdWhileRunning(response, attemptCtx.signal);
          return response;
        },
        (error: unknown) => {
          finished();
          throw error;
        },
      );
    };
    /** `response` once no other attempt runs; the signal's reason if the race ends first. */
    const holdWhileRunning = (response: Response, signal: AbortSignal): Promise<Response> =>
      new Promise<Response>((resolve, reject) => {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const onAbort = (): void => {
          const at = held.indexOf(wake);
          if (at >= 0) held.splice(at, 1);
          reject(signal.reason);
        };
        const wake = (): void => {
          signal.removeEventListener('abort', onAbort);
          resolve(response);
        };
        held.push(wake);
        signal.addEventListener('abort', onAbort, ONCE);
      });
    const end = (winner: Response | undefined): void => {
      over = true;
      for (const response of answers) if (response !== winner) discardResponse(response, maxDrainBytes);
      answers.length = 0;
    };
    return hedger.run(attempt, ctx).then(
      (winner) => {
        end(winner);
        const controller = hedgedBodies.get(winner);
        if (deadline !== undefined && controller !== undefined) deadline.register(controller);
        return winner;
      },
      (error: unknown) => {
        end(undefined);
        throw error;
      },
    );
  };
}

/** Sends one attempt of a prepared call. */
export type SendAttempt = (
  call: PreparedCall,
  input: string | URL | Request,
  ctx: ExecutionContext,
  deadline: BodyDeadline | undefined,
  outer: AbortSignal | undefined,
) => Promise<Response>;

/** What {@link attemptSenders} needs of a fetch's resolved options. */
export interface TransportSettings {
  readonly baseFetch: FetchFunction;
  /** One CLIENT span per attempt, whose context goes downstream. */
  readonly attemptSpans: boolean;
  /** Send the attempt number. */
  readonly sendAttempt: boolean;
  /** Send the time left. */
  readonly sendDeadline: boolean;
  readonly safetyMarginMs: number;
  readonly maxDrainBytes: number;
}

/**
 * The per-attempt transport: `sendOneAttempt` builds an attempt's headers
 * (attempt number, time left, trace context), sends it through the underlying
 * fetch with a controller of its own, and hands the response's body to the
 * call's deadline and the caller's signal; `sendInSpan` does the same inside
 * a CLIENT span.
 */
export function attemptSenders(settings: TransportSettings): {
  readonly sendOneAttempt: SendAttempt;
  readonly sendInSpan: SendAttempt;
} {
  const { baseFetch, attemptSpans, sendAttempt, sendDeadline, safetyMarginMs, maxDrainBytes } = settings;

  const sendOneAttempt: SendAttempt = (call, input, ctx, deadline, outer) => {
    // Each attempt is sent with a controller of its own that follows ctx (under
    // the attempt timeout, that timeout's scope, which aborts it directly)
    // until the headers arrive. After that only the body's read remains,
    // bounded by the call's deadline and the caller's signal, which abort this
    // controller directly: what stays reachable from them until the deadline
    // is this controller, not the attempt's scope and the contexts it holds.
    const controller = new AbortController();
    const unfollow = followAbort(ctx, controller);
    const sendSignal = controller.signal;
    if (sendSignal.aborted) return Promise.reject(sendSignal.reason);
    let pending: Promise<Response>;
    try {
      let headers: Headers | Record<string, string>;
      if (call.headers === undefined && !attemptSpans) {
        // Nothing of the request's own to merge: a plain record, which the
        // underlying fetch reads once, rather than a Headers it would copy,
        // checking each header a second time.
        const own: Record<string, string> = {};
        if (sendAttempt) own[RETRY_ATTEMPT_HEADER] = String(ctx.attempt);
        if (sendDeadline) {
          const left = remainingMs(ctx);
          if (left !== Number.POSITIVE_INFINITY) {
            own[REQUEST_TIMEOUT_HEADER] = encodeTimeoutMs(Math.max(0, left - safetyMarginMs));
          }
        }
        headers = own;
      } else {
        const merged = call.headers === undefined ? new Headers() : new Headers(call.headers);
        // Inside the attempt's span: its context goes downstream.
        if (attemptSpans) telemetry.injectContext(merged);
        if (sendAttempt) merged.set(RETRY_ATTEMPT_HEADER, String(ctx.attempt));
        if (sendDeadline) {
          const left = remainingMs(ctx);
          if (left !== Number.POSITIVE_INFINITY) {
            let budgetMs = Math.max(0, left - safetyMarginMs);
            const given = call.headers === undefined ? null : merged.get(REQUEST_TIMEOUT_HEADER);
            // A Headers value has no surrounding whitespace left (the Fetch standard strips it).
            if (given !== null && /^[0-9]{1,15}$/.test(given)) budgetMs = Math.min(budgetMs, Number(given));
            merged.set(REQUEST_TIMEOUT_HEADER, encodeTimeoutMs(budgetMs));
          }
        }
        headers = merged;
      }
      let attemptInput =
        call.request === undefined ? input : call.cloneRequest ? call.request.clone() : call.request;
      const target = call.target;
      if (target !== undefined) {
        attemptInput = attemptInput instanceof Request ? new Request(target, attemptInput) : target;
      }
      const init = call.init;
      pending = baseFetch(
        attemptInput,
        init === undefined
          ? { method: call.method, headers, signal: sendSignal }
          : { ...init, method: call.method, headers, signal: sendSignal },
      );
    } catch (error) {
      unfollow();
      return Promise.reject(error);
    }
    return pending.then(
      (response) => {
        unfollow();
        if (sendSignal.aborted) {
          // The attempt timed out as the answer arrived: nobody will read it.
          discardResponse(response, maxDrainBytes);
          throw sendSignal.reason;
        }
        if (response.body !== null) {
          // A later attempt's response replaces this one; a response the retry
          // loop discards has its body read or cancelled by discardResponse.
          // Hedged, the race's winner is known only later (see raceHedged).
          if (deadline !== undefined) {
            if (call.hedged) hedgedBodies.set(response, controller);
            else deadline.register(controller);
          }
          if (outer !== undefined) abortOnAbort(outer, controller);
        }
        return response;
      },
      (error: unknown) => {
        unfollow();
        throw error;
      },
    );
  };

  /** One CLIENT span per attempt, as the OpenTelemetry HTTP client conventions describe it. */
  const sendInSpan: SendAttempt = (call, input, ctx, deadline, outer) => {
    if (!telemetry.tracing) return sendOneAttempt(call, input, ctx, deadline, outer);
    const attempt = ctx.attempt;
    const attributes = (): Attributes => {
      const base = requestAttributes(call.method, call.url);
      return attempt > 1 ? { ...base, 'http.request.resend_count': attempt - 1 } : base;
    };
    return telemetry.inSpan(call.method, { kind: 'client', attributes }, (span) => {
      const pending = sendOneAttempt(call, input, ctx, deadline, outer);
      return span === undefined ? pending : pending.then((response) => markStatus(span, response));
    });
  };

  return { sendOneAttempt, sendInSpan };
}
