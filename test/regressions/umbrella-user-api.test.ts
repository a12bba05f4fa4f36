// The umbrella package once re-exported policy-authoring plumbing
// (OptionsChecker, ScopedContext, EventHub, Telemetry, …) beside the user API.
import { readFileSync } from 'node:fs';
import * as core from '@bulwark/core';
import * as authoring from '@bulwark/core/authoring';
import * as bulwark from 'bulwark';
import { describe, expect, it } from 'vitest';
import { render } from '../../scripts/gen-umbrella.ts';

describe('the umbrella re-exports the user API, not the plumbing', () => {
  it('exports no name of @bulwark/core/authoring, and every runtime name of @bulwark/core', () => {
    const umbrella = new Set(Object.keys(bulwark));
    const plumbing = Object.keys(authoring);
    expect(plumbing).toEqual(
      expect.arrayContaining(['OptionsChecker', 'ScopedContext', 'EventHub', 'Telemetry']),
    );
    expect(plumbing.filter((name) => umbrella.has(name))).toEqual([]);
    expect(Object.keys(core).filter((name) => !umbrella.has(name))).toEqual([]);
  });

  it('gives no name from both core entries', () => {
    expect(Object.keys(core).filter((name) => name in authoring)).toEqual([]);
  });

  it('is generated from each package’s main entry and is up to date', () => {
    const file = new URL('../../packages/bulwark/src/index.ts', import.meta.url);
    expect(readFileSync(file, 'utf8')).toBe(render());
    expect(render()).not.toMatch(
      /\b(OptionsChecker|ScopedContext|LazyGauge|runWithDeadline|EventHub|Telemetry),/,
    );
  });
});
