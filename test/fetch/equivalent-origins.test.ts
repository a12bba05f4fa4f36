import { BrokenCircuitError, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { createFetch } from '@bulwark/fetch';
import { constant } from '@bulwark/retry';
import { SpanKind } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';
import { fakeFetch, hang, type Script, settle } from './helpers.ts';

const A = 'http://a.test';
const B = 'http://b.test:8080';
const C = 'https://c.test';
const GROUP = [A, B, C];

function setup(script: Script, options: Parameters<typeof createFetch>[0] = {}) {
  const clock = new VirtualClock();
  const fake = fakeFetch(script);
  const fetch = createFetch({
    clock,
    fetch: fake.fetch,
    backoff: constant(100),
    origins: [GROUP],
    breakers: { trip: consecutive(1) },
    ...options,
  });
  return { clock, fetch, seen: fake.seen };
}

/** The origins the attempts went to, in order. */
const originsOf = (seen: { request: Request }[]) => seen.map((s) => new URL(s.request.url).origin);

/** Runs a call while the clock moves on, until it settles. */
async function drive(clock: VirtualClock, pending: Promise<Response>): Promise<Response> {
  let done = false;
  const result = pending.finally(() => {
    done = true;
  });
  result.catch(() => {});
  for (let i = 0; i < 200 && !done; i++) {
    await settle();
    await clock.advance(50);
  }
  return result;
}

const failing =
  (origins: string[]): Script =>
  (request) =>
    origins.includes(new URL(request.url).origin)
      ? Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }))
      : new Response(`from ${new URL(request.url).host}`);

afterEach(async () => {
  await resetOtel();
});

describe('createFetch() equivalent origins', () => {
  it('retries on another origin of the group, keeping path, query and fragment', async () => {
    const { clock, fetch, seen } = setup(failing([A]));
    const response = await drive(clock, fetch(`${A}/items/42?full=1#top`));
    expect(await response.text()).toBe('from b.test:8080');
    expect(seen.map((s) => s.request.url)).toEqual([`${A}/items/42?full=1#top`, `${B}/items/42?full=1#top`]);
    expect(seen[1]!.request.headers.get('x-retry-attempt')).toBe('2');
  });

  it('never sends a retry to the origin that just failed while another admits it', async () => {
    const { clock, fetch, seen } = setup(failing([A, B]));
    const response = await drive(clock, fetch(`${B}/items`));
    // From the requested origin on, round: b, then c.
    expect(originsOf(seen)).toEqual([B, C]);
    expect(await response.text()).toBe('from c.test');
  });

  it('skips an origin whose breaker is open, for a retry and for a first attempt', async () => {
    const { clock, fetch, seen } = setup(failing([A, B]));
    // One failure opens an origin's breaker (consecutive(1)): b fails and opens, c answers.
    await drive(clock, fetch(`${B}/x`));
    expect(originsOf(seen)).toEqual([B, C]);
    expect(fetch.breakers?.peek(B)?.state).toBe('open');
    // a fails and opens; its retry skips b (open) for c.
    const retried = await drive(clock, fetch(`${A}/x`));
    expect(await retried.text()).toBe('from c.test');
    expect(originsOf(seen).slice(2)).toEqual([A, C]);
    // a and b open: the first attempt of a call to a goes straight to c.
    const first = await fetch(`${A}/y`);
    expect(await first.text()).toBe('from c.test');
    expect(originsOf(seen).slice(4)).toEqual([C]);
  });

  it('throws the breaker’s refusal when no origin of the group admits', async () => {
    const { clock, fetch, seen } = setup(failing(GROUP));
    await expect(drive(clock, fetch(`${A}/x`))).rejects.toThrow('fetch failed');
    expect(originsOf(seen)).toEqual([A, B, C]);
    await expect(fetch(`${A}/x`)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(seen).toHaveLength(3);
  });

  it('leaves a URL outside every group alone', async () => {
    const { clock, fetch, seen } = setup(failing(['http://other.test']));
    await expect(drive(clock, fetch('http://other.test/x'))).rejects.toBeInstanceOf(BrokenCircuitError);
    // The first failure opened its breaker: the retry met the refusal, and no other origin was tried.
    expect(originsOf(seen)).toEqual(['http://other.test']);
  });

  it('moves a Request with its method, headers and body, and a URL object', async () => {
    const { clock, fetch, seen } = setup(failing([A]), { breakers: false });
    const request = new Request(`${A}/orders?v=2`, {
      method: 'POST',
      body: 'order',
      headers: { 'idempotency-key': '"k1"', 'content-type': 'text/plain' },
    });
    const response = await drive(clock, fetch(request));
    expect(response.status).toBe(200);
    expect(seen.map((s) => [s.request.method, s.request.url, s.body])).toEqual([
      ['POST', `${A}/orders?v=2`, 'order'],
      ['POST', `${B}/orders?v=2`, 'order'],
    ]);
    expect(seen[1]!.request.headers.get('idempotency-key')).toBe('"k1"');
    expect(seen[1]!.request.headers.get('content-type')).toBe('text/plain');

    const fromUrl = await drive(clock, fetch(new URL(`${A}/u?q=1`)));
    expect(fromUrl.status).toBe(200);
    expect(seen.slice(2).map((s) => s.request.url)).toEqual([`${A}/u?q=1`, `${B}/u?q=1`]);
  });

  it('sends a hedge to another origin of the group', async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch((request) =>
      new URL(request.url).origin === A ? hang(request) : new Response('fast replica'),
    );
    const fetch = createFetch({ clock, fetch: fake.fetch, origins: [GROUP], hedging: { delayMs: 100 } });
    const pending = fetch(`${A}/search`);
    await clock.advance(100);
    const response = await pending;
    expect(await response.text()).toBe('fast replica');
    expect(originsOf(fake.seen)).toEqual([A, B]);
    expect(fake.seen[0]!.request.signal.aborted).toBe(true);
  });

  it('names the origin an attempt went to on its CLIENT span', async () => {
    const otel = installOtel({ tracing: true });
    const { clock, fetch } = setup(failing([A]), { spans: 'attempts' });
    await drive(clock, fetch(`${A}/items?q=1`));
    const clients = otel.spans().filter((span) => span.kind === SpanKind.CLIENT);
    expect(clients.map((span) => span.attributes['url.full'])).toEqual([`${A}/items?q=1`, `${B}/items?q=1`]);
    expect(clients[1]!.attributes['server.port']).toBe(8080);
  });

  it('refuses bad groups, naming the value', () => {
    const refuse = (origins: unknown, pattern: RegExp) => {
      const make = () => createFetch({ origins: origins as never });
      expect(make).toThrow(InvalidOptionsError);
      expect(make).toThrow(pattern);
    };
    refuse('http://a.test', /origins must be an array of groups/);
    refuse([[A]], /origins\[0\] must be an array of at least 2 origins/);
    refuse(
      [[A, 'http://b.test/api']],
      /origins\[0\]\[1\] must be an http\(s\) origin.*got "http:\/\/b.test\/api"/,
    );
    refuse([[A, 'ftp://b.test']], /origins\[0\]\[1\] must be an http\(s\) origin/);
    refuse([[A, 'http://b.test?x']], /origins\[0\]\[1\] must be an http\(s\) origin/);
    refuse(
      [
        [A, B],
        [C, 'http://A.test:80/'],
      ],
      /origins\[1\]\[1\]: names http:\/\/a.test a second time/,
    );
    // A trailing slash, upper case and a default port are the same origin.
    expect(() => createFetch({ origins: [['HTTP://A.test:80/', 'https://b.test:443']] })).not.toThrow();
  });
});
