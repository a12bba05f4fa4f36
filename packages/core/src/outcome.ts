/**
 * What a call produced: a value or an error. The one shape every classifier
 * sees (a retry's `retryOn`, a breaker's `failureOn`).
 */
export type Outcome<T = unknown> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown };
