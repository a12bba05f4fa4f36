import { isBulwarkError } from '@bulwark/core';
import { MissingPeerDependencyError, requirePeer } from '@bulwark/interop';
import { describe, expect, it } from 'vitest';

describe('requirePeer', () => {
  it('loads an installed peer', () => {
    const opossum = requirePeer<{ isOurError: unknown }>('opossum', '@bulwark/interop/opossum');
    expect(typeof opossum.isOurError).toBe('function');
  });

  it('names a peer that is not installed, with a typed error whose cause is the loader error', () => {
    let caught: unknown;
    try {
      requirePeer('bulwark-peer-that-is-not-installed', '@bulwark/interop/example');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MissingPeerDependencyError);
    expect(isBulwarkError(caught, 'ERR_MISSING_PEER_DEPENDENCY')).toBe(true);
    const error = caught as MissingPeerDependencyError;
    expect(error.packageName).toBe('bulwark-peer-that-is-not-installed');
    expect(error.entry).toBe('@bulwark/interop/example');
    expect(error.message).toContain('"bulwark-peer-that-is-not-installed"');
    expect(error.message).toContain('npm install bulwark-peer-that-is-not-installed');
    expect((error.cause as { code?: string }).code).toBe('MODULE_NOT_FOUND');
  });

  it('maps the ES module loader error (ERR_MODULE_NOT_FOUND) too', () => {
    const loader = (id: string): never => {
      throw Object.assign(new Error(`Cannot find package '${id}' imported from /app/index.js`), {
        code: 'ERR_MODULE_NOT_FOUND',
      });
    };
    expect(() => requirePeer('p-retry', '@bulwark/interop/p-retry', loader)).toThrow(
      MissingPeerDependencyError,
    );
  });

  it('reports a broken install (a dependency of the peer is missing) unchanged', () => {
    const inner = Object.assign(
      new Error("Cannot find package 'is-network-error' imported from /app/node_modules/p-retry/index.js"),
      { code: 'ERR_MODULE_NOT_FOUND' },
    );
    const loader = (): never => {
      throw inner;
    };
    let caught: unknown;
    try {
      requirePeer('p-retry', '@bulwark/interop/p-retry', loader);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(inner);
  });

  it('rethrows any other loader failure unchanged', () => {
    const boom = new SyntaxError('Unexpected token');
    expect(() =>
      requirePeer('opossum', '@bulwark/interop/opossum', () => {
        throw boom;
      }),
    ).toThrow(boom);
  });
});
