import { LatencyWindow } from '@bulwark/core/authoring';
import { describe, expect, it } from 'vitest';

describe('LatencyWindow', () => {
  it('has no value until minSamples fresh samples are known', () => {
    const window = new LatencyWindow(8, 1_000, 0.5, 3);
    window.record(10, 0);
    window.record(20, 0);
    expect(window.value(0)).toBeUndefined();
    window.record(30, 0);
    expect(window.value(0)).toBe(20);
    expect(window.freshSamples).toBe(3);
  });

  it('recomputes on schedule (every capacity / 8 records), or at once on refresh()', () => {
    const window = new LatencyWindow(16, 10_000, 0.99, 1);
    window.record(10, 0);
    window.record(10, 0);
    expect(window.value(0)).toBe(10);
    window.record(500, 0); // the third record: not yet a scheduled refresh (every 2)
    expect(window.value(0)).toBe(10);
    window.refresh(0);
    expect(window.value(0)).toBe(500);
  });

  it('forgets samples older than ttlMs', () => {
    const window = new LatencyWindow(8, 1_000, 0.5, 1);
    for (let i = 0; i < 8; i++) window.record(100, 0);
    expect(window.value(0)).toBe(100);
    expect(window.value(1_001)).toBeUndefined();
    expect(window.freshSamples).toBe(0);
  });
});
