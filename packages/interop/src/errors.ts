import { BulwarkError } from '@bulwark/core';

/**
 * An entry of `@bulwark/interop` was loaded without the optional peer
 * dependency it adapts (`opossum` for `@bulwark/interop/opossum`, `p-retry` for
 * `@bulwark/interop/p-retry`). The loader's own error is the `cause`.
 */
export class MissingPeerDependencyError extends BulwarkError<'ERR_MISSING_PEER_DEPENDENCY'> {
  /** The package that could not be found, e.g. `"opossum"`. */
  readonly packageName: string;
  /** The entry that needed it, e.g. `"@bulwark/interop/opossum"`. */
  readonly entry: string;

  constructor(packageName: string, entry: string, cause: unknown) {
    super(
      'ERR_MISSING_PEER_DEPENDENCY',
      `${entry} needs the package "${packageName}", an optional peer dependency that is not installed; install it next to @bulwark/interop (npm install ${packageName})`,
      { cause },
    );
    this.packageName = packageName;
    this.entry = entry;
  }
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_MISSING_PEER_DEPENDENCY: MissingPeerDependencyError;
  }
}
