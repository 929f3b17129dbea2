/**
 * The irrelevant-models sweep as a line chart: average target accuracy (y) against the number of irrelevant
 * models in the pool (x), one line per method, with the pretrained model's level as a dashed line.
 */
import { svgToPng } from '../../core/suite/chart';

export interface SweepSeries {
  label: string;
  /** Average accuracy (0..1) at each x; NaN where the method was not run. */
  values: number[];
}

export interface SweepChartInput {
  title: string;
  subtitle?: string;
  /** Irrelevant models in the pool, one per column. */
  xs: number[];
  series: SweepSeries[];
  /** The pretrained model's average (a reference line). */
  pretrained?: number;
}

const COLORS = [
  '#3b6fb6',
  '#e39c37',
  '#2f6f4f',
  '#c0504d',
  '#7d5ba6',
  '#4bacc6',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
];
const FONT = 'DejaVu Sans';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f = (v: number) => v.toFixed(1);

export function sweepSvg(input: SweepChartInput): string {
  const W = 1060;
  const H = 620;
  const left = 90;
  const right = 300;
  const top = 110;
  const bottom = 80;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const all = input.series.flatMap((s) => s.values).filter(Number.isFinite);
  if (input.pretrained !== undefined) all.push(input.pretrained);
  const lo = Math.max(0, Math.floor((Math.min(...all) * 100 - 2) / 5) * 5);
  const hi = Math.min(100, Math.ceil((Math.max(...all) * 100 + 2) / 5) * 5);
  const xmax = Math.max(1, ...input.xs);
  const X = (x: number) => left + (x / xmax) * pw;
  const Y = (v: number) => top + ph - ((v * 100 - lo) / Math.max(1, hi - lo)) * ph;
  const out: string[] = [`<rect width="${W}" height="${H}" fill="white"/>`];
  const text = (x: number, y: number, s: string, size: number, extra = '') =>
    out.push(`<text x="${f(x)}" y="${f(y)}" font-family="${FONT}" font-size="${size}" ${extra}>${esc(s)}</text>`);
  text(40, 44, input.title, 24, 'font-weight="bold"');
  if (input.subtitle) text(40, 74, input.subtitle, 15, 'fill="#555"');
  for (let v = lo; v <= hi; v += 5) {
    const y = Y(v / 100);
    out.push(`<line x1="${left}" y1="${f(y)}" x2="${left + pw}" y2="${f(y)}" stroke="#e4e4e4"/>`);
    text(left - 12, y + 5, String(v), 14, 'text-anchor="end"');
  }
  for (const x of input.xs) text(X(x), top + ph + 26, String(x), 14, 'text-anchor="middle"');
  text(left + pw / 2, H - 22, 'irrelevant models in the pool (plus the 8 target models)', 15, 'text-anchor="middle"');
  text(28, top + ph / 2, 'average accuracy (%)', 15, `text-anchor="middle" transform="rotate(-90 28 ${top + ph / 2})"`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  if (input.pretrained !== undefined) {
    const y = Y(input.pretrained);
    out.push(`<line x1="${left}" y1="${f(y)}" x2="${left + pw}" y2="${f(y)}" stroke="#888" stroke-dasharray="6 5"/>`);
    text(left + pw + 12, y + 5, `pretrained ${f(input.pretrained * 100)}`, 13, 'fill="#666"');
  }
  input.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = input.xs.map((x, j) => [X(x), s.values[j]] as const).filter(([, v]) => Number.isFinite(v));
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${c}" stroke-width="3" points="${pts.map(([x, v]) => `${f(x)},${f(Y(v))}`).join(' ')}"/>`,
      );
    for (const [x, v] of pts) out.push(`<circle cx="${f(x)}" cy="${f(Y(v))}" r="5" fill="${c}"/>`);
    const ly = top + 10 + i * 28;
    out.push(`<rect x="${left + pw + 12}" y="${ly}" width="18" height="4" fill="${c}"/>`);
    text(left + pw + 38, ly + 7, s.label, 14);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${out.join('')}</svg>`;
}

export function sweepPng(input: SweepChartInput): Promise<Uint8Array> {
  return svgToPng(sweepSvg(input));
}
