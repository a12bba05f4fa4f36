import { BulwarkError, OptionsChecker } from '@bulwark/core';

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
const GRPC_PATTERN = /^([0-9]{1,8})([HMSmun])$/;

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
 * Decodes a `grpc-timeout` value into milliseconds.
 * @throws InvalidDeadlineHeaderError for anything but 1–8 digits and a unit.
 */
export function decodeGrpcTimeout(value: string): number {
  const match = typeof value === 'string' ? GRPC_PATTERN.exec(value.trim()) : null;
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

/** Encodes a duration as integer milliseconds, rounded up. Negative counts as 0. */
export function encodeTimeoutMs(ms: number): string {
  if (Number.isNaN(ms)) throw new RangeError('encodeTimeoutMs: ms must be a number, got NaN');
  return String(Math.min(Number.MAX_SAFE_INTEGER, Math.ceil(Math.max(0, ms))));
}

/**
 * Decodes an integer-milliseconds header value.
 * @throws InvalidDeadlineHeaderError unless it is 1 to `maxDigits` digits.
 */
export function decodeTimeoutMs(
  value: string,
  header: string = DEADLINE_HEADERS.requestTimeoutMs,
  maxDigits = 15,
): number {
  const text = typeof value === 'string' ? value.trim() : '';
  if (text.length === 0 || text.length > maxDigits || !/^[0-9]+$/.test(text)) {
    throw new InvalidDeadlineHeaderError(
      header,
      String(value),
      `an integer number of milliseconds (1 to ${maxDigits} digits)`,
    );
  }
  return Number(text);
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
  readonly safetyMarginMs?: number;
  /** Also send `grpc-timeout`. Default: false. */
  readonly grpc?: boolean;
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
  check.number('remainingMs', remainingMs, { infinite: true, required: true });
  check.number('safetyMarginMs', options?.safetyMarginMs, { min: 0 });
  check.done();
  if (remainingMs === Number.POSITIVE_INFINITY) return {};
  const budget = Math.max(0, remainingMs - (options?.safetyMarginMs ?? 0));
  const headers: Record<string, string> = { [DEADLINE_HEADERS.requestTimeoutMs]: encodeTimeoutMs(budget) };
  if (options?.grpc) headers[DEADLINE_HEADERS.grpc] = encodeGrpcTimeout(budget);
  return headers;
}
