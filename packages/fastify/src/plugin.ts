import { isUtf8 } from 'node:buffer';
import { readInboundDeadline, withDeadline } from '@bulwark/deadline';
import {
  type HttpDecision,
  type HttpResponse,
  IDEMPOTENCY_KEY_HEADER,
  problemResponse,
} from '@bulwark/idempotency';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onSendHookHandler,
  preHandlerHookHandler,
  RouteOptions,
} from 'fastify';
import { type BulwarkRequestContext, RequestScope } from './context.ts';
import {
  type BulwarkFastifyOptions,
  type ResolvedOptions,
  type RouteIdempotencyOptions,
  resolveOptions,
  routeIdempotency,
} from './options.ts';
import { REFUSED, refusalsCounter } from './telemetry.ts';

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

function send(reply: FastifyReply, response: HttpResponse): FastifyReply {
  return reply.code(response.status).headers(response.headers).send(response.body);
}

function scopeOf(request: FastifyRequest): RequestScope {
  return request.bulwark as RequestScope;
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

/** The 504 of a request whose deadline passed before its handler could start. */
function expiredBeforeHandler(scope: RequestScope): HttpResponse {
  return problemResponse(504, {
    type: 'urn:bulwark:deadline:expired',
    title: 'The deadline of the request passed before it could be processed',
    detail: `The ${scope.deadline!.budgetMs} ms budget ran out before the handler started.`,
  });
}

type Hook<H> = H | H[] | undefined;
function append<H>(hooks: Hook<H>, hook: H): H[] {
  return hooks === undefined ? [hook] : Array.isArray(hooks) ? [...hooks, hook] : [hooks, hook];
}

/** Per request state of an idempotent route. */
interface Held {
  readonly decision: Extract<HttpDecision, { action: 'proceed' }>;
  settled: boolean;
}
const HELD = Symbol('bulwark.idempotency');
type WithHeld = FastifyRequest & { [HELD]?: Held };

/** What the response sent, as the idempotency mapping stores it, or undefined when it cannot be stored. */
function captured(reply: FastifyReply, payload: unknown): HttpResponse | undefined {
  let body: string;
  if (payload === null || payload === undefined) body = '';
  else if (typeof payload === 'string') body = payload;
  else if (Buffer.isBuffer(payload) && isUtf8(payload)) body = payload.toString('utf8');
  else return undefined; // a stream, or binary content
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value === undefined || TRANSFER_HEADERS.has(name.toLowerCase())) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return { status: reply.statusCode, headers, body };
}

function addIdempotency(routeOptions: RouteOptions, options: RouteIdempotencyOptions): void {
  const { http, scope } = routeIdempotency(`${routeOptions.method} ${routeOptions.url}`, options);
  const begin: preHandlerHookHandler = async (request, reply) => {
    const raw = request.headers[KEY_HEADER];
    const decision = await http.begin({
      key: Array.isArray(raw) ? raw.join(', ') : raw,
      fingerprint: { method: request.method, url: request.url, body: request.body ?? null },
      scope: scope?.(request),
    });
    if (decision.action === 'respond') return send(reply, decision.response);
    if (decision.key === undefined) return;
    const held: Held = { decision, settled: false };
    (request as WithHeld)[HELD] = held;
    const bulwark = request.bulwark as RequestScope | null;
    if (bulwark !== null) bulwark.idempotencyKey = decision.key;
  };
  const commit: onSendHookHandler = async (request, reply, payload) => {
    const held = (request as WithHeld)[HELD];
    if (held === undefined || held.settled) return payload;
    held.settled = true;
    const response = captured(reply, payload);
    // Stored before the response leaves, so a retry that follows it is replayed.
    if (response === undefined) await held.decision.release();
    else await held.decision.commit(response);
    return payload;
  };
  routeOptions.preHandler = append(routeOptions.preHandler, begin);
  routeOptions.onSend = append(routeOptions.onSend as Hook<onSendHookHandler>, commit);
}

function register(fastify: FastifyInstance, resolved: ResolvedOptions): void {
  const { bulkhead, clock } = resolved;
  const limits = { defaultTimeoutMs: resolved.defaultTimeoutMs, maxTimeoutMs: resolved.maxTimeoutMs };
  fastify.decorateRequest('bulwark', null as unknown as BulwarkRequestContext);

  // On arrival: refuse what cannot be served, then take a slot.
  fastify.addHook('onRequest', (request, reply, done) => {
    const inbound = readInboundDeadline(request.headers, limits);
    if (inbound.kind !== 'budget') {
      refusalsCounter.add(1, inbound.kind === 'invalid' ? REFUSED.invalidDeadline : REFUSED.deadlineExpired);
      send(reply, problemResponse(inbound.status, inbound.problem));
      return;
    }
    let permit: ReturnType<NonNullable<typeof bulkhead>['tryAcquire']>;
    if (bulkhead !== undefined) {
      permit = bulkhead.tryAcquire();
      if (permit === undefined) {
        refusalsCounter.add(1, REFUSED.overloaded);
        send(reply, overloaded(resolved.retryAfterSeconds));
        return;
      }
    }
    const scope = new RequestScope(inbound.timeoutMs, inbound.header, permit, clock);
    request.bulwark = scope;
    const res = reply.raw;
    res.once('close', () => scope.close(res.writableEnded, res.statusCode));
    done();
  });

  // Right before the handler (after the body was read): run the rest inside the deadline.
  fastify.addHook('preHandler', (request, reply, done) => {
    const scope = scopeOf(request);
    if (scope === null || scope.deadline === undefined) return done();
    if (scope.deadline.expired()) {
      refusalsCounter.add(1, REFUSED.deadlineExpired);
      send(reply, expiredBeforeHandler(scope));
      return;
    }
    // Entered right before the handler, so the scope covers it whatever the
    // hooks and body parsing in between did with the async context.
    withDeadline(scope.deadline.remaining(), () => done(), { clock });
  });

  fastify.addHook('onRoute', (routeOptions) => {
    const idempotency = (routeOptions.config as { idempotency?: RouteIdempotencyOptions } | undefined)
      ?.idempotency;
    if (idempotency !== undefined) addIdempotency(routeOptions, idempotency);
  });
}

/**
 * The Fastify 5 plugin. For every request it:
 * - reads the deadline headers (`grpc-timeout`, `x-request-timeout-ms`,
 *   `connect-timeout-ms`, `x-envoy-expected-rq-timeout-ms`; the smallest wins),
 *   answers 400 problem+json naming a malformed one, and 504 when the budget
 *   was spent on arrival;
 * - sheds load with `bulkhead.tryAcquire()`: 503 with `Retry-After` when full;
 *   the slot goes back exactly once, when the response closes;
 * - runs the handler inside `withDeadline`, and exposes `request.bulwark.signal`,
 *   which aborts at the deadline or when the client disconnects;
 * - makes routes with `config: { idempotency: { store, required } }` idempotent,
 *   with the HTTP semantics of `httpIdempotency()` from @bulwark/idempotency.
 *
 * It is not encapsulated (`Symbol.for('skip-override')`, as `fastify-plugin`
 * does): its hooks apply to the instance it is registered on and to every
 * child context. Register it before the routes.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function bulwarkFastify(
  fastify: FastifyInstance,
  options: BulwarkFastifyOptions,
  done: (error?: Error) => void,
): void {
  let resolved: ResolvedOptions;
  try {
    resolved = resolveOptions(options);
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
