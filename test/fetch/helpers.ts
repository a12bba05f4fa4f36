import type { FetchFunction } from '@bulwark/fetch';

/** One request as the fake fetch saw it, with its body read out. */
export interface SeenRequest {
  readonly request: Request;
  readonly body: string;
}

/** What a scripted attempt does: answer, fail, or hang until its signal aborts. */
export type Script = (request: Request, attempt: number) => Response | Promise<Response>;

/** A fake fetch that records every request and answers from a script. */
export function fakeFetch(script: Script): { fetch: FetchFunction; seen: SeenRequest[] } {
  const seen: SeenRequest[] = [];
  const fetch: FetchFunction = async (input, init) => {
    const request = new Request(input, init);
    const body = request.body === null ? '' : await request.clone().text();
    seen.push({ request, body });
    return script(request, seen.length);
  };
  return { fetch, seen };
}

/** An attempt that never answers: it rejects with its signal's reason when aborted. */
export function hang(request: Request): Promise<Response> {
  return new Promise((_, reject) => {
    if (request.signal.aborted) reject(request.signal.reason);
    request.signal.addEventListener('abort', () => reject(request.signal.reason), { once: true });
  });
}

/** A response whose body stream records whether it was cancelled or read to the end. */
export function trackedResponse(
  status: number,
  text: string,
  headers: Record<string, string> = {},
): { response: Response; state: { cancelled: boolean; finished: boolean } } {
  const state = { cancelled: false, finished: false };
  const bytes = new TextEncoder().encode(text);
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) {
        state.finished = true;
        controller.close();
        return;
      }
      sent = true;
      controller.enqueue(bytes);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { response: new Response(body, { status, headers }), state };
}

/**
 * A response whose body sends `first` at once and then stalls; the stream
 * errors with the signal's reason when the signal aborts, as a real fetch
 * errors a body whose request is aborted.
 */
export function stallingResponse(signal: AbortSignal, first: string): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(first));
      signal.addEventListener('abort', () => controller.error(signal.reason), { once: true });
    },
  });
  return new Response(body, { status: 200 });
}

/** Lets pending promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}
