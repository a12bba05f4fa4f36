// `@bulwark/idempotency/authoring`: the plumbing for writing an idempotency
// store (or another store over a client that emits 'error'). Applications use
// the main entry, `@bulwark/idempotency`; nothing is exported from both.
export { listenForClientErrors } from './store.ts';
