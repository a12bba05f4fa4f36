import { describeValue } from '@bulwark/clock/authoring';
import { bulwarkErrorBrand } from './errors.ts';

/** One invalid option: its name, what it must be, and the value it had. */
export interface OptionViolation {
  readonly option: string;
  readonly expected: string;
  readonly value: unknown;
  /** What is wrong, when "must be `expected`" does not say it (an unknown option, say). */
  readonly problem?: string | undefined;
}

/**
 * Invalid options, all listed at once. It is a RangeError (the type every
 * bulwark factory throws for bad options) and carries the bulwark brand with the
 * code `ERR_INVALID_OPTIONS`.
 */
export class InvalidOptionsError extends RangeError {
  readonly code = 'ERR_INVALID_OPTIONS' as const;
  readonly violations: readonly OptionViolation[];
  declare readonly [bulwarkErrorBrand]: true;

  constructor(component: string, violations: readonly OptionViolation[]) {
    const lines = violations.map((v) =>
      v.problem === undefined
        ? `  - ${v.option} must be ${v.expected}, got ${formatValue(v.value)}`
        : `  - ${v.option}: ${v.problem} (got ${formatValue(v.value)})`,
    );
    super(`${component}: invalid options (${violations.length}):\n${lines.join('\n')}`);
    this.name = 'InvalidOptionsError';
    this.violations = Object.freeze([...violations]);
  }
}
Object.defineProperty(InvalidOptionsError.prototype, bulwarkErrorBrand, { value: true });

/**
 * The names of every option of an options interface, for
 * {@link OptionsChecker.knownKeys}. The object must list each key of `T` (and no
 * other), so an option added to the interface and not here is a type error:
 *
 * ```ts
 * const RETRY_KEYS = optionKeys<RetryOptions>({ maxAttempts: true, backoff: true, … });
 * ```
 */
export function optionKeys<T extends object>(
  keys: { readonly [K in keyof Required<T>]: true },
): ReadonlySet<string> {
  return new Set(Object.keys(keys));
}

/**
 * Options of other libraries (p-retry, opossum, cockatiel, Polly, …) mapped to
 * advice about the bulwark option to use instead, e.g.
 * `{ retries: 'use maxAttempts (retries: N is maxAttempts: N + 1)' }`.
 */
export type OptionHints = Readonly<Record<string, string>>;

/** Levenshtein distance, capped: enough to suggest the option a typo meant. */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

function unknownOptionProblem(
  key: string,
  known: ReadonlySet<string>,
  hints: OptionHints | undefined,
): string {
  if (hints !== undefined && Object.hasOwn(hints, key)) return `not an option; ${hints[key]}`;
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === lower ? 0 : distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best !== undefined) return `not an option; did you mean ${best}?`;
  return `not an option; the options are ${[...known].join(', ')}`;
}

/** Renders a value for an error message: strings quoted, NaN and -0 as such (see `describeValue` in @bulwark/clock). */
export function formatValue(value: unknown): string {
  return describeValue(value);
}

interface NumberRule {
  /** Smallest allowed value (inclusive). */
  readonly min?: number | undefined;
  /** Smallest allowed value (exclusive). */
  readonly above?: number | undefined;
  /** Largest allowed value (inclusive). */
  readonly max?: number | undefined;
  /** Must be an integer. */
  readonly integer?: boolean | undefined;
  /** Infinity is allowed (only meaningful with no max). */
  readonly infinite?: boolean | undefined;
}

function describeRule(rule: NumberRule): string {
  const parts: string[] = [rule.integer ? 'an integer' : rule.infinite ? 'a number' : 'a finite number'];
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  return parts.join(' ');
}

const ATTEMPT_ABOVE_DEADLINE =
  "a timed-out attempt would use the whole call's budget, so it could never be retried";

/**
 * Collects every violation in a set of options, then throws them together as
 * one {@link InvalidOptionsError}.
 *
 * ```ts
 * const check = new OptionsChecker('retry()');
 * check.number('maxAttempts', options.maxAttempts, { integer: true, min: 1 });
 * check.done();
 * ```
 */
export class OptionsChecker {
  readonly #component: string;
  readonly #violations: OptionViolation[] = [];

  constructor(component: string) {
    this.#component = component;
  }

