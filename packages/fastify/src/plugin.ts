import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import {
  admitRequest,
  answerExpired,
  applyRateLimit,
  type BulwarkRequestContext,
  type BulwarkServerOptions,
  checkServerOptions,
  completeIdempotent,
  enterDeadline,
  errorResponse,
  type IdempotentRoute,
  limitRequest,
  type ProceedDecision,
  type RequestScope,
  type ResolvedServerOptions,
  routeIdempotency,
  SERVER_OPTION_KEYS,
  type RouteIdempotencyOptions as ServerRouteIdempotencyOptions,
  type StoreErrorPhase,
  settleBefore,
  withServerDefaults,
} from '@bulwark/http-server';
import type { HttpResponse } from '@bulwark/idempotency';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onSendHookHandler,
  preHandlerHookHandler,
  RouteHandlerMethod,
  RouteOptions,
} from 'fastify';

/** The plugin's options, plus what Fastify itself reads from a plugin's options when it is registered. */
const FASTIFY_KEYS: ReadonlySet<string> = new Set([
  ...SERVER_OPTION_KEYS,
  ...optionKeys<Omit<BulwarkFastifyOptions, keyof BulwarkServerOptions>>({ errorHandler: true }),
  'prefix',
  'logLevel',
  'logSerializers',
]);

/** Options of the Fastify plugin: those of every adapter, plus `errorHandler`. */
export interface BulwarkFastifyOptions extends BulwarkServerOptions {
  /**
   * Whether the plugin installs an error handler (`setErrorHandler`) on the
   * instance it is registered on, which answers the bulwark errors a handler
   * or hook throws as `errorResponse()` in @bulwark/http-server maps them (504
   * for a deadline; 503 with `Retry-After` for an open circuit, a full
   * bulkhead, a rate limit, an unavailable store) and passes every other error
   * to the error handler that was there before. An error handler the
   * application sets later on the same instance replaces it (Fastify warns);
   * call `bulwarkErrorReply()` from it, or set this to false. Default: true.
   */
  readonly errorHandler?: boolean | undefined;
}

/**
 * Idempotency for one route, set as the route's `config.idempotency`: the
 * options of `httpIdempotency()` from @bulwark/idempotency (`store`,
 * `required` (default true), `ttlMs`, `leaseMs`, `storeStatus`, ...), plus
 * `scope(request)`, which namespaces keys by who is asking.
 */
export type RouteIdempotencyOptions = ServerRouteIdempotencyOptions<FastifyRequest>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by @bulwark/fastify for every request it admits. */
    bulwark: BulwarkRequestContext;
  }
  interface FastifyContextConfig {
    /** Makes the route idempotent with @bulwark/fastify. */
    idempotency?: RouteIdempotencyOptions | undefined;
  }
}

/**
 * Sends `response` as it is. The body goes as a Buffer, so Fastify leaves the
 * content type alone: `application/problem+json`, with no charset added, as
 * the other adapters send it.
 */
function send(reply: FastifyReply, response: HttpResponse): FastifyReply {
  return reply.code(response.status).headers(response.headers).send(Buffer.from(response.body));
}

/**
 * Answers `error` the way `errorResponse()` from @bulwark/http-server maps it
 * (504 for a deadline, 503 problem+json with `Retry-After` for an open circuit,
 * a full bulkhead, a rate limit, an unavailable store), and returns true; returns
 * false, sending nothing, for any other error. For an application's own error
 * handler: `if (bulwarkErrorReply(error, reply)) return reply;`.
 */
export function bulwarkErrorReply(error: unknown, reply: FastifyReply, retryAfterSeconds = 1): boolean {
  const response = errorResponse(error, { retryAfterSeconds });
  if (response === undefined || reply.sent) return false;
  send(reply, response);
  return true;
}

type Hook<H> = H | H[] | undefined;
function append<H>(hooks: Hook<H>, hook: H): H[] {
  return hooks === undefined ? [hook] : Array.isArray(hooks) ? [...hooks, hook] : [hooks, hook];
}

/** Per request state of an idempotent route. */
interface Held {
  readonly decision: ProceedDecision;
  settled: boolean;
  /** The handler was called: at the deadline the key stays held, since the handler may still complete. */
  handlerStarted: boolean;
}
const HELD = Symbol('bulwark.idempotency');
type WithHeld = FastifyRequest & { [HELD]?: Held };

/** Marks a route's config once the plugin's `onRoute` hook has set the route up. */
const SET_UP = Symbol('bulwark.route-set-up');
interface BulwarkRouteConfig {
  idempotency?: RouteIdempotencyOptions | undefined;
  [SET_UP]?: true;
}

/** The route's idempotency mapping, logging store failures through `log` unless `onStoreError` is given. */
function buildRoute(
  method: unknown,
  url: unknown,
  options: RouteIdempotencyOptions,
  log: FastifyBaseLogger,
): IdempotentRoute<FastifyRequest> {
  const caller = `bulwarkFastify() route ${String(method)} ${String(url)}: config.idempotency`;
  const isObject = typeof options === 'object' && options !== null;
  const onStoreError =
    isObject && options.onStoreError !== undefined
      ? options.onStoreError
      : (error: unknown, phase: StoreErrorPhase, request: FastifyRequest | undefined) => {
          const logger = request?.log ?? log;
          logger.error(
            { err: error },
            phase === 'begin'
              ? 'idempotency store unavailable: answered 503'
              : 'idempotency store failed after the handler ran: the response is not stored yet (retrying in the background)',
          );
        };
  return routeIdempotency<FastifyRequest>(caller, isObject ? { ...options, onStoreError } : options);
}

/**
 * Takes the key for `request`; true when the request may go on to its
 * handler. Otherwise the reply has been sent (a replay, 400, 409, 422, 503)
 * or taken over: at the deadline (the 504 is sent by the deadline), or when
 * the client went away, the request stops here and a key granted late is
 * released.
 */
