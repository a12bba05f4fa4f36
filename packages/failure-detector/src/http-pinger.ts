import { type Clock, Ticker } from '@bulwark/clock';
import { DeadlineExceededError, type Disposable, type Listener } from '@bulwark/core';
import { bounded, EventHub, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { checkMonitor, type HeartbeatMonitor } from './monitor.ts';
import { probesCounter } from './telemetry.ts';

const PINGER_KEYS = optionKeys<HttpPingerOptions>({
  url: true,
  monitor: true,
  peerId: true,
  intervalMs: true,
  timeoutMs: true,
  method: true,
  fetch: true,
  clock: true,
});

/** The fetch function a pinger calls (the global `fetch` by default). */
export type PingFetch = (url: string, init: { method: string; signal: AbortSignal }) => Promise<PingResponse>;

/** The part of a fetch Response a pinger reads. */
export interface PingResponse {
  readonly status: number;
  /** The body, released after the status is read. */
  readonly body?: { cancel(): Promise<void> } | null | undefined;
}

/** Options for {@link httpPinger}. */
export interface HttpPingerOptions {
  /** The health URL to probe. Required. */
  readonly url: string | URL;
  /** The monitor a 2xx answer is reported to, as a heartbeat. Required. */
  readonly monitor: HeartbeatMonitor;
  /** The peer id the heartbeats are reported under. Default: the URL's origin. */
  readonly peerId?: string | undefined;
  /** Milliseconds between probes: a finite number > 0. Default: 1000. */
  readonly intervalMs?: number | undefined;
  /**
   * The deadline of one probe, in milliseconds: a finite number > 0 and at
   * most `intervalMs`, so probes never overlap. Default: `intervalMs`.
   */
  readonly timeoutMs?: number | undefined;
  /** The HTTP method. Default: `"GET"`. */
  readonly method?: 'GET' | 'HEAD' | undefined;
  /** The fetch to call. Default: the global `fetch`. */
  readonly fetch?: PingFetch | undefined;
  /** The clock of the probe timer and deadlines; use the monitor's. Default: the monitor's clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link httpPinger}. */
export const HTTP_PINGER_DEFAULTS = Object.freeze({ intervalMs: 1000, method: 'GET' as const });

/** How a probe ended. */
export type ProbeOutcome = 'ok' | 'bad-status' | 'timeout' | 'error';

/** Payload of `onProbe`. */
export interface ProbeEvent {
  readonly peerId: string;
  readonly outcome: ProbeOutcome;
  /** The HTTP status, when an answer came. */
  readonly status: number | undefined;
  /** The error, for `'error'`. */
  readonly error: unknown;
  /** Milliseconds from the start of the probe to its end. */
  readonly durationMs: number;
}

/** Counts of a pinger, by outcome. */
export type PingerStats = Readonly<Record<ProbeOutcome, number>>;

/**
 * Probes a health URL on an interval and reports every 2xx answer to a
 * monitor as a heartbeat. See {@link httpPinger}.
 */
export class HttpPinger implements Disposable {
  readonly url: string;
  readonly peerId: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly method: 'GET' | 'HEAD';
  readonly monitor: HeartbeatMonitor;
  readonly clock: Clock;
  readonly #fetch: PingFetch;
  readonly #onProbe = new EventHub<ProbeEvent>('httpPinger.onProbe');
  readonly #counts: Record<ProbeOutcome, number> = { ok: 0, 'bad-status': 0, timeout: 0, error: 0 };
  readonly #ticker: Ticker;
  #inFlight: AbortController | undefined;
  #disposed = false;

  constructor(options: HttpPingerOptions) {
    const check = new OptionsChecker('httpPinger()');
    check.knownKeys(options, PINGER_KEYS);
    let url: string | undefined;
    try {
      url = new URL(String(options?.url)).href;
    } catch {
      url = undefined;
    }
    check.expect(
      url !== undefined && /^https?:$/.test(new URL(url).protocol),
      'url',
      options?.url,
      'an http(s) URL',
    );
    const monitor = options?.monitor;
    checkMonitor(check, monitor);
    check.expect(
      options?.peerId === undefined || (typeof options.peerId === 'string' && options.peerId.length > 0),
      'peerId',
      options?.peerId,
      'a non-empty string',
    );
    const intervalOk = check.number('intervalMs', options?.intervalMs, { above: 0 });
    if (check.number('timeoutMs', options?.timeoutMs, { above: 0 }) && intervalOk) {
      const interval = options?.intervalMs ?? HTTP_PINGER_DEFAULTS.intervalMs;
      const timeout = options?.timeoutMs;
      check.expect(
        timeout === undefined || timeout <= interval,
        'timeoutMs',
        timeout,
        `at most intervalMs (${interval})`,
      );
    }
    check.oneOf('method', options?.method, ['GET', 'HEAD']);
    check.func('fetch', options?.fetch);
    check.clock('clock', options?.clock, true);
    check.done();
    this.url = url!;
    this.monitor = monitor;
    this.peerId = options.peerId ?? new URL(this.url).origin;
    this.intervalMs = options.intervalMs ?? HTTP_PINGER_DEFAULTS.intervalMs;
    this.timeoutMs = options.timeoutMs ?? this.intervalMs;
    this.method = options.method ?? HTTP_PINGER_DEFAULTS.method;
    this.clock = options.clock ?? monitor.clock;
    this.#fetch = options.fetch ?? (globalThis.fetch as unknown as PingFetch);
    monitor.add(this.peerId);
    // A probe still in flight (within its deadline) skips the tick.
    const tick = (): void => {
      if (this.#inFlight === undefined) void this.#probe();
    };
    this.#ticker = new Ticker(tick, { intervalMs: this.intervalMs, clock: this.clock }).start();
  }

  /** Called when a probe ends. */
  onProbe(listener: Listener<ProbeEvent>): Disposable {
    return this.#onProbe.subscribe(listener);
  }

  /** Probes made so far, by outcome. */
  get stats(): PingerStats {
    return { ...this.#counts };
  }

  /** Whether a probe is in flight now. */
  get probing(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Stops probing and aborts the probe in flight. Calling it again does nothing. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#ticker.stop();
    this.#inFlight?.abort(new Error('httpPinger disposed'));
    this.#inFlight = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  async #probe(): Promise<void> {
    const controller = new AbortController();
    this.#inFlight = controller;
    const start = this.clock.now();
    let outcome: ProbeOutcome;
    let status: number | undefined;
    let failure: unknown;
    try {
      // The probe (its answer and the release of its body) is bounded by its
      // deadline even if the fetch implementation ignores the signal.
      await bounded(
        async () => {
          const response = await this.#fetch(this.url, { method: this.method, signal: controller.signal });
          status = response.status;
          // Release the connection without reading the body.
          await response.body?.cancel().catch(() => {});
        },
        {
          at: start + this.timeoutMs,
          clock: this.clock,
          unref: true,
          expired: () => new DeadlineExceededError('timeout', this.timeoutMs),
          onEarly: (reason) => controller.abort(reason),
        },
      );
      if (controller.signal.aborted) outcome = 'timeout';
      else outcome = status! >= 200 && status! < 300 ? 'ok' : 'bad-status';
    } catch (error) {
      outcome = controller.signal.aborted && !this.#disposed ? 'timeout' : 'error';
      failure = error;
    } finally {
      if (this.#inFlight === controller) this.#inFlight = undefined;
    }
    if (this.#disposed) return;
    if (outcome === 'ok') this.monitor.heartbeat(this.peerId);
    this.#counts[outcome]++;
    probesCounter.add(1, { outcome });
    if (this.#onProbe.listening) {
      this.#onProbe.emit({
        peerId: this.peerId,
        outcome,
        status,
        error: failure,
        durationMs: this.clock.now() - start,
      });
    }
  }
}

/**
 * Probes `url` now and every `intervalMs`; each probe has a deadline of
 * `timeoutMs` (the interval by default), and a 2xx answer within it is a
 * heartbeat of `peerId` on `monitor` (the peer is added to the monitor).
 * Anything else (another status, a network error, the deadline) is simply
 * not a heartbeat: the monitor's detector decides when silence means failure.
 */
export function httpPinger(options: HttpPingerOptions): HttpPinger {
  return new HttpPinger(options);
}
