import {
  admitRequest,
  type BulwarkRequestContext,
  type BulwarkServerOptions,
  completeIdempotent,
  enterDeadline,
  type ProceedDecision,
  type RequestScope,
  type ResolvedServerOptions,
  resolveServerOptions,
  routeIdempotency,
  type RouteIdempotencyOptions as ServerRouteIdempotencyOptions,
} from '@bulwark/http-server';
import type { HttpResponse } from '@bulwark/idempotency';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onSendHookHandler,
  preHandlerHookHandler,
  RouteHandlerMethod,
  RouteOptions,
} from 'fastify';

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
    idempotency?: RouteIdempotencyOptions;
  }
}

function send(reply: FastifyReply, response: HttpResponse): FastifyReply {
  return reply.code(response.status).headers(response.headers).send(response.body);
}

type Hook<H> = H | H[] | undefined;
function append<H>(hooks: Hook<H>, hook: H): H[] {
  return hooks === undefined ? [hook] : Array.isArray(hooks) ? [...hooks, hook] : [hooks, hook];
}

/** Per request state of an idempotent route. */
interface Held {
  readonly decision: ProceedDecision;
  settled: boolean;
}
const HELD = Symbol('bulwark.idempotency');
type WithHeld = FastifyRequest & { [HELD]?: Held };

function addIdempotency(routeOptions: RouteOptions, options: RouteIdempotencyOptions): void {
  const route = routeIdempotency<FastifyRequest>(
    `bulwarkFastify() route ${routeOptions.method} ${routeOptions.url}: config.idempotency`,
    options,
  );
  const begin: preHandlerHookHandler = async (request, reply) => {
    const decision = await route.begin(request, request);
    if (decision.action === 'respond') return send(reply, decision.response);
    if (decision.key === undefined) return;
    (request as WithHeld)[HELD] = { decision, settled: false };
    const bulwark = request.bulwark as RequestScope | null;
    if (bulwark !== null) bulwark.idempotencyKey = decision.key;
  };
  const commit: onSendHookHandler = async (request, reply, payload) => {
    const held = (request as WithHeld)[HELD];
    if (held === undefined || held.settled) return payload;
    held.settled = true;
    // Stored before the response leaves, so a retry that follows it is replayed.
    await completeIdempotent(held.decision, reply.statusCode, reply.getHeaders(), payload);
    return payload;
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
      result = handler.call(this, request, reply);
    });
    if (refused === undefined) return result;
    send(reply, refused);
    return undefined;
  } as RouteHandlerMethod;
}

function register(fastify: FastifyInstance, resolved: ResolvedServerOptions): void {
  fastify.decorateRequest('bulwark', null as unknown as BulwarkRequestContext);

  // On arrival: refuse what cannot be served, then take a slot.
  fastify.addHook('onRequest', (request, reply, done) => {
    const admission = admitRequest(request.headers, reply.raw, resolved);
    if (!admission.admitted) {
      send(reply, admission.response);
      return;
    }
    request.bulwark = admission.context;
    done();
  });

  // Right before the handler (after the body was read): run the rest inside the
  // deadline. Entered here, so the scope covers the handler whatever the hooks
  // and body parsing in between did with the async context.
  fastify.addHook('preHandler', (request, reply, done) => {
    const refused = enterDeadline(request.bulwark, () => done());
    if (refused !== undefined) send(reply, refused);
  });

  fastify.addHook('onRoute', (routeOptions) => {
    const idempotency = (routeOptions.config as { idempotency?: RouteIdempotencyOptions } | undefined)
      ?.idempotency;
    if (idempotency !== undefined) addIdempotency(routeOptions, idempotency);
    gateHandler(routeOptions);
  });
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
  options: BulwarkServerOptions,
  done: (error?: Error) => void,
): void {
  let resolved: ResolvedServerOptions;
  try {
    resolved = resolveServerOptions(options, 'bulwarkFastify()');
  } catch (error) {
    done(error as Error);
    return;
  }
  register(fastify, resolved);
  done();
}

Object.defineProperties(bulwarkFastify, {
  [Symbol.for('skip-override')]: { value: true },
  [Symbol.for('fastify.display-name')]: { value: '@bulwark/fastify' },
  [Symbol.for('plugin-meta')]: { value: { name: '@bulwark/fastify', fastify: '5.x' } },
});
