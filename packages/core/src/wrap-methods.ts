import type { ExecutionContext } from './context.ts';
import { OptionsChecker, optionKeys } from './options.ts';
import type { Policy } from './policy.ts';

const WRAP_METHODS_KEYS = optionKeys<WrapMethodsOptions<object>>({
  methods: true,
  operation: true,
  invoke: true,
  callOptions: true,
});

type AsyncMethodNames<T> = {
  [K in keyof T]: T[K] extends (...args: never[]) => PromiseLike<unknown> ? K : never;
}[keyof T] &
  string;

/** How one wrapped method call is made inside the policy. */
export type MethodInvoker<T> = (
  call: { readonly method: AsyncMethodNames<T>; readonly args: readonly unknown[]; readonly target: T },
  ctx: ExecutionContext,
) => unknown;

/** A call's arguments for the method, and the options the caller gave for the call itself. */
export interface SplitCall {
  /** The arguments to pass to the method. */
  readonly args: readonly unknown[];
  /**
   * The caller's signal for this call: handed to `policy.execute`, so the
   * call's context signal (what `invoke` sees) aborts when it does.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Takes a call's own options (its signal) out of its arguments, for a client
 * whose wrapped methods accept a trailing options argument. Returns undefined
 * to pass every argument on unchanged. What it throws, the call rejects with.
 */
export type CallOptionsSplitter<T> = (call: {
  readonly method: AsyncMethodNames<T>;
  readonly args: readonly unknown[];
}) => SplitCall | undefined;

/** Options for {@link wrapMethods}. */
export interface WrapMethodsOptions<T> {
  /** The async methods to run through the policy. Others pass through untouched. */
  readonly methods: readonly AsyncMethodNames<T>[];
  /** The operation name reported for a call. Default: the method name. */
  readonly operation?: ((method: AsyncMethodNames<T>) => string) | undefined;
  /**
   * Makes the call inside the policy, given the context (its signal and
   * deadline). Default: `target[method](...args)`. A store-specific wrapper
   * uses it to cancel server-side work at the deadline.
   */
  readonly invoke?: MethodInvoker<T> | undefined;
  /**
   * Takes the caller's per-call options (a signal) out of a call's arguments,
   * so that the caller can cancel one call: the signal is handed to
   * `policy.execute`. Default: none (every argument goes to the method, and a
   * call's only signals are those of the policies around it).
   */
  readonly callOptions?: CallOptionsSplitter<T> | undefined;
}

/**
 * Wraps chosen async methods of any client object so that each call runs
 * through `policy` — for example `pg.Pool#query` or a Redis client's commands.
 *
 * Returns a proxy of `target`: wrapped methods return the policy's promise,
 * everything else (properties, other methods, events) is the target's own.
 * A wrapped method called in callback style (a function as its last argument)
 * throws a TypeError, since the policy could not see its outcome.
 *
 * A caller cancels one call with its own signal when the wrapper says where
 * the signal goes (`callOptions`, as `withQueryPolicy` does with
 * `db.query(text, values, { signal })`): the call then rejects with the
 * signal's reason as soon as it aborts, and `invoke` sees the abort on
 * `ctx.signal`. Without it, a call follows only the policies' own deadlines.
 */
export function wrapMethods<T extends object>(target: T, policy: Policy, options: WrapMethodsOptions<T>): T {
  const check = new OptionsChecker('wrapMethods()');
  check.knownKeys(options, WRAP_METHODS_KEYS);
  check.expect(typeof target === 'object' && target !== null, 'target', target, 'an object');
  check.expect(
    typeof policy === 'object' && policy !== null && typeof policy.execute === 'function',
    'policy',
    policy,
    'a policy',
  );
  const methods = options?.methods;
  check.expect(
    Array.isArray(methods) && methods.length > 0,
    'methods',
    methods,
    'a non-empty array of method names',
  );
  if (Array.isArray(methods)) {
    for (const m of methods) {
      check.expect(
        typeof (target as Record<string, unknown>)[m] === 'function',
        `methods[${JSON.stringify(m)}]`,
        (target as Record<string, unknown>)[m],
        'a method of the target',
      );
    }
  }
  check.func('operation', options?.operation);
  check.func('invoke', options?.invoke);
  check.func('callOptions', options?.callOptions);
  check.done();

  const invoke: MethodInvoker<T> =
    options.invoke ??
    ((call) => (call.target[call.method] as (...a: unknown[]) => unknown).apply(call.target, [...call.args]));
  const split = options.callOptions;
  const wrapped = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>();
  for (const method of methods) {
    const operation = options.operation?.(method) ?? method;
    wrapped.set(method, (...given: unknown[]) => {
      if (typeof given[given.length - 1] === 'function') {
        throw new TypeError(
          `wrapMethods(): ${method}() was called with a callback; call it without one and await the promise it returns`,
        );
      }
      let args: readonly unknown[] = given;
      let signal: AbortSignal | undefined;
      if (split !== undefined) {
        let parts: SplitCall | undefined;
        try {
          parts = split({ method, args: given });
        } catch (error) {
          return Promise.reject(error);
        }
        if (parts !== undefined) {
          args = parts.args;
          signal = parts.signal;
        }
      }
      return policy.execute((ctx) => invoke({ method, args, target }, ctx), { operation, signal });
    });
  }
  return new Proxy(target, {
    get(obj, key, receiver) {
      return wrapped.get(key) ?? Reflect.get(obj, key, receiver);
    },
  });
}
