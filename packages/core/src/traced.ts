import type { Clock } from '@bulwark/clock';
import type { Attributes } from '@opentelemetry/api';
import type { ExecutionContext, Operation } from './context.ts';
import { OptionsChecker, optionKeys } from './options.ts';
import { BasePolicy } from './policy.ts';
import { Telemetry } from './telemetry.ts';

const telemetry = new Telemetry('@bulwark/core', '0.1.0');

/** Options for {@link traced}. */
export interface TracedOptions {
  /** Attributes every span of this policy carries. Default: none. */
  readonly attributes?: Attributes | undefined;
  /** The clock for contexts this policy creates itself. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

const TRACED_KEYS = optionKeys<TracedOptions>({ attributes: true, clock: true });

/**
 * One span per call, of bulwark's own, around the policies inside it. See
 * {@link traced}.
 */
export class TracedPolicy extends BasePolicy {
  /** The name of every span. */
  readonly name: string;
  readonly #attributes: Attributes | undefined;

  constructor(name: string, options?: TracedOptions) {
    const check = new OptionsChecker('traced()');
    check.expect(typeof name === 'string' && name.length > 0, 'name', name, 'a non-empty string');
    check.knownKeys(options, TRACED_KEYS);
    check.expect(
      options?.attributes === undefined ||
        (typeof options.attributes === 'object' && options.attributes !== null),
      'attributes',
      options?.attributes,
      'an object of span attributes',
    );
    check.clock('clock', options?.clock);
    check.done();
    super(options?.clock);
    this.name = name;
    this.#attributes = options?.attributes;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const operation = ctx.operation;
    const attributes =
      operation === undefined ? this.#attributes : { ...this.#attributes, 'bulwark.operation': operation };
    return telemetry.inSpan(this.name, { kind: 'internal', attributes }, () => fn(ctx));
  }
}

/**
 * A span of bulwark's own for each call (kind INTERNAL, named `name`), active
 * while the call runs, so the span events of the policies inside it (a retry,
 * a deadline, an opened breaker) and the spans of whatever the call does land
 * on it instead of vanishing when no other span is active. It ends when the
 * call settles, with status ERROR and `error.type` when the call failed. Put it
 * outermost: `pipeline(traced('payments'), deadline(2_000), retry(), timeout(500))`.
 *
 * With no OpenTelemetry tracer provider registered it runs the call as it is,
 * at the cost of one global lookup; leave it out and it costs nothing.
 */
export function traced(name: string, options?: TracedOptions): TracedPolicy {
  return new TracedPolicy(name, options);
}
