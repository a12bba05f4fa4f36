import { BulwarkError } from '@bulwark/core';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';

const OUTBOUND_KEYS = optionKeys<OutboundDeadlineOptions>({ safetyMarginMs: true, grpc: true });

/** A deadline header whose value cannot be parsed. Names the header and the value. */
export class InvalidDeadlineHeaderError extends BulwarkError<'ERR_INVALID_DEADLINE_HEADER'> {
  readonly header: string;
  readonly value: string;
  constructor(header: string, value: string, expected: string) {
    super(
      'ERR_INVALID_DEADLINE_HEADER',
      `invalid ${header} header ${JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value)}: expected ${expected}`,
    );
    this.header = header;
    this.value = value;
  }
}

/** The headers bulwark reads a deadline from, and how each is written. */
export const DEADLINE_HEADERS = Object.freeze({
  /** gRPC's `TimeoutValue TimeoutUnit`: at most 8 digits, then one of H M S m u n. Read and written. */
  grpc: 'grpc-timeout',
  /** Integer milliseconds. bulwark's own; read and written. */
  requestTimeoutMs: 'x-request-timeout-ms',
  /** Connect protocol timeout, integer milliseconds (at most 10 digits). Read only. */
  connectTimeoutMs: 'connect-timeout-ms',
  /** Envoy's expected request timeout, integer milliseconds. Read only. */
  envoyExpectedTimeoutMs: 'x-envoy-expected-rq-timeout-ms',
} as const);

/** Each unit as a multiplier of milliseconds, or (sub-millisecond units) a divisor. */
const GRPC_UNITS: ReadonlyArray<readonly [unit: string, toMs: (count: number) => number]> = [
  ['n', (count) => count / 1e6],
  ['u', (count) => count / 1e3],
  ['m', (count) => count],
  ['S', (count) => count * 1e3],
  ['M', (count) => count * 60e3],
  ['H', (count) => count * 3600e3],
];
const GRPC_MAX_VALUE = 99_999_999;
/** Optional whitespace around a value is SP and HTAB only (RFC 9110 §5.6.3). */
const GRPC_PATTERN = /^[ \t]*([0-9]{1,8})([HMSmun])[ \t]*$/;
const TIMEOUT_MS_PATTERN = /^[ \t]*([0-9]+)[ \t]*$/;

/**
 * Encodes a duration as a `grpc-timeout` value, in the finest unit whose value
 * fits in 8 digits, rounding up so the peer never gets less than `ms`.
 * Durations beyond 99,999,999 hours are capped there. Negative counts as 0.
 */
export function encodeGrpcTimeout(ms: number): string {
  if (Number.isNaN(ms)) throw new RangeError('encodeGrpcTimeout: ms must be a number, got NaN');
  const value = Math.max(0, ms);
  for (const [unit, toMs] of GRPC_UNITS) {
    let count = Math.ceil(value / toMs(1));
    // Binary rounding can push the quotient just past an integer
    // (0.3 / 1e-6 = 300000.00000000006): keep the smaller count when it decodes
    // to at least the duration.
    if (count > 0 && toMs(count - 1) >= value) count -= 1;
    if (count <= GRPC_MAX_VALUE) return `${count}${unit}`;
  }
  return `${GRPC_MAX_VALUE}H`;
}

/**
 * Decodes a `grpc-timeout` value into milliseconds. Spaces and horizontal
 * tabs around it are ignored (HTTP's optional whitespace); nothing else is.
 * @throws InvalidDeadlineHeaderError for anything but 1–8 digits and a unit.
 */
export function decodeGrpcTimeout(value: string): number {
  const match = typeof value === 'string' ? GRPC_PATTERN.exec(value) : null;
  if (match === null) {
    throw new InvalidDeadlineHeaderError(
      DEADLINE_HEADERS.grpc,
      String(value),
      'at most 8 digits followed by one of H, M, S, m, u, n',
    );
  }
  const toMs = GRPC_UNITS.find(([unit]) => unit === match[2])![1];
  return toMs(Number(match[1]));
}

/**
 * The largest value the integer-millisecond encoder writes: 15 digits (about
 * 31,700 years), the most {@link decodeTimeoutMs} reads by default.
 */
const MAX_TIMEOUT_MS = 999_999_999_999_999;

/**
 * Encodes a duration as integer milliseconds, rounded up. Negative counts as 0;
 * durations beyond 15 digits (about 31,700 years) are capped there.
 */
