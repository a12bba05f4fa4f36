import { VirtualClock } from '@bulwark/clock';
import { createFetch, OriginBulkheads } from '@bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { fakeFetch } from './helpers.ts';

function setup() {
  const clock = new VirtualClock();
  const fake = fakeFetch(() => new Response('ok'));
  const fetch = createFetch({ clock, fetch: fake.fetch });
  return { fetch, seen: fake.seen };
}

/** Strings whose origin createFetch() works out from their scheme and authority alone, and some it must parse in full. */
const URLS = [
  'http://a.test/items',
  'http://a.test',
  'http://A.TEST:80/x',
  'https://a.test:443/x?y#z',
  'https://a.test:8443',
  'http://a.test?q=1',
  'http://a.test#top',
  'http://a.test\\path',
  'http://user:secret@a.test:8080/p',
  'http://us?er@b.test/',
  'http://[::1]:8080/',
  'http://127.0.0.1:9/',
  'http://%61.test/',
  'http://xn--nxasmq6b.test/',
  'http://b.test\t/x',
  ' http://c.test/',
  'HTTP://d.test/',
  'http:e.test/',
  'http:///f.test/',
  'https:\\\\g.test/',
];

describe('createFetch() origins', () => {
  it('keys breakers and bulkheads by the origin the URL parser gives, for every shape of URL string', async () => {
    for (const url of URLS) {
      const { fetch, seen } = setup();
      // A Request cannot carry credentials in its URL: that one is refused, after its origin is known.
      const credentials = url.includes('@a.test');
      if (credentials) await expect(fetch(url)).rejects.toThrow(TypeError);
      else await fetch(url);
      const origin = new URL(url).origin;
      expect([...fetch.bulkheads!.keys()], url).toEqual([origin]);
      expect(fetch.breakers!.peek(origin), url).toBeDefined();
      if (!credentials) expect(seen[0]!.request.headers.get('x-retry-attempt'), url).toBe('1');
    }
  });

  it('gives the same answer the second time a scheme and authority come round, with other paths', async () => {
    const { fetch } = setup();
    await fetch('http://h.test:81/one');
    await fetch('http://h.test:81/two?x');
    await fetch('http://H.test:81/three');
    expect([...fetch.bulkheads!.keys()]).toEqual(['http://h.test:81']);
  });

  it('hands a string whose authority is not valid to the underlying fetch, every time', async () => {
    for (const url of ['http://a b.test/x', 'http://a.test:99999/', 'http://a.test:12a/', 'http://[::1/']) {
      for (let i = 0; i < 2; i++) {
        const { fetch, seen } = setup();
        await expect(fetch(url), url).rejects.toThrow(TypeError);
        expect(seen, url).toHaveLength(0);
        expect(fetch.bulkheads!.size, url).toBe(0);
      }
    }
  });

  it('stays right past the number of authorities it remembers', async () => {
    const { fetch } = setup();
    for (let i = 0; i < 600; i++) await fetch(`http://host-${i % 300}.test:${1000 + (i % 7)}/p/${i}`);
    for (let i = 0; i < 300; i++) {
      expect(fetch.bulkheads!.peek(`http://host-${i}.test:${1000 + (i % 7)}`)).toBeDefined();
    }
  });
});

describe('OriginBulkheads.get() for the origin it returned last', () => {
  it('returns the same bulkhead and keeps least recently used order', () => {
    const bulkheads = new OriginBulkheads({ maxOrigins: 3 });
    const a = bulkheads.get('http://a.test');
    expect(bulkheads.get('http://a.test')).toBe(a);
    bulkheads.get('http://b.test');
    expect(bulkheads.get('http://a.test')).toBe(a);
    expect(bulkheads.get('http://a.test')).toBe(a);
    expect([...bulkheads.keys()]).toEqual(['http://b.test', 'http://a.test']);
    bulkheads.get('http://c.test');
    bulkheads.get('http://c.test');
    bulkheads.get('http://d.test');
    // b was least recently used: it goes first.
    expect([...bulkheads.keys()]).toEqual(['http://a.test', 'http://c.test', 'http://d.test']);
    expect(bulkheads.get('http://d.test')).toBe(bulkheads.peek('http://d.test'));
  });

  it('hands out a new bulkhead after the last one was evicted', () => {
    const bulkheads = new OriginBulkheads({ maxOrigins: 1 });
    const a = bulkheads.get('http://a.test');
    bulkheads.get('http://b.test');
    expect(bulkheads.peek('http://a.test')).toBeUndefined();
    const again = bulkheads.get('http://a.test');
    expect(again).not.toBe(a);
    expect(bulkheads.get('http://a.test')).toBe(again);
    expect([...bulkheads.keys()]).toEqual(['http://a.test']);
  });
});
