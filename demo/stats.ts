// Counting what each client saw, per second and for the whole run.

/** How one logical request ended. */
export interface RequestResult {
  readonly ok: boolean;
  readonly latencyMs: number;
  /** Refused by the client itself, without calling the service (an open breaker, a full bulkhead). */
  readonly shed: boolean;
}

export interface Totals {
  requests: number;
  succeeded: number;
  /** Successes that took at most the demo's service-level objective. */
  onTime: number;
  failed: number;
  shed: number;
  latencies: number[];
}

export function emptyTotals(): Totals {
  return { requests: 0, succeeded: 0, onTime: 0, failed: 0, shed: 0, latencies: [] };
}

export function record(totals: Totals, result: RequestResult, sloMs: number): void {
  totals.requests++;
  if (result.ok) {
    totals.succeeded++;
    if (result.latencyMs <= sloMs) totals.onTime++;
  } else if (result.shed) totals.shed++;
  else totals.failed++;
  totals.latencies.push(result.latencyMs);
}

/** The q-quantile (0..1) of the values, by nearest rank; 0 when there are none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Renders rows as a plain text table with aligned columns. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
