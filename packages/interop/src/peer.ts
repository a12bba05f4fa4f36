import { createRequire } from 'node:module';
import { OptionsChecker } from '@bulwark/core/authoring';
import { MissingPeerDependencyError } from './errors.ts';

/** Loads a module by name, as `require` does. */
export type ModuleLoader = (id: string) => unknown;

const localRequire: ModuleLoader = createRequire(import.meta.url);

/**
 * True when `error` says that `name` itself could not be found, and not a
 * module that `name` depends on (that is a broken install, reported as is).
 */
function isNotFound(error: unknown, name: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false;
  const message = String((error as { message?: unknown }).message);
  return message.includes(`'${name}'`) || message.includes(`"${name}"`);
}

/**
 * Loads the optional peer dependency `name` for `entry`. When it is not
 * installed, throws a {@link MissingPeerDependencyError} that names it; any
 * other failure (the peer is installed but broken) is rethrown unchanged.
 *
 * `require()` rather than `import()`, so that the entries stay loadable with
 * `require()` from CommonJS (an ES module with top-level await is not).
 *
 * @param load the loader to use. Default: `require` relative to this package.
 */
export function requirePeer<T>(name: string, entry: string, load: ModuleLoader = localRequire): T {
  try {
    return load(name) as T;
  } catch (error) {
    if (isNotFound(error, name)) throw new MissingPeerDependencyError(name, entry, error);
    throw error;
  }
}

/**
 * A checker for a peer library's options object (`library` names it in the
 * message): a value that is neither undefined nor an object is refused at once,
 * since no option of it can be read.
 */
export function peerOptionsChecker(component: string, options: unknown, library: string): OptionsChecker {
  const check = new OptionsChecker(component);
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    check.expect(false, 'options', options, `an object of ${library} options`);
    check.done();
  }
  return check;
}