async function beginIdempotent(
  route: IdempotentRoute<FastifyRequest>,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<boolean> {
  const bulwark = request.bulwark as RequestScope | null;
  let decision: Awaited<ReturnType<IdempotentRoute<FastifyRequest>['begin']>>;
  try {
    decision = await route.begin(request, request, bulwark?.signal);
  } catch (error) {
    if (bulwark === null || !bulwark.signal.aborted || error !== bulwark.signal.reason) throw error;
    if (!reply.sent) reply.hijack();
    return false;
  }
  if (decision.action === 'respond') {
    send(reply, decision.response);
    return false;
  }
  if (decision.key === undefined) return true;
  (request as WithHeld)[HELD] = { decision, settled: false, handlerStarted: false };
  if (bulwark !== null) bulwark.idempotencyKey = decision.key;
  return true;
}

/**
 * Stores what the handler sent, before it leaves, so a retry that follows it
 * is replayed. The wait is bounded by the request's deadline: past it, the
 * response goes out while the store finishes (or not) on its own.
 */
const commit: onSendHookHandler = async (request, reply, payload) => {
  const held = (request as WithHeld)[HELD];
  if (held === undefined || held.settled) return payload;
  held.settled = true;
  const completing = completeIdempotent(held.decision, reply.statusCode, reply.getHeaders(), payload);
  const bulwark = request.bulwark as RequestScope | null;
  if (bulwark === null || bulwark.deadline === undefined) {
    await completing;
    return payload;
  }
  bulwark.responding = true;
  try {
    await settleBefore(completing, bulwark.signal, () => undefined);
  } catch {
    // The deadline passed (or the client left) while the store was writing: send what the handler sent.
  } finally {
    bulwark.responding = false;
  }
  return payload;
};

function addIdempotency(
  routeOptions: RouteOptions,
  options: RouteIdempotencyOptions,
  log: FastifyBaseLogger,
): void {
  const route = buildRoute(routeOptions.method, routeOptions.url, options, log);
  const begin: preHandlerHookHandler = async (request, reply) => {
    if (!(await beginIdempotent(route, request, reply))) return reply;
    return undefined;
  };
  routeOptions.preHandler = append(routeOptions.preHandler, begin);
  routeOptions.onSend = append(routeOptions.onSend as Hook<onSendHookHandler>, commit);
}

/**
 * Checks the deadline once more right before the route's handler, after every
 * `preHandler` hook (the route's own, those added after the plugin, the
 * idempotency one): 504 instead of running a handler whose deadline passed in
 * them. The handler runs inside the deadline.
 */
function gateHandler(routeOptions: RouteOptions): void {
  const handler = routeOptions.handler;
  routeOptions.handler = function (this: FastifyInstance, request, reply) {
    let result: unknown;
    const refused = enterDeadline(request.bulwark, () => {
      const held = (request as WithHeld)[HELD];
      if (held !== undefined) held.handlerStarted = true;
      result = handler.call(this, request, reply);
    });
    if (refused === undefined) return result;
    send(reply, refused);
    return undefined;
  } as RouteHandlerMethod;
}

/**
 * The request's deadline passed before its response closed (its slot is back
 * already, its signal aborted). The request ends with 504 (or, when the
 * response had started, its connection is closed), except:
 * - while the plugin sends the handler's own response (its record was being
 *   written), which goes out as it is;
 * - on an idempotent route whose handler is running: its answer is what a
 *   retry with the key must replay, so the response is left to it and
 *   stored as usual.
 * A key taken for a handler that never started is released.
 */
function onDeadline(request: FastifyRequest, reply: FastifyReply, context: RequestScope): void {
  const held = (request as WithHeld)[HELD];
  if (held !== undefined && !held.settled) {
    if (held.handlerStarted) return;
    held.settled = true;
    void held.decision.release();
  }
  if (context.responding) return;
  if (!reply.sent) reply.hijack();
  answerExpired(reply.raw, context);
}

/** Idempotency for routes added before the plugin loaded, built on their first request. */
class LateRoutes {
  readonly #routes = new WeakMap<RouteIdempotencyOptions, IdempotentRoute<FastifyRequest>>();
  readonly #log: FastifyBaseLogger;
  constructor(log: FastifyBaseLogger) {
    this.#log = log;
  }
  get(request: FastifyRequest, options: RouteIdempotencyOptions): IdempotentRoute<FastifyRequest> {
    let route = this.#routes.get(options);
    if (route === undefined) {
      const { method, url } = request.routeOptions;
      route = buildRoute(method, url, options, this.#log);
      this.#routes.set(options, route);
      this.#log.warn(
        `@bulwark/fastify: route ${String(method)} ${String(url)} was added before the plugin loaded ` +
          '(app.register(bulwarkFastify) without await, or routes declared first). Its idempotency is ' +
          "enforced from the plugin's own preHandler hook, before the route's preHandler hooks; " +
          'await app.register(bulwarkFastify, options) before adding routes.',
      );
    }
    return route;
  }
}

function register(
  fastify: FastifyInstance,
  resolved: ResolvedServerOptions,
  options: BulwarkFastifyOptions,
): void {
  fastify.decorateRequest('bulwark', null as unknown as BulwarkRequestContext);
  const late = new LateRoutes(fastify.log);

  // On arrival: refuse what cannot be served, then take a slot.
  fastify.addHook('onRequest', (request, reply, done) => {
    const admission = admitRequest(request.headers, reply.raw, resolved, (context) =>
      onDeadline(request, reply, context),
    );
    if (!admission.admitted) {
      send(reply, admission.response);
      return;
    }
    request.bulwark = admission.context;
    const limit = resolved.rateLimit;
    if (limit === undefined) {
      done();
      return;
    }
    applyRateLimit(
      () => limitRequest(request.raw, limit, admission.context, resolved.retryAfterSeconds),
      reply.raw,
      (response) => send(reply, response),
      () => done(),
      (error) => done(error as Error),
    );
  });

  // Right before the handler (after the body was read): run the rest inside the
  // deadline. Entered here, so the scope covers the handler whatever the hooks
  // and body parsing in between did with the async context. A route added
  // before the plugin loaded (its onRoute hook never saw it) takes its
  // idempotency key here.
  fastify.addHook('preHandler', (request, reply, done) => {
    const config = request.routeOptions.config as BulwarkRouteConfig | undefined;
    const idempotency = config?.idempotency;
    if (idempotency === undefined || config![SET_UP] === true) {
      const refused = enterDeadline(request.bulwark, () => done());
      if (refused !== undefined) send(reply, refused);
      return;
    }
    let route: IdempotentRoute<FastifyRequest>;
    try {
      route = late.get(request, idempotency);
    } catch (error) {
      done(error as Error);
      return;
    }
    beginIdempotent(route, request, reply).then(
      (proceed) => {
        if (!proceed) return;
        // The handler may start from here on: at the deadline the key stays held.
        const held = (request as WithHeld)[HELD];
        if (held !== undefined) held.handlerStarted = true;
        const refused = enterDeadline(request.bulwark, () => done());
        if (refused !== undefined) send(reply, refused);
      },
      (error: unknown) => done(error as Error),
    );
  });
  // Settles the key of a late route (those set up by onRoute have their own).
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const config = request.routeOptions.config as BulwarkRouteConfig | undefined;
    if (config?.idempotency === undefined || config[SET_UP] === true) {
      done(null, payload);
      return;
    }
    (commit as (r: FastifyRequest, p: FastifyReply, x: unknown) => Promise<unknown>)(
      request,
      reply,
      payload,
    ).then(
      (sent) => done(null, sent),
      (error: unknown) => done(error as Error),
    );
  });

  fastify.addHook('onRoute', function (this: FastifyInstance, routeOptions) {
    const config = (routeOptions.config ?? {}) as BulwarkRouteConfig;
    routeOptions.config = { ...config, [SET_UP]: true } as NonNullable<typeof routeOptions.config>;
    if (config.idempotency !== undefined) addIdempotency(routeOptions, config.idempotency, this.log);
    gateHandler(routeOptions);
  });

  if (options?.errorHandler !== false) {
    const previous = fastify.errorHandler;
    fastify.setErrorHandler(function (this: FastifyInstance, error: FastifyError, request, reply) {
      const response = errorResponse(error, resolved);
      if (response === undefined || reply.sent) return previous.call(this, error, request, reply);
      request.log.warn({ err: error }, `answered ${response.status}: ${error.message}`);
      return send(reply, response);
    });
  }
}

