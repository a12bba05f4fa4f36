import { isUtf8 } from 'node:buffer';
import type { ServerResponse } from 'node:http';
import type { BulkheadPermit } from '@bulwark/bulkhead';
import { readInboundDeadline, withDeadline } from '@bulwark/deadline';
import { type HttpResponse, IDEMPOTENCY_KEY_HEADER, problemResponse } from '@bulwark/idempotency';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type BulwarkRequestContext, RequestScope } from './context.ts';
import {
  type BulwarkExpressOptions,
  type RouteIdempotencyOptions,
  resolveOptions,
  routeIdempotency,
} from './options.ts';
import { REFUSED, refusalsCounter } from './telemetry.ts';

declare global {
  namespace Express {
    interface Request {
      /** Set by `bulwarkExpress()` for every request it admits. */
      bulwark: BulwarkRequestContext;
    }
  }
}

const KEY_HEADER = IDEMPOTENCY_KEY_HEADER.toLowerCase();

/** Response headers that describe one transfer, not the resource: never stored for replay. */
const TRANSFER_HEADERS = new Set([
  'connection',
  'content-length',
  'date',
  'keep-alive',
  'set-cookie',
  'transfer-encoding',
]);

function send(res: ServerResponse, response: HttpResponse): void {
  res.writeHead(response.status, response.headers).end(response.body);
}

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
 * Calls `next` inside the request's deadline, so everything the handler calls
 * sees it; answers 504 instead when the deadline has already passed.
 */
function nextInDeadline(req: Request, res: ServerResponse, next: NextFunction): void {
  const deadline = (req.bulwark as RequestScope | undefined)?.deadline;
  if (deadline === undefined) next();
  else if (deadline.expired()) {
    refusalsCounter.add(1, REFUSED.deadlineExpired);
    send(
      res,
      problemResponse(504, {
        type: 'urn:bulwark:deadline:expired',
        title: 'The deadline of the request passed before it could be processed',
        detail: `The ${deadline.budgetMs} ms budget ran out before the handler started.`,
      }),
    );
  } else withDeadline(deadline.remaining(), () => next(), { clock: deadline.clock });
}

/**
 * The Express 5 middleware. Mount it with `app.use()` first, before the body
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
 * Make a route idempotent with {@link idempotent}.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function bulwarkExpress(options?: BulwarkExpressOptions): RequestHandler {
  const resolved = resolveOptions(options);
  const { bulkhead, clock } = resolved;
  const limits = { defaultTimeoutMs: resolved.defaultTimeoutMs, maxTimeoutMs: resolved.maxTimeoutMs };
  return (req, res, next) => {
    const inbound = readInboundDeadline(req.headers, limits);
    if (inbound.kind !== 'budget') {
      refusalsCounter.add(1, inbound.kind === 'invalid' ? REFUSED.invalidDeadline : REFUSED.deadlineExpired);
      return send(res, problemResponse(inbound.status, inbound.problem));
    }
    let permit: BulkheadPermit | undefined;
    if (bulkhead !== undefined) {
      permit = bulkhead.tryAcquire();
      if (permit === undefined) {
        refusalsCounter.add(1, REFUSED.overloaded);
        return send(res, overloaded(resolved.retryAfterSeconds));
      }
    }
    const scope = new RequestScope(inbound.timeoutMs, inbound.header, permit, clock);
    req.bulwark = scope;
    res.once('close', () => scope.close(res.writableEnded, res.statusCode));
    nextInDeadline(req, res, next);
  };
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
}

function storedHeaders(res: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.getHeaders())) {
    if (value === undefined || TRANSFER_HEADERS.has(name.toLowerCase())) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
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
 * A handler that never responds holds the key until `leaseMs` runs out.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function idempotent(options: RouteIdempotencyOptions): RequestHandler {
  const { http, scope } = routeIdempotency(options);
  return async (req, res, next) => {
    const raw = req.headers[KEY_HEADER];
    const decision = await http.begin({
      key: Array.isArray(raw) ? raw.join(', ') : raw,
      fingerprint: { method: req.method, url: req.originalUrl, body: req.body ?? null },
      scope: scope?.(req),
    });
    if (decision.action === 'respond') return send(res, decision.response);
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
      const body = Buffer.concat(chunks);
      // Stored before the response leaves, so a retry that follows it is replayed.
      const stored = isUtf8(body)
        ? decision.commit({
            status: res.statusCode,
            headers: storedHeaders(res),
            body: body.toString('utf8'),
          })
        : decision.release();
      stored.then(
        () => end.apply(this, args),
        (error: unknown) => (res.headersSent ? end.apply(this, args) : next(error)),
      );
      return this;
    } as Response['end'];
    nextInDeadline(req, res, next);
  };
}
