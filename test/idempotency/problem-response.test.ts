import { problemResponse } from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

describe('problemResponse()', () => {
  it('builds an application/problem+json response with type, title, status and detail', () => {
    const response = problemResponse(400, {
      type: 'urn:example:bad',
      title: 'The x-request-timeout-ms header is malformed',
      detail: 'expected an integer',
    });
    expect(response.status).toBe(400);
    expect(response.headers).toEqual({ 'content-type': 'application/problem+json' });
    expect(JSON.parse(response.body)).toEqual({
      type: 'urn:example:bad',
      title: 'The x-request-timeout-ms header is malformed',
      status: 400,
      detail: 'expected an integer',
    });
  });

  it('adds Retry-After in whole seconds, rounded up, when asked to', () => {
    const response = problemResponse(503, { type: 't', title: 'busy', detail: 'later' }, 1.2);
    expect(response.headers['retry-after']).toBe('2');
    expect(
      problemResponse(503, { type: 't', title: 'busy', detail: 'later' }, 0).headers['retry-after'],
    ).toBe('0');
  });
});
