// A goodput-over-time chart as plain SVG text: one line per client, the fault
// shaded, goodput by the callers' arrival time.
import type { Window } from './engine.ts';

export interface Series {
  readonly name: string;
  readonly color: string;
  /** Windows of `windowMs`, summed over seeds. */
  readonly windows: readonly Window[];
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The chart. `bucket` windows are merged into one point (fewer, steadier
 * points); a point nobody arrived in is left out of its line.
 */
export function goodputSvg(options: {
  readonly title: string;
  readonly durationMs: number;
  readonly windowMs: number;
  readonly fault: { readonly startMs: number; readonly endMs: number } | null;
  readonly series: readonly Series[];
  readonly bucket?: number;
}): string {
  const width = 760;
  const height = 320;
  const left = 52;
  const right = 130;
  const top = 34;
  const bottom = 40;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const bucket = options.bucket ?? 2;
  const seconds = options.durationMs / 1000;
  const x = (ms: number): number => left + (ms / options.durationMs) * plotW;
  const y = (share: number): number => top + (1 - share) * plotH;
  const f = (n: number): string => n.toFixed(1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  if (options.fault !== null) {
    const x0 = x(options.fault.startMs);
    const x1 = x(options.fault.endMs);
    out.push(
      `<rect x="${f(x0)}" y="${top}" width="${f(x1 - x0)}" height="${plotH}" fill="#f2c6c6" fill-opacity="0.5"/>`,
      `<text x="${f((x0 + x1) / 2)}" y="${top + 14}" text-anchor="middle" fill="#a33">fault</text>`,
    );
  }
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${f(y(share))}" y2="${f(y(share))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${f(y(share) + 4)}" text-anchor="end">${share * 100}%</text>`,
    );
  }
  const step = seconds > 20 ? 5 : 2;
  for (let s = 0; s <= seconds; s += step) {
    out.push(
      `<line x1="${f(x(s * 1000))}" x2="${f(x(s * 1000))}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="#333"/>`,
      `<text x="${f(x(s * 1000))}" y="${top + plotH + 17}" text-anchor="middle">${s}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle">seconds (by caller arrival)</text>`,
    `<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">goodput within 1.5 s</text>`,
  );
  options.series.forEach((series, k) => {
    const points: string[] = [];
    for (let i = 0; i < series.windows.length; i += bucket) {
      let arrivals = 0;
      let good = 0;
      for (let j = i; j < Math.min(i + bucket, series.windows.length); j++) {
        arrivals += series.windows[j]!.arrivals;
        good += series.windows[j]!.good;
      }
      if (arrivals === 0) continue;
      const mid = (i + Math.min(bucket, series.windows.length - i) / 2) * options.windowMs;
      points.push(`${f(x(mid))},${f(y(good / arrivals))}`);
    }
    const wide = series.name === 'bulwark';
    out.push(
      `<polyline fill="none" stroke="${series.color}" stroke-width="${wide ? 2.5 : 1.5}" stroke-linejoin="round" points="${points.join(' ')}"/>`,
    );
    const ly = top + 10 + k * 18;
    out.push(
      `<line x1="${left + plotW + 12}" x2="${left + plotW + 34}" y1="${ly}" y2="${ly}" stroke="${series.color}" stroke-width="${wide ? 2.5 : 1.5}"/>`,
      `<text x="${left + plotW + 40}" y="${ly + 4}">${escapeXml(series.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
