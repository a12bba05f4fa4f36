// `@bulwark/retry/authoring`: the hints retry's option check gives for other
// libraries' option names, for a package that checks retry options of its own.
// Applications use the main entry, `@bulwark/retry`; nothing is exported from
// both.
export { RETRY_OPTION_HINTS } from './hints.ts';
