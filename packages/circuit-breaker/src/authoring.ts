// `@bulwark/circuit-breaker/authoring`: the breaker's plumbing for a package
// that builds on it: the hints its option check gives for other libraries'
// option names, the check of a saved snapshot, and its counters on a
// telemetry scope. Applications use the main entry, `@bulwark/circuit-breaker`;
// nothing is exported from both.
export { BREAKER_OPTION_HINTS } from './hints.ts';
export { checkSnapshot } from './persistence.ts';
export { type BreakerCounters, breakerCounters } from './telemetry.ts';