  /**
   * Records every key of `options` that is not in `known` (a set from
   * {@link optionKeys}), so that a misspelt option or another library's name
   * for one (`retries`, `resetTimeout`) is refused instead of silently ignored.
   * A key found in `hints` gets that advice; any other gets the closest known
   * name, or the list of them. Keys whose value is `undefined` pass (they have
   * no effect either way). For a nested options object, `prefix` names it:
   * its keys are reported as `prefix.key`. Returns whether every key was known.
   */
  knownKeys(options: unknown, known: ReadonlySet<string>, hints?: OptionHints, prefix?: string): boolean {
    if (typeof options !== 'object' || options === null) return true;
    let ok = true;
    for (const key of Object.keys(options)) {
      if (known.has(key)) continue;
      const value = (options as Record<string, unknown>)[key];
      if (value === undefined) continue;
      ok = false;
      this.#violations.push({
        option: prefix === undefined ? key : `${prefix}.${key}`,
        expected: 'a known option',
        value,
        problem: unknownOptionProblem(key, known, hints),
      });
    }
    return ok;
  }

  /** Records the violations of a part's own options, each named `prefix.option` (as they are without a prefix). */
  adopt(prefix: string | undefined, violations: readonly OptionViolation[]): void {
    for (const v of violations)
      this.#violations.push(prefix === undefined ? v : { ...v, option: `${prefix}.${v.option}` });
  }

  /**
   * Records a contradiction when both numbers are given and `value` is above
   * `limit`, e.g. a per-attempt timeout longer than the whole call's deadline
   * (`why` says what cannot work then). An infinite `value` means "no limit"
   * and passes. Returns whether they agree.
   */
  atMost(option: string, value: unknown, limitOption: string, limit: unknown, why: string): boolean {
    if (typeof value !== 'number' || typeof limit !== 'number' || !(value > limit)) return true;
    if (value === Number.POSITIVE_INFINITY) return true;
    this.#violations.push({
      option,
      expected: `at most ${limitOption} (${formatValue(limit)})`,
      value,
      problem: `is above ${limitOption} (${formatValue(limit)}): ${why}`,
    });
    return false;
  }

  /**
   * Checks a call's `deadlineMs` and its per-attempt `attemptTimeoutMs` (each a
   * number of milliseconds > 0, or Infinity) and that the attempt timeout is not
   * above the deadline: a timed-out attempt would then use the whole call's
   * budget, so it could never be retried.
   */
  deadlineAndAttempt(deadlineMs: unknown, attemptTimeoutMs: unknown): void {
    this.number('deadlineMs', deadlineMs, { above: 0, infinite: true });
    this.number('attemptTimeoutMs', attemptTimeoutMs, { above: 0, infinite: true });
    this.atMost('attemptTimeoutMs', attemptTimeoutMs, 'deadlineMs', deadlineMs, ATTEMPT_ABOVE_DEADLINE);
  }

  /** Records a violation unless `ok`. */
  expect(ok: boolean, option: string, value: unknown, expected: string): this {
    if (!ok) this.#violations.push({ option, expected, value });
    return this;
  }

  /** Checks a number; `undefined` passes unless `required`. Returns whether it passed. */
  number(option: string, value: unknown, rule: NumberRule & { required?: boolean } = {}): boolean {
    if (value === undefined && !rule.required) return true;
    const ok =
      typeof value === 'number' &&
      !Number.isNaN(value) &&
      (Number.isFinite(value) || (rule.infinite === true && value === Number.POSITIVE_INFINITY)) &&
      (!rule.integer || Number.isInteger(value)) &&
      (rule.min === undefined || value >= rule.min) &&
      (rule.above === undefined || value > rule.above) &&
      (rule.max === undefined || value <= rule.max);
    this.expect(ok, option, value, describeRule(rule));
    return ok;
  }

  /** Checks that a value is one of `allowed`; `undefined` passes unless `required`. */
  oneOf<T>(option: string, value: unknown, allowed: readonly T[], required = false): value is T | undefined {
    if (value === undefined && !required) return true;
    const ok = allowed.includes(value as T);
    this.expect(ok, option, value, `one of ${allowed.map((a) => formatValue(a)).join(', ')}`);
    return ok;
  }

  /** Checks that a value is a string; `undefined` passes unless `required`. Returns whether it passed. */
  string(option: string, value: unknown, required = false): boolean {
    if (value === undefined && !required) return true;
    const ok = typeof value === 'string';
    this.expect(ok, option, value, 'a string');
    return ok;
  }

  /** Checks that a value is a boolean; `undefined` passes unless `required`. Returns whether it passed. */
  boolean(option: string, value: unknown, required = false): boolean {
    if (value === undefined && !required) return true;
    const ok = typeof value === 'boolean';
    this.expect(ok, option, value, 'a boolean');
    return ok;
  }

  /** Checks that a value is a function; `undefined` passes unless `required`. */
  func(option: string, value: unknown, required = false): boolean {
    if (value === undefined && !required) return true;
    const ok = typeof value === 'function';
    this.expect(ok, option, value, 'a function');
    return ok;
  }

  /**
   * Checks that a value is a Clock: an object with `now()`, and with
   * `setTimeout()` too when `timers` is set (the policy arms timers on it).
   * `undefined` passes (the system clock is the default).
   */
  clock(option: string, value: unknown, timers = false): boolean {
    if (value === undefined) return true;
    const clock = value as { now?: unknown; setTimeout?: unknown } | null;
    const ok =
      typeof clock === 'object' &&
      clock !== null &&
      typeof clock.now === 'function' &&
      (!timers || typeof clock.setTimeout === 'function');
    this.expect(ok, option, value, timers ? 'a Clock (with now() and setTimeout())' : 'a Clock (with now())');
    return ok;
  }

  /** Whether any violation was recorded so far. */
  get failed(): boolean {
    return this.#violations.length > 0;
  }

  /** Throws every recorded violation as one {@link InvalidOptionsError}. */
  done(): void {
    if (this.#violations.length > 0) throw new InvalidOptionsError(this.#component, this.#violations);
  }
}
