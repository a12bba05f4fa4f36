import type { IncomingMessage } from 'node:http';
import { type HttpResponse, problemResponse } from '@bulwark/idempotency';
import { enterDeadline } from './admission.ts';
import type { BulwarkRequestContext } from './context.ts';

/** The default of `maxUnparsedBodyBytes`: 1 MiB. */
export const DEFAULT_MAX_UNPARSED_BODY_BYTES = 1_048_576;

/** What {@link readUnparsedBody} found. */
export type UnparsedBody =
  /** The request has no body, or a parser has read it: fingerprint the parsed body. */
  | { readonly kind: 'parsed' }
  /** No parser had read the body: its bytes, read here and put back for the parsers and handler after. */
  | { readonly kind: 'raw'; readonly bytes: Buffer }
  /** The body cannot be fingerprinted: answer with `response`, do not run the handler. */
  | { readonly kind: 'refused'; readonly response: HttpResponse };

/** Options of {@link readUnparsedBody}. */
export interface ReadUnparsedBodyOptions {
  /** The largest body read, in bytes; a larger one is refused with 413. */
  readonly maxBytes: number;
  /** The request's context: reading stops at its deadline (504) or when the client goes away. */
  readonly context?: BulwarkRequestContext | null | undefined;
}

function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > 0;
}

let warned = false;

function problem(status: number, type: string, title: string, detail: string): UnparsedBody {
  return {
    kind: 'refused',
    response: problemResponse(status, { type: `urn:bulwark:idempotency:${type}`, title, detail }),
  };
}

/**
 * Makes sure an idempotent request's body is part of its fingerprint, in any
 * mounting order of the body parsers. When the request has a body that no
 * parser has read yet (no parser for its content type, or the parser is
 * mounted after the idempotency middleware), it reads the bytes (at most
 * `maxBytes`) and puts them back into the request stream (`unshift`, before
 * its `'end'`), so a parser or handler after it reads the body as usual.
 *
 * It refuses (never passes a request whose body it cannot see):
 * - 413 problem+json when the body is larger than `maxBytes`;
 * - 500 problem+json, with a process warning (`BULWARK_UNPARSED_BODY`), when
 *   something has read the stream but left `parsed` undefined (`req.body` not
 *   set): the body is gone, and a fingerprint without it could replay the
 *   response of a different request;
 * - 504 problem+json when the deadline passes while the body is read, and 400
 *   when the stream fails or the client goes away first.
 */
export async function readUnparsedBody(
  req: IncomingMessage,
  parsed: unknown,
  options: ReadUnparsedBodyOptions,
): Promise<UnparsedBody> {
  if (!hasBody(req)) return { kind: 'parsed' };
  if (req.readableDidRead || req.readableEnded) {
    if (parsed !== undefined) return { kind: 'parsed' };
    if (!warned) {
      warned = true;
      process.emitWarning(
        'an idempotent route got a request whose body was read but not parsed into req.body; it was refused with 500. Mount the idempotency middleware before the middleware that reads the body, or have that middleware set req.body.',
        { code: 'BULWARK_UNPARSED_BODY' },
      );
    }
    return problem(
      500,
      'body-unavailable',
      'The request body was read before the idempotency check, but not parsed',
      'The server read the body without setting req.body, so the request cannot be fingerprinted. Mount the idempotency middleware before the middleware that reads the body, or have that middleware set req.body.',
    );
  }
  const length = Number(req.headers['content-length']);
  const tooLarge = () =>
    problem(
      413,
      'body-too-large',
      'The request body is too large for an idempotent route',
      `The body was to be fingerprinted before any parser read it, and it is larger than ${options.maxBytes} bytes (maxUnparsedBodyBytes).`,
    );
  if (length > options.maxBytes) return tooLarge();
  const outcome = await readAndPutBack(req, options.maxBytes, options.context?.signal);
  if (outcome === 'too-large') return tooLarge();
  if (Buffer.isBuffer(outcome)) return { kind: 'raw', bytes: outcome };
  const late = enterDeadline(options.context, () => {});
  if (late !== undefined) return { kind: 'refused', response: late };
  return problem(
    400,
    'body-incomplete',
    'The request body ended before it was complete',
    'The body could not be read to the end, so the request was not processed. Retry it with the same key.',
  );
}

/**
 * Reads the whole body in paused mode, then puts it back with `unshift`. The
 * stream's `'end'` has not been emitted (the last read asked for an exact byte
 * count, which never ends the stream), so the readers after this one see the
 * body from its first byte, then `'end'`.
 */
function readAndPutBack(
  req: IncomingMessage,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<Buffer | 'too-large' | 'failed'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (outcome: Buffer | 'too-large' | 'failed') => {
      req.off('readable', onReadable);
      req.off('error', onFailure);
      req.off('close', onClose);
      signal?.removeEventListener('abort', onFailure);
      resolve(outcome);
    };
    const onFailure = () => settle('failed');
    const onClose = () => {
      if (!req.complete) settle('failed');
    };
    const onReadable = () => {
      for (let available = req.readableLength; available > 0; available = req.readableLength) {
        const chunk = req.read(available) as Buffer | string | null;
        if (chunk === null) break;
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        chunks.push(bytes);
        size += bytes.length;
        if (size > maxBytes) return settle('too-large');
      }
      if (!req.complete) return;
      const body = Buffer.concat(chunks, size);
      if (size > 0) req.unshift(body);
      settle(body);
    };
    if (signal?.aborted) return resolve('failed');
    // Complete and nothing buffered: an empty body (waiting for 'readable' would end the stream).
    if (req.complete && req.readableLength === 0) return resolve(Buffer.alloc(0));
    signal?.addEventListener('abort', onFailure, { once: true });
    req.on('error', onFailure);
    req.on('close', onClose);
    req.on('readable', onReadable);
  });
}