/**
 * The Fastify 5 plugin, an adapter over @bulwark/http-server. For every request it:
 * - reads the deadline headers (`grpc-timeout`, `x-request-timeout-ms`,
 *   `connect-timeout-ms`, `x-envoy-expected-rq-timeout-ms`; the smallest wins),
 *   answers 400 problem+json naming a malformed one, and 504 when the budget
 *   was spent on arrival;
 * - sheds load with `bulkhead.tryAcquire()`: 503 with `Retry-After` when full;
 *   the slot goes back exactly once, when the response closes;
 * - answers 504 instead of running the handler when the deadline passed after
 *   arrival (while the body was read or in other hooks): checked in a
 *   `preHandler` hook and again right before the handler;
 * - runs the handler inside `withDeadline`, and exposes `request.bulwark.signal`,
 *   which aborts at the deadline or when the client disconnects;
 * - makes routes with `config: { idempotency: { store, required } }` idempotent,
 *   with the HTTP semantics of `httpIdempotency()` from @bulwark/idempotency.
 *
 * It is not encapsulated (`Symbol.for('skip-override')`, as `fastify-plugin`
 * does): its hooks apply to the instance it is registered on and to every
 * child context. Register it before the routes: the check right before the
 * handler and idempotency are added to each route from an `onRoute` hook.
 * The options (`BulwarkFastifyOptions`) are @bulwark/http-server's
 * `BulwarkServerOptions`; their defaults are `BULWARK_FASTIFY_DEFAULTS`.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function bulwarkFastify(
  fastify: FastifyInstance,
  options: BulwarkFastifyOptions,
  done: (error?: Error) => void,
): void {
  let resolved: ResolvedServerOptions;
  try {
    const check = new OptionsChecker('bulwarkFastify()');
    check.knownKeys(options, FASTIFY_KEYS);
    checkServerOptions(check, options);
    check.boolean('errorHandler', options?.errorHandler);
    // A second copy would take two slots per request and two idempotency keys.
    check.expect(
      !fastify.hasRequestDecorator('bulwark'),
      'plugin',
      '@bulwark/fastify',
      'registered once: it is already registered on this instance or a parent',
    );
    check.done();
    resolved = withServerDefaults(options);
  } catch (error) {
    done(error as Error);
    return;
  }
  register(fastify, resolved, options);
  done();
}

Object.defineProperties(bulwarkFastify, {
  [Symbol.for('skip-override')]: { value: true },
  [Symbol.for('fastify.display-name')]: { value: '@bulwark/fastify' },
  [Symbol.for('plugin-meta')]: { value: { name: '@bulwark/fastify', fastify: '5.x' } },
});
