import type { IncomingMessage, ServerResponse } from 'node:http';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { type HttpResponse, problemResponse } from '@bulwark/idempotency';
import { admitRequest, answerExpired, enterDeadline } from './admission.ts';
import type { BulwarkRequestContext } from './context.ts';
import { errorResponse } from './errors.ts';
import {
  type BulwarkServerOptions,
  checkServerOptions,
  SERVER_OPTION_KEYS,
  withServerDefaults,
} from './options.ts';
import { applyRateLimit, limitRequest } from './rate-limit.ts';

const HTTP_KEYS: ReadonlySet<string> = new Set([
  ...SERVER_OPTION_KEYS,
  ...optionKeys<Omit<BulwarkHttpOptions, keyof BulwarkServerOptions>>({ onError: true }),
]);

/** Writes `response` (status, headers and body) and ends it. */
export function sendResponse(res: ServerResponse, response: HttpResponse): void {
  res.writeHead(response.status, response.headers).end(response.body);
}

/** A node:http request handler that also gets the request's {@link BulwarkRequestContext}. */
export type BulwarkHttpHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  bulwark: BulwarkRequestContext,
) => unknown;

/** Options for {@link bulwarkHttp}: those of every adapter, plus `onError`. */
export interface BulwarkHttpOptions extends BulwarkServerOptions {
  /**
   * Told about an error the handler threw or rejected with, after the
   * response was dealt with (500 problem+json, or the connection closed when
   * the handler had already started to answer). Default: none.
   */
  readonly onError?: ((error: unknown, req: IncomingMessage) => void) | undefined;
}

function handlerFailed(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  options: BulwarkHttpOptions | undefined,
  retryAfterSeconds: number,
): void {
  if (!res.headersSent) {
    sendResponse(
      res,
      errorResponse(error, { retryAfterSeconds }) ??
        problemResponse(500, {
          type: 'urn:bulwark:server:handler-failed',
          title: 'The handler failed',
          detail: 'The request could not be processed.',
        }),
    );
  } else if (!res.writableEnded) res.destroy();
  options?.onError?.(error, req);
}

/**
 * Wraps a plain node:http handler (`http.createServer(bulwarkHttp(handler))`)
 * with what the Fastify plugin and the Express middleware do for a request:
 * - reads the deadline headers (`grpc-timeout`, `x-request-timeout-ms`,
 *   `connect-timeout-ms`, `x-envoy-expected-rq-timeout-ms`; the smallest
 *   wins), answers 400 problem+json naming a malformed one, and 504 when the
 *   budget was spent on arrival;
 * - sheds load with `bulkhead.tryAcquire()`: 503 with `Retry-After` when
 *   full; the slot goes back exactly once, when the response closes or at
 *   the deadline, whichever comes first;
 * - runs `handler` inside `withDeadline`, with a context whose `signal` aborts
 *   at the deadline or when the client disconnects;
 * - at the deadline, ends a request still being served: 504 problem+json when
 *   nothing was sent yet, the connection closed otherwise.
 *
 * A handler that throws or rejects gets the answer of {@link errorResponse}
 * for a bulwark error (504 for a deadline, 503 with `Retry-After` for an open
 * circuit, a full bulkhead, a rate limit, ...), 500 problem+json otherwise (or,
 * when it had started to answer, the connection closed); `onError` is told.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function bulwarkHttp(
  handler: BulwarkHttpHandler,
  options?: BulwarkHttpOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const check = new OptionsChecker('bulwarkHttp()');
  check.knownKeys(options, HTTP_KEYS);
  check.func('handler', handler, true);
  checkServerOptions(check, options);
  check.func('onError', options?.onError);
  check.done();
  const resolved = withServerDefaults(options);
  return (req, res) => {
    const admission = admitRequest(req.headers, res, resolved, (context) => answerExpired(res, context));
    if (!admission.admitted) return sendResponse(res, admission.response);
    const context = admission.context;
    const retryAfterSeconds = resolved.retryAfterSeconds;
    const serve = (): void => {
      const refused = enterDeadline(context, () => {
        try {
          const result = handler(req, res, context);
          if (result instanceof Promise)
            result.catch((error: unknown) => handlerFailed(req, res, error, options, retryAfterSeconds));
        } catch (error) {
          handlerFailed(req, res, error, options, retryAfterSeconds);
        }
      });
      if (refused !== undefined) sendResponse(res, refused);
    };
    const limit = resolved.rateLimit;
    if (limit === undefined) return serve();
    applyRateLimit(
      () => limitRequest(req, limit, context, retryAfterSeconds),
      res,
      (response) => sendResponse(res, response),
      serve,
      (error) => handlerFailed(req, res, error, options, retryAfterSeconds),
    );
  };
}
