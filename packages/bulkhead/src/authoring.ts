// `@bulwark/bulkhead/authoring`: the bulkhead's options checked and resolved
// once, for a package that builds bulkheads of its own (fetch's per-origin
// bulkheads). Applications use the main entry, `@bulwark/bulkhead`; nothing is
// exported from both.
export { checkBulkheadOptions, type ResolvedBulkheadOptions } from './bulkhead.ts';
