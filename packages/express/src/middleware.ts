import type { ServerResponse } from 'node:http';
import {
  admitRequest,
  type BulwarkRequestContext,
  type BulwarkServerOptions,
  completeIdempotent,
  enterDeadline,
  type RequestScope,
  resolveServerOptions,
  routeIdempotency,
  type RouteIdempotencyOptions as ServerRouteIdempotencyOptions,
  sendResponse,
} from '@bulwark/http-server';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

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
    const admission = admitRequest(req.headers, res, resolved);
    if (!admission.admitted) return sendResponse(res, admission.response);
    req.bulwark = admission.context;
    nextInDeadline(req, res, next);
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
 * store is unreachable. The fingerprint is the method, the URL and `req.body`,
 * so put a body parser before it.
 *
 * The response is stored before it is sent, so a retry that follows it is
 * replayed. The handler's outcome decides, even after the client has
 * disconnected: what it sends is stored (or, for 5xx, the key is released).
 * A handler that never responds holds the key while its process renews the
 * lease; a crashed process's key is taken over about `leaseMs` after a retry sees it.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function idempotent(options: RouteIdempotencyOptions): RequestHandler {
  const route = routeIdempotency<Request>('idempotent()', options);
  return async (req, res, next) => {
    const decision = await route.begin(req, {
      headers: req.headers,
      method: req.method,
      url: req.originalUrl,
      body: req.body,
    });
    if (decision.action === 'respond') return sendResponse(res, decision.response);
    if (decision.key === undefined) return nextInDeadline(req, res, next);
    const context = req.bulwark as RequestScope | undefined;
    if (context !== undefined) context.idempotencyKey = decision.key;
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
      const [chunk, encoding] = args;
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
        chunks.push(toBuffer(chunk, encoding));
      }
      // Stored before the response leaves, so a retry that follows it is replayed.
      completeIdempotent(decision, res.statusCode, res.getHeaders(), Buffer.concat(chunks)).then(
        () => end.apply(this, args),
        (error: unknown) => (res.headersSent ? end.apply(this, args) : next(error)),
      );
      return this;
    } as Response['end'];
    nextInDeadline(req, res, next);
  };
}
