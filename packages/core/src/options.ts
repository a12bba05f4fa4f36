import { describeValue } from '@bulwark/clock';
import { bulwarkErrorBrand } from './errors.ts';

/** One invalid option: its name, what it must be, and the value it had. */
export interface OptionViolation {
  readonly option: string;
  readonly expected: string;
  readonly value: unknown;
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
    const lines = violations.map((v) => `  - ${v.option} must be ${v.expected}, got ${formatValue(v.value)}`);
    super(`${component}: invalid options (${violations.length}):\n${lines.join('\n')}`);
    this.name = 'InvalidOptionsError';
    this.violations = Object.freeze([...violations]);
  }
}
Object.defineProperty(InvalidOptionsError.prototype, bulwarkErrorBrand, { value: true });

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
