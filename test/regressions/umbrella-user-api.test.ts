// The umbrella package once re-exported policy-authoring plumbing
// (OptionsChecker, ScopedContext, EventHub, Telemetry, …) beside the user API,
// and later the other packages' plumbing (MinHeap, deadlineTimers,
// describeValue, checkBulkheadOptions, checkAdaptiveTimeoutOptions, …).
import { readFileSync } from 'node:fs';
import * as bulkhead from '@bulwark/bulkhead';
import * as bulkheadAuthoring from '@bulwark/bulkhead/authoring';
import * as breaker from '@bulwark/circuit-breaker';
import * as breakerAuthoring from '@bulwark/circuit-breaker/authoring';
import * as clock from '@bulwark/clock';
import * as clockAuthoring from '@bulwark/clock/authoring';
import * as core from '@bulwark/core';
import * as authoring from '@bulwark/core/authoring';
import * as deadline from '@bulwark/deadline';
import * as deadlineAuthoring from '@bulwark/deadline/authoring';
import * as detector from '@bulwark/failure-detector';
import * as detectorAuthoring from '@bulwark/failure-detector/authoring';
import * as idempotency from '@bulwark/idempotency';
import * as idempotencyAuthoring from '@bulwark/idempotency/authoring';
import * as retry from '@bulwark/retry';
import * as retryAuthoring from '@bulwark/retry/authoring';
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

  const entries = [
    ['clock', clock, clockAuthoring],
    ['deadline', deadline, deadlineAuthoring],
    ['retry', retry, retryAuthoring],
    ['circuit-breaker', breaker, breakerAuthoring],
    ['bulkhead', bulkhead, bulkheadAuthoring],
    ['idempotency', idempotency, idempotencyAuthoring],
    ['failure-detector', detector, detectorAuthoring],
  ] as const;

  it.each(entries)(
    'exports no name of @bulwark/%s/authoring, and every runtime name of its main entry',
    (_, main, plumbing) => {
      const umbrella = new Set(Object.keys(bulwark));
      expect(Object.keys(plumbing).length).toBeGreaterThan(0);
      expect(Object.keys(plumbing).filter((name) => umbrella.has(name))).toEqual([]);
      expect(Object.keys(main).filter((name) => !umbrella.has(name))).toEqual([]);
      expect(Object.keys(main).filter((name) => name in plumbing)).toEqual([]);
    },
  );

  it('keeps the clock, bulkhead and deadline plumbing out of the umbrella', () => {
    for (const name of [
      'MinHeap',
      'DeadlineTimers',
      'deadlineTimers',
      'describeValue',
      'checkBulkheadOptions',
      'checkAdaptiveTimeoutOptions',
    ])
      expect(name in bulwark, name).toBe(false);
    expect(typeof clockAuthoring.deadlineTimers).toBe('function');
    expect(typeof bulkheadAuthoring.checkBulkheadOptions).toBe('function');
    expect(typeof deadlineAuthoring.checkAdaptiveTimeoutOptions).toBe('function');
  });

  it('is generated from each package’s main entry and is up to date', () => {
    const file = new URL('../../packages/bulwark/src/index.ts', import.meta.url);
    expect(readFileSync(file, 'utf8')).toBe(render());
    expect(render()).not.toMatch(
      /\b(OptionsChecker|ScopedContext|LazyGauge|runWithDeadline|EventHub|Telemetry),/,
    );
  });
});