export function encodeTimeoutMs(ms: number): string {
  if (Number.isNaN(ms)) throw new RangeError('encodeTimeoutMs: ms must be a number, got NaN');
  return String(Math.min(MAX_TIMEOUT_MS, Math.ceil(Math.max(0, ms))));
}

/**
 * Decodes an integer-milliseconds header value. Spaces and horizontal tabs
 * around it are ignored (HTTP's optional whitespace); nothing else is.
 * @throws InvalidDeadlineHeaderError unless it is 1 to `maxDigits` digits.
 */
export function decodeTimeoutMs(
  value: string,
  header: string = DEADLINE_HEADERS.requestTimeoutMs,
  maxDigits = 15,
): number {
  const match = typeof value === 'string' ? TIMEOUT_MS_PATTERN.exec(value) : null;
  if (match === null || match[1]!.length > maxDigits) {
    throw new InvalidDeadlineHeaderError(
      header,
      String(value),
      `an integer number of milliseconds (1 to ${maxDigits} digits)`,
    );
  }
  return Number(match[1]);
}

/** Any shape of headers: a Fetch `Headers`, Node's `IncomingHttpHeaders`, or a plain record. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | number | undefined>>;

function readAll(headers: HeaderSource, name: string): string[] {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const value = (headers as { get(name: string): string | null }).get(name);
    return value === null ? [] : [value];
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | number | undefined>>;
  let value = record[name];
  if (value === undefined) {
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() === name) {
        value = record[key];
        break;
      }
    }
  }
  if (value === undefined) return [];
  if (typeof value === 'number') return [String(value)];
  return typeof value === 'string' ? [value] : [...value];
}

/** A deadline read from inbound headers. */
export interface InboundTimeout {
  /** The smallest budget present, in milliseconds. */
  readonly timeoutMs: number;
  /** The header it came from. */
  readonly header: string;
}

const READERS: ReadonlyArray<readonly [string, (value: string) => number]> = [
  [DEADLINE_HEADERS.grpc, decodeGrpcTimeout],
  [DEADLINE_HEADERS.requestTimeoutMs, (v) => decodeTimeoutMs(v, DEADLINE_HEADERS.requestTimeoutMs)],
  [DEADLINE_HEADERS.connectTimeoutMs, (v) => decodeTimeoutMs(v, DEADLINE_HEADERS.connectTimeoutMs, 10)],
  [
    DEADLINE_HEADERS.envoyExpectedTimeoutMs,
    (v) => decodeTimeoutMs(v, DEADLINE_HEADERS.envoyExpectedTimeoutMs),
  ],
];

/**
 * Reads the budget an inbound request carries: the smallest of every deadline
 * header present (a comma-joined or repeated header counts each value), or
 * undefined when there is none.
 * @throws InvalidDeadlineHeaderError naming the first malformed header and its value.
 */
export function readDeadlineHeaders(headers: HeaderSource): InboundTimeout | undefined {
  let best: InboundTimeout | undefined;
  for (const [name, decode] of READERS) {
    for (const raw of readAll(headers, name)) {
      for (const part of raw.split(',')) {
        const timeoutMs = decode(part);
        if (best === undefined || timeoutMs < best.timeoutMs) best = { timeoutMs, header: name };
      }
    }
  }
  return best;
}

/** Options for {@link deadlineHeaders}. */
export interface OutboundDeadlineOptions {
  /**
   * Milliseconds subtracted from the remaining budget before it is sent, to
   * leave time for the answer to travel back. Default: 0.
   */
  readonly safetyMarginMs?: number | undefined;
  /** Also send `grpc-timeout`. Default: false. */
  readonly grpc?: boolean | undefined;
}

/**
 * The headers that carry `remainingMs` downstream: `x-request-timeout-ms` and,
 * optionally, `grpc-timeout`. Always a relative duration, never a wall-clock
 * instant, since clocks on different hosts disagree. Returns an empty object
 * when there is no deadline (`remainingMs` is Infinity).
 */
export function deadlineHeaders(
  remainingMs: number,
  options?: OutboundDeadlineOptions,
): Record<string, string> {
  const check = new OptionsChecker('deadlineHeaders()');
  check.knownKeys(options, OUTBOUND_KEYS);
  check.number('remainingMs', remainingMs, { infinite: true, required: true });
  check.number('safetyMarginMs', options?.safetyMarginMs, { min: 0 });
  check.done();
  if (remainingMs === Number.POSITIVE_INFINITY) return {};
  const budget = Math.max(0, remainingMs - (options?.safetyMarginMs ?? 0));
  const headers: Record<string, string> = { [DEADLINE_HEADERS.requestTimeoutMs]: encodeTimeoutMs(budget) };
  if (options?.grpc) headers[DEADLINE_HEADERS.grpc] = encodeGrpcTimeout(budget);
  return headers;
}

/** Options for {@link readInboundDeadline}. */
export interface InboundDeadlineOptions {
  /**
   * The budget of a request that carries no deadline header, in milliseconds
   * (> 0). Default: Infinity (no deadline).
   */
  readonly defaultTimeoutMs?: number | undefined;
  /**
   * The largest budget accepted, in milliseconds (> 0): a longer inbound budget
   * is cut to it. Default: Infinity (no cap).
   */
  readonly maxTimeoutMs?: number | undefined;
}

/** A refusal as RFC 9457 problem members, for a server to send as `application/problem+json`. */
export interface DeadlineProblem {
  readonly type: string;
  readonly title: string;
  readonly detail: string;
}

/** What a server should do with a request's deadline headers; see {@link readInboundDeadline}. */
export type InboundDeadline =
  /**
   * Serve it within `timeoutMs` (Infinity: no deadline). `header` is where the
   * budget came from; undefined when it is the default (or there is none).
   */
  | { readonly kind: 'budget'; readonly timeoutMs: number; readonly header: string | undefined }
  /** The budget was already spent when the request arrived: answer 504 without serving it. */
  | {
      readonly kind: 'expired';
      readonly header: string;
      readonly status: 504;
      readonly problem: DeadlineProblem;
    }
  /** A deadline header is malformed: answer 400, naming it. */
  | {
      readonly kind: 'invalid';
      readonly header: string;
      readonly error: InvalidDeadlineHeaderError;
      readonly status: 400;
      readonly problem: DeadlineProblem;
    };

/**
 * Decides what a server does with an inbound request's deadline: the smallest
 * budget among its deadline headers (see {@link readDeadlineHeaders}), capped
 * at `maxTimeoutMs`, or `defaultTimeoutMs` when it has none. A budget of 0 has
 * expired on arrival (504); a malformed header is a client error (400). The
 * problem `type`s are `urn:bulwark:deadline:expired` and
 * `urn:bulwark:deadline:invalid-header`. Never throws for header content.
 * @throws InvalidOptionsError (a RangeError) for bad options.
 */
export function readInboundDeadline(
  headers: HeaderSource,
  options?: InboundDeadlineOptions,
): InboundDeadline {
  const defaultTimeoutMs = options?.defaultTimeoutMs ?? Number.POSITIVE_INFINITY;
  const maxTimeoutMs = options?.maxTimeoutMs ?? Number.POSITIVE_INFINITY;
  if (options !== undefined) {
    const check = new OptionsChecker('readInboundDeadline()');
    check.number('defaultTimeoutMs', options.defaultTimeoutMs, { above: 0, infinite: true });
    check.number('maxTimeoutMs', options.maxTimeoutMs, { above: 0, infinite: true });
    check.done();
  }
  let inbound: InboundTimeout | undefined;
  try {
    inbound = readDeadlineHeaders(headers);
  } catch (error) {
    if (!(error instanceof InvalidDeadlineHeaderError)) throw error;
    return {
      kind: 'invalid',
      header: error.header,
      error,
      status: 400,
      problem: {
        type: 'urn:bulwark:deadline:invalid-header',
        title: `The ${error.header} header is malformed`,
        detail: error.message,
      },
    };
  }
  if (inbound === undefined) {
    return { kind: 'budget', timeoutMs: Math.min(defaultTimeoutMs, maxTimeoutMs), header: undefined };
  }
  if (inbound.timeoutMs <= 0) {
    return {
      kind: 'expired',
      header: inbound.header,
      status: 504,
      problem: {
        type: 'urn:bulwark:deadline:expired',
        title: 'The deadline of the request had passed when it arrived',
        detail: `The ${inbound.header} header gave no time left, so the request was not processed.`,
      },
    };
  }
  return { kind: 'budget', timeoutMs: Math.min(inbound.timeoutMs, maxTimeoutMs), header: inbound.header };
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_INVALID_DEADLINE_HEADER: InvalidDeadlineHeaderError;
  }
}
