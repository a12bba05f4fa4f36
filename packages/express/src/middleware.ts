import type { ServerResponse } from 'node:http';
import { OptionsChecker } from '@bulwark/core/authoring';
import {
  admitRequest,
  answerExpired,
  applyRateLimit,
  type BulwarkRequestContext,
  type BulwarkServerOptions,
  completeIdempotent,
  type ErrorResponseOptions,
  enterDeadline,
  errorResponse,
  limitRequest,
  type ProceedDecision,
  type RequestScope,
  readUnparsedBody,
  resolveServerOptions,
  routeIdempotency,
  type RouteIdempotencyOptions as ServerRouteIdempotencyOptions,
  sendResponse,
  settleBefore,
} from '@bulwark/http-server';
import type { HttpResponse, IdempotencyGuard } from '@bulwark/idempotency';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';

const ERROR_HANDLER_KEYS = new Set(['retryAfterSeconds', 'onError']);

/**
 * Idempotency for one route, given to {@link idempotent}: the options of
 * `httpIdempotency()` from @bulwark/idempotency (`store`, `required` (default
 * true), `ttlMs`, `leaseMs`, `storeStatus`, ...), plus `scope(req)`, which
 * namespaces keys by who is asking.
 */
export type RouteIdempotencyOptions = ServerRouteIdempotencyOptions<Request>;

declare global {
  namespace Express {
    interface Request {
      /** Set by `bulwarkExpress()` for every request it admits. */
      bulwark: BulwarkRequestContext;
    }
  }
}

/** Per request state of an idempotent route. */
interface Held {
  readonly decision: ProceedDecision;
  /** The key was completed or released, or will not be (a 504 sent at the deadline is never stored). */
  settled: boolean;
  /** The handler was called: at the deadline the key stays held, since the handler may still complete. */
  handlerStarted: boolean;
}
const HELD = Symbol('bulwark.idempotency');
type WithHeld = Request & { [HELD]?: Held };

/**
 * The request's deadline passed before its response closed (its slot is back
 * already, its signal aborted). The request ends with 504 (or, when the
 * response had started, its connection is closed), except:
 * - while the handler's own response is being sent (its record was being
 *   written), which goes out as it is;
 * - on an idempotent route whose handler is running: its answer is what a
 *   retry with the key must replay, so the response is left to it and
 *   stored as usual.
 * A key taken for a handler that never started is released.
 */
function onDeadline(req: Request, res: ServerResponse, context: RequestScope): void {
  const held = (req as WithHeld)[HELD];
  if (held !== undefined && !held.settled) {
    if (held.handlerStarted) return;
    held.settled = true;
    void held.decision.release();
  }
  if (context.responding) return;
  answerExpired(res, context);
}

/**
 * Calls `next` inside the request's deadline, so everything the handler calls
 * sees it; answers 504 instead when the deadline has already passed.
 */
function nextInDeadline(req: Request, res: ServerResponse, next: NextFunction): void {
  const refused = enterDeadline(req.bulwark as BulwarkRequestContext | undefined, () => next());
  if (refused !== undefined) sendResponse(res, refused);
}

/**
 * The Express 5 middleware, an adapter over @bulwark/http-server. Mount it with `app.use()` first, before the body
 * parsers and the routes, so shed requests are refused before their bodies are
 * read. For every request it:
 * - reads the deadline headers (`grpc-timeout`, `x-request-timeout-ms`,
 *   `connect-timeout-ms`, `x-envoy-expected-rq-timeout-ms`; the smallest wins),
 *   answers 400 problem+json naming a malformed one, and 504 when the budget
 *   was spent on arrival;
 * - sheds load with `bulkhead.tryAcquire()`: 503 with `Retry-After` when full;
 *   the slot goes back exactly once, when the response closes;
 * - runs the rest of the chain inside `withDeadline`, and sets `req.bulwark`,
 *   whose `signal` aborts at the deadline or when the client disconnects.
 *
 * It checks the deadline only on arrival: to answer 504 instead of running a
 * handler whose deadline passed while the body was read or other middleware
 * ran, mount {@link deadlineGate} after them. Make a route idempotent with
 * {@link idempotent}, which checks the deadline again too. The options
 * (`BulwarkExpressOptions`) are @bulwark/http-server's `BulwarkServerOptions`;
 * their defaults are `BULWARK_EXPRESS_DEFAULTS`.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function bulwarkExpress(options?: BulwarkServerOptions): RequestHandler {
  const resolved = resolveServerOptions(options, 'bulwarkExpress()');
  return (req, res, next) => {
    const admission = admitRequest(req.headers, res, resolved, (context) => onDeadline(req, res, context));
    if (!admission.admitted) return sendResponse(res, admission.response);
    req.bulwark = admission.context;
    const limit = resolved.rateLimit;
    if (limit === undefined) return nextInDeadline(req, res, next);
    applyRateLimit(
      () => limitRequest(req, limit, admission.context, resolved.retryAfterSeconds),
      res,
      (response) => sendResponse(res, response),
      () => nextInDeadline(req, res, next),
      next,
    );
  };
}

/**
 * Route (or app) middleware that answers 504 problem+json, without calling
 * the handler, when the request's deadline has already passed; otherwise it
 * calls `next` inside the deadline. `bulwarkExpress()` checks the deadline on
 * arrival, before the body is read; Express has no hook right before the
 * handler, so mount this after the body parsers and the other middleware (or
 * first in a route's chain), where the time they took has been spent.
 * `idempotent()` does the same check itself, after it has taken the key.
 * Without `bulwarkExpress()` in front (no `req.bulwark`), it just calls `next`.
 */
export function deadlineGate(): RequestHandler {
  return (req, res, next) => nextInDeadline(req, res, next);
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
}

