import { failSpan, Telemetry, type TelemetrySpan } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/fetch', '0.1.0');

export type Attributes = Record<string, string | number>;

/** The HTTP client span attributes of a request (semantic conventions: url.full without credentials). */
export function requestAttributes(method: string, url: string): Attributes {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { 'http.request.method': method };
  }
  parsed.username = '';
  parsed.password = '';
  const port = parsed.port === '' ? (parsed.protocol === 'https:' ? 443 : 80) : Number(parsed.port);
  return {
    'http.request.method': method,
    'url.full': parsed.href,
    'server.address': parsed.hostname,
    'server.port': port,
  };
}

/** Records a response's status on a span; 4xx and 5xx mark it failed, as the HTTP client conventions say. */
export function markStatus(span: TelemetrySpan, response: Response): Response {
  span.setAttribute('http.response.status_code', response.status);
  if (response.status >= 400) failSpan(span, { code: String(response.status) });
  return response;
}
