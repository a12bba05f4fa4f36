// `@bulwark/deadline/authoring`: adaptive timeout options checked and resolved
// once, for a package that builds adaptive timeouts of its own (fetch's
// per-origin ones). Applications use the main entry, `@bulwark/deadline`;
// nothing is exported from both.
export { checkAdaptiveTimeoutOptions, type ResolvedAdaptiveTimeoutOptions } from './adaptive-timeout.ts';