type Write = (...args: unknown[]) => boolean;
type End = (...args: unknown[]) => Response;

/**
 * Route middleware that makes a route idempotent, with the HTTP semantics of
 * `httpIdempotency()` from @bulwark/idempotency: a stored response is replayed
 * with `Idempotent-Replayed: true`; 409 while the first request with the key
 * still runs; 422 when the key was used for a different request; 400 when the
 * key is malformed, or missing and `required` (the default); 503 when the
 * store is unreachable. The fingerprint is the method, the URL, the content
 * type and the body: `req.body` when a parser has read it, or else the body's
 * bytes, which it reads itself (at most `maxUnparsedBodyBytes`, else 413) and
 * puts back for the parsers and handler after it. So it may be mounted before
 * or after the body parsers. A body that was read but not parsed into
 * `req.body` is refused with 500 problem+json.
 *
 * The response is stored before it is sent, so a retry that follows it is
 * replayed. The handler's outcome decides, even after the client has
 * disconnected: what it sends is stored (or, for 5xx, the key is released).
 * A handler that never responds holds the key while its process renews the
 * lease; a crashed process's key is taken over about `leaseMs` after a retry sees it.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function idempotent(options: RouteIdempotencyOptions): IdempotentHandler {
  const route = routeIdempotency<Request>('idempotent()', options);
  const handler: RequestHandler = async (req, res, next) => {
    const context = req.bulwark as RequestScope | undefined;
    // A body no parser has read yet is read here and put back, so it is fingerprinted in any mounting order.
    const unparsed = await readUnparsedBody(req, req.body, {
      maxBytes: route.maxUnparsedBodyBytes,
      context: context as BulwarkRequestContext | undefined,
    });
    if (unparsed.kind === 'refused') return sendResponse(res, unparsed.response);
    let decision: Awaited<ReturnType<typeof route.begin>>;
    try {
      decision = await route.begin(
        req,
        {
          headers: req.headers,
          method: req.method,
          url: req.originalUrl,
          body: req.body,
          rawBody: unparsed.kind === 'raw' ? unparsed.bytes : undefined,
        },
        context?.signal,
      );
    } catch (error) {
      // The deadline passed (its 504 is sent) or the client left while the key was taken.
      if (context?.signal.aborted && error === context.signal.reason) return;
      throw error;
    }
    if (decision.action === 'respond') return sendResponse(res, decision.response);
    if (decision.key === undefined) return nextInDeadline(req, res, next);
    if (context !== undefined) context.idempotencyKey = decision.key;
    const held: Held = { decision, settled: false, handlerStarted: false };
    (req as WithHeld)[HELD] = held;
    const chunks: Buffer[] = [];
    const write = res.write as Write;
    const end = res.end as End;
    res.write = function (this: Response, ...args: unknown[]): boolean {
      if (args[0] !== undefined && args[0] !== null) chunks.push(toBuffer(args[0], args[1]));
      return write.apply(this, args);
    } as Response['write'];
    res.end = function (this: Response, ...args: unknown[]): Response {
      // Once only: the originals go back before anything else can call them.
      res.write = write as Response['write'];
      res.end = end as Response['end'];
      // The 504 of the deadline: not the handler's answer, never stored.
      if (held.settled) return end.apply(this, args);
      held.settled = true;
      const [chunk, encoding] = args;
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
        chunks.push(toBuffer(chunk, encoding));
      }
      // Stored before the response leaves, so a retry that follows it is replayed.
      const completing = completeIdempotent(
        decision,
        res.statusCode,
        res.getHeaders(),
        Buffer.concat(chunks),
      );
      if (context === undefined || context.deadline === undefined) {
        completing.then(
          () => end.apply(this, args),
          (error: unknown) => (res.headersSent ? end.apply(this, args) : next(error)),
        );
        return this;
      }
      // Bounded by the deadline: past it, the response goes out while the store finishes on its own.
      context.responding = true;
      settleBefore(completing, context.signal, () => undefined).then(
        () => {
          context.responding = false;
          end.apply(this, args);
        },
        (error: unknown) => {
          context.responding = false;
          if (res.headersSent || error === context.signal.reason) end.apply(this, args);
          else next(error);
        },
      );
      return this;
    } as Response['end'];
    held.handlerStarted = true;
    nextInDeadline(req, res, next);
  };
  return Object.assign(handler, { guard: route.guard });
}

/** The route middleware {@link idempotent} returns; `guard` is the route's idempotency guard, for its events. */
export type IdempotentHandler = RequestHandler & { readonly guard: IdempotencyGuard<HttpResponse> };

/**
 * Express error middleware (mount it after the routes) that answers the
 * bulwark errors a handler throws or passes to `next`, as `errorResponse()`
 * from @bulwark/http-server maps them: 504 problem+json for a deadline
 * (`ERR_DEADLINE_EXCEEDED`), 503 problem+json with `Retry-After` for an open
 * circuit, a full bulkhead, a rate limit or an unavailable store. Any other
 * error, or one that comes after the response started, goes on to the next
 * error handler. `onError(error, req)` is told about each error it answers.
 */
export function bulwarkErrorHandler(
  options?: ErrorResponseOptions & { readonly onError?: (error: unknown, req: Request) => void },
): ErrorRequestHandler {
  const check = new OptionsChecker('bulwarkErrorHandler()');
  check.knownKeys(options, ERROR_HANDLER_KEYS);
  check.number('retryAfterSeconds', options?.retryAfterSeconds, { integer: true, min: 0 });
  check.func('onError', options?.onError);
  check.done();
  return (error: unknown, req, res, next) => {
    const response = res.headersSent ? undefined : errorResponse(error, options);
    if (response === undefined) {
      next(error);
      return;
    }
    options?.onError?.(error, req);
    sendResponse(res, response);
  };
}
