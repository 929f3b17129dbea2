/**
 * A Frank-Wolfe run's pictures (SVG rendered to PNG with the suite report's renderer):
 *  - objective.png: f at θt over the iterations, the sum and each target's term;
 *  - selection.png: which candidate was selected at each iteration, a heatmap of rows = iterations (FW-Soft:
 *    one row per pick) and columns = merged tensors, one colour per candidate (task-wise rows are one colour).
 */
import { svgToPng } from '../../suite/chart';
import type { FwIterationRecord } from './run_types';

const COLORS = [
  '#2f6f4f',
  '#e39c37',
  '#3b6fb6',
  '#c0504d',
  '#7d5ba6',
  '#4bacc6',
  '#8c564b',
  '#9c9c9c',
  '#bcbd22',
  '#17becf',
  '#ff7f0e',
  '#1f77b4',
  '#d62728',
  '#9467bd',
  '#e377c2',
  '#7f7f7f',
];
const FONT = 'DejaVu Sans';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function frame(W: number, H: number, body: string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<rect width="${W}" height="${H}" fill="white"/>${body.join('')}</svg>`
  );
}

function texter(out: string[]) {
  return (x: number, y: number, s: string, size: number, extra = '') =>
    out.push(
      `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${size}" ${extra}>${esc(s)}</text>`,
    );
}

export function objectiveSvg(title: string, targets: readonly string[], records: readonly FwIterationRecord[]): string {
  const W = 1000;
  const H = 460;
  const out: string[] = [];
  const text = texter(out);
  text(40, 40, title, 16, 'font-weight="bold"');
  const [left, right, top, h] = [90, W - 220, 80, 320];
  const series = [records.map((r) => r.objective), ...targets.map((_, j) => records.map((r) => r.lossPerTarget[j]))];
  const names = ['f (sum)', ...targets];
  const all = series.flat().filter(Number.isFinite);
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
  const n = Math.max(2, records.length);
  const X = (i: number) => left + (i / (n - 1)) * (right - left);
  const Y = (v: number) => top + h - ((v - lo) / (hi - lo)) * h;
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${h}" fill="none" stroke="#999"/>`);
  text(left - 8, top + 12, hi.toPrecision(4), 12, 'text-anchor="end"');
  text(left - 8, top + h, lo.toPrecision(4), 12, 'text-anchor="end"');
  text(left, top + h + 18, 'iteration 0', 12);
  text(right, top + h + 18, `iteration ${records.length - 1}`, 12, 'text-anchor="end"');
  series.forEach((ys, k) => {
    const color = k === 0 ? '#000' : COLORS[(k - 1) % COLORS.length];
    const pts = ys.map((v, i) => `${X(i).toFixed(1)},${Y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="${k === 0 ? 3 : 1.5}" points="${pts}"/>`);
    text(right + 16, top + 16 + k * 18, names[k], 13, `fill="${color}"`);
  });
  return frame(W, H, out);
}

export interface SelectionRow {
  label: string;
  /** Candidate name per merged tensor (null: θt kept). */
  perTensor: (string | null)[];
}

export function selectionSvg(title: string, candidates: readonly string[], rows: readonly SelectionRow[]): string {
  const W = 1000;
  const out: string[] = [];
  const text = texter(out);
  text(40, 40, title, 16, 'font-weight="bold"');
  const left = Math.max(80, 16 + 7 * Math.max(0, ...rows.map((r) => r.label.length)));
  const right = W - 220;
  const P = Math.max(1, ...rows.map((r) => r.perTensor.length));
  const cw = (right - left) / P;
  const ch = 20;
  const top = 70;
  text(left, top - 8, `rows: iterations; columns: ${P} merged tensors; colour: the selected candidate`, 13);
  const color = new Map(candidates.map((c, i) => [c, COLORS[i % COLORS.length]]));
  rows.forEach((r, i) => {
    text(left - 8, top + 14 + i * ch, r.label, 12, 'text-anchor="end"');
    r.perTensor.forEach((c, p) =>
      out.push(
        `<rect x="${(left + p * cw).toFixed(2)}" y="${top + i * ch}" width="${Math.max(0.5, cw).toFixed(2)}" height="${ch - 2}" fill="${c === null ? '#fff' : (color.get(c) ?? '#000')}"/>`,
      ),
    );
    // a whole-model pick (task-wise) is named on its row: neighbouring colours can look alike
    const first = r.perTensor[0];
    if (first && r.perTensor.every((c) => c === first))
      text((left + right) / 2, top + 14 + i * ch, first, 12, 'text-anchor="middle" fill="white" font-weight="bold"');
  });
  const used = candidates.filter((c) => rows.some((r) => r.perTensor.includes(c)));
  used.forEach((c, k) => text(right + 16, top + 14 + k * 18, c, 13, `fill="${color.get(c)}"`));
  const H = top + Math.max(rows.length * ch, used.length * 18) + 40;
  return frame(W, H, out);
}

export const objectivePng = (...a: Parameters<typeof objectiveSvg>) => svgToPng(objectiveSvg(...a));
export const selectionPng = (...a: Parameters<typeof selectionSvg>) => svgToPng(selectionSvg(...a));
