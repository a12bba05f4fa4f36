import type { CircuitBreakerRegistry } from '@bulwark/circuit-breaker';
import type { OptionsChecker } from '@bulwark/core/authoring';

/**
 * Groups of origins that serve the same content (replicas, regions), each
 * origin written as `scheme://host[:port]`: a request to one of a group may be
 * sent to any other, with the same path, query and fragment.
 */
export type EquivalentOrigins = readonly (readonly string[])[];

/** Each origin of a group → its group (normalised origins, in the order given). */
export type OriginGroups = ReadonlyMap<string, readonly string[]>;

/** The origin `text` names, or undefined when it is not an http(s) origin with nothing after it. */
function asOrigin(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (
    url.username !== '' ||
    url.password !== '' ||
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== ''
  )
    return undefined;
  // "https://a.example/?" parses with an empty search: refuse anything past the authority but a slash.
  if (/[?#]/.test(text)) return undefined;
  return url.origin;
}

/**
 * Checks the `origins` option of createFetch() into `check` and resolves it
 * into a map from each origin to its group. Undefined when it is absent or
 * invalid.
 */
export function resolveOrigins(check: OptionsChecker, value: unknown): OriginGroups | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    check.expect(
      false,
      'origins',
      value,
      "an array of groups of equivalent origins ([['https://a', 'https://b']])",
    );
    return undefined;
  }
  const groups = new Map<string, readonly string[]>();
  let ok = true;
  value.forEach((group: unknown, g) => {
    if (!Array.isArray(group) || group.length < 2) {
      check.expect(false, `origins[${g}]`, group, 'an array of at least 2 origins');
      ok = false;
      return;
    }
    const resolved: string[] = [];
    group.forEach((text: unknown, i) => {
      const option = `origins[${g}][${i}]`;
      const origin = asOrigin(text);
      if (origin === undefined) {
        check.expect(
          false,
          option,
          text,
          'an http(s) origin: scheme, host and port, no path (https://host:port)',
        );
        ok = false;
      } else if (resolved.includes(origin) || groups.has(origin)) {
        check.adopt(undefined, [
          {
            option,
            expected: 'an origin in one group once',
            value: text,
            problem: `names ${origin} a second time`,
          },
        ]);
        ok = false;
      } else resolved.push(origin);
    });
    const frozen = Object.freeze(resolved);
    for (const origin of resolved) groups.set(origin, frozen);
  });
  return ok && groups.size > 0 ? groups : undefined;
}

/** `url` (an absolute http(s) URL) with its origin replaced by `origin`: path, query and fragment kept. */
export function retarget(url: string, origin: string): string {
  const parsed = new URL(url);
  return `${origin}${parsed.pathname}${parsed.search}${parsed.hash}`;
}

/** Whether the breaker of `origin` (if any) would let a call through now: not open, not isolated. */
function admits(breakers: CircuitBreakerRegistry | undefined, origin: string): boolean {
  const state = breakers?.peek(origin)?.state;
  return state === undefined || state === 'closed' || state === 'half-open';
}

/**
 * Picks the origin of each attempt of one call among the requested origin's
 * group, as Envoy's `previous_hosts` retry predicate does: the first attempt
 * goes to the requested origin, or, when its breaker refuses, to the next in
 * the group whose breaker admits; each later attempt (a retry or a hedge) to
 * an origin not tried yet in this call whose breaker admits, else to one
 * tried before other than the last, else to the last. When no breaker admits,
 * the next untried origin (its breaker then refuses the attempt).
 */
export class OriginChooser {
  readonly #order: readonly string[];
  readonly #breakers: CircuitBreakerRegistry | undefined;
  readonly #tried: string[] = [];

  constructor(requested: string, group: readonly string[], breakers: CircuitBreakerRegistry | undefined) {
    // The group from the requested origin on, round: a, b, c requested as b gives b, c, a.
    const at = group.indexOf(requested);
    this.#order = at <= 0 ? group : [...group.slice(at), ...group.slice(0, at)];
    this.#breakers = breakers;
  }

  next(): string {
    const order = this.#order;
    const tried = this.#tried;
    const last = tried.length === 0 ? undefined : tried[tried.length - 1];
    const breakers = this.#breakers;
    let pick = order.find((o) => !tried.includes(o) && admits(breakers, o));
    pick ??= order.find((o) => o !== last && admits(breakers, o));
    if (pick === undefined && last !== undefined && admits(breakers, last)) pick = last;
    pick ??= order.find((o) => !tried.includes(o)) ?? order.find((o) => o !== last) ?? order[0]!;
    tried.push(pick);
    return pick;
  }
}
