// Only SP and HTAB are optional whitespace around an HTTP field value
// (RFC 9110 §5.6.3). JavaScript's trim() also strips the no-break space, the
// vertical tab, line separators and the BOM, so `5000\xA0` used to pass as a
// deadline of 5000 ms.
import { VirtualClock } from '@bulwark/clock';
import { decodeGrpcTimeout, decodeTimeoutMs, readInboundDeadline } from '@bulwark/deadline';
import { createFetch, discardResponse } from '@bulwark/fetch';
import { admitRequest, resolveServerOptions } from '@bulwark/http-server';
import { describe, expect, it } from 'vitest';
import { fakeFetch, settle, trackedResponse } from '../fetch/helpers.ts';
import { FakeResponse } from '../http-server/support.ts';

/** Characters JavaScript's trim() strips that HTTP does not count as whitespace. */
const NOT_OWS = ['\xA0', '\v', '\f', '\n', '\r', '\u2028', '\uFEFF', '\u3000'];

describe('deadline headers and optional whitespace', () => {
  it.each(NOT_OWS.map((ch) => [JSON.stringify(ch), ch]))(
    'refuses a value padded with %s, naming the header',
    (_, ch) => {
      for (const value of [`5000${ch}`, `${ch}5000`]) {
        expect(() => decodeTimeoutMs(value)).toThrow(/x-request-timeout-ms/);
        expect(() => decodeGrpcTimeout(value.replace('5000', '5S'))).toThrow(/grpc-timeout/);
        const decision = readInboundDeadline({ 'x-request-timeout-ms': value });
        expect(decision.kind).toBe('invalid');
      }
    },
  );

  it('accepts spaces and horizontal tabs around a value', () => {
    expect(decodeTimeoutMs(' \t5000\t ')).toBe(5000);
    expect(decodeGrpcTimeout('\t5S ')).toBe(5000);
    expect(readInboundDeadline({ 'x-request-timeout-ms': '200, \t100' })).toEqual({
      kind: 'budget',
      timeoutMs: 100,
      header: 'x-request-timeout-ms',
    });
  });

  it('still limits the digits, not the padding', () => {
    expect(decodeTimeoutMs(`   ${'9'.repeat(15)}   `)).toBe(999_999_999_999_999);
    expect(() => decodeTimeoutMs('9'.repeat(16))).toThrow(/1 to 15 digits/);
    expect(decodeTimeoutMs(' 1234567890 ', 'connect-timeout-ms', 10)).toBe(1_234_567_890);
  });

  it('answers 400 on the server inbound path for a no-break space after the value', () => {
    const options = resolveServerOptions({ clock: new VirtualClock() }, 'test()');
    const admission = admitRequest({ 'x-request-timeout-ms': '5000\xA0' }, new FakeResponse(), options);
    expect(admission.admitted).toBe(false);
    if (admission.admitted) return;
    expect(admission.response.status).toBe(400);
    expect(JSON.parse(admission.response.body).type).toBe('urn:bulwark:deadline:invalid-header');
  });
});

describe('createFetch and optional whitespace in the headers it reads', () => {
  it('does not take a caller x-request-timeout-ms padded with a no-break space as a budget', async () => {
    const fake = fakeFetch(() => new Response('ok'));
    const fetch = createFetch({
      clock: new VirtualClock(),
      fetch: fake.fetch,
      deadlineMs: 2_000,
      safetyMarginMs: 0,
    });
    await fetch('http://a.test/', { headers: { 'x-request-timeout-ms': '500\xA0' } });
    await fetch('http://a.test/', { headers: { 'x-request-timeout-ms': ' 500\t' } });
    expect(fake.seen[0]!.request.headers.get('x-request-timeout-ms')).toBe('2000');
    // The Fetch standard strips SP and HTAB around a header value; what is left is the value.
    expect(fake.seen[1]!.request.headers.get('x-request-timeout-ms')).toBe('500');
  });

  it('does not drain a body whose Content-Length is padded with a no-break space: it is not a length', async () => {
    const padded = trackedResponse(503, 'abc', { 'content-length': '3\xA0' });
    discardResponse(padded.response, 5);
    await settle();
    expect(padded.state).toEqual({ cancelled: true, finished: false });
  });
});
