/**
 * The run's picture: the entropy loss of each task per step (lines), and λ: task-wise, one line per task over the
 * steps; layer-wise, a heatmap of the final coefficients (tasks × merged tensors). SVG, rendered to PNG with the
 * suite report's renderer (resvg, wasm, DejaVu Sans).
 */
import { svgToPng } from '../../suite/chart';
import type { LossRecord } from './run_types';

const COLORS = ['#2f6f4f', '#e39c37', '#3b6fb6', '#c0504d', '#7d5ba6', '#4bacc6', '#8c564b', '#9c9c9c'];
const FONT = 'DejaVu Sans';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface AdaChartInput {
  title: string;
  tasks: string[];
  records: LossRecord[];
  granularity: 'task' | 'layer';
  /** Final λ as used, row-major K × L (layer-wise) or K (task-wise). */
  lambda: number[];
  tensors: number;
}

export function adaChartSvg(c: AdaChartInput): string {
  const W = 1000;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, size: number, extra = '') =>
    out.push(
      `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${size}" ${extra}>${esc(s)}</text>`,
    );
  const poly = (pts: [number, number][], stroke: string) =>
    out.push(
      `<polyline fill="none" stroke="${stroke}" stroke-width="2" points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
    );
  text(40, 40, c.title, 22, 'font-weight="bold"');
  // wide enough for the longest task name beside the heatmap (≈ 7 px a character at 12 px)
  const left = Math.max(80, 16 + 7 * Math.max(0, ...c.tasks.map((t) => t.length)));
  const right = W - 200;
  const panel = (top: number, h: number, title: string, series: number[][], steps: number[]) => {
    text(40, top - 12, title, 16, 'font-weight="bold"');
    const all = series.flat().filter(Number.isFinite);
    let lo = Math.min(...all);
    let hi = Math.max(...all);
    if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
    const s0 = steps[0] ?? 0;
    const s1 = Math.max(s0 + 1, steps[steps.length - 1] ?? 1);
    const X = (s: number) => left + ((s - s0) / (s1 - s0)) * (right - left);
    const Y = (v: number) => top + h - ((v - lo) / (hi - lo)) * h;
    out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${h}" fill="none" stroke="#999"/>`);
    text(left - 8, top + 12, hi.toPrecision(4), 12, 'text-anchor="end"');
    text(left - 8, top + h, lo.toPrecision(4), 12, 'text-anchor="end"');
    text(left, top + h + 18, `step ${s0}`, 12);
    text(right, top + h + 18, `step ${s1}`, 12, 'text-anchor="end"');
    series.forEach((ys, k) => {
      poly(
        ys.map((v, i) => [X(steps[i]), Y(v)]),
        COLORS[k % COLORS.length],
      );
      text(right + 16, top + 16 + k * 20, c.tasks[k], 14, `fill="${COLORS[k % COLORS.length]}"`);
    });
  };
  const steps = c.records.map((r) => r.step);
  const K = c.tasks.length;
  panel(
    80,
    260,
    'Entropy loss per task',
    Array.from({ length: K }, (_, k) => c.records.map((r) => r.loss[k])),
    steps,
  );
  let bottom = 400;
  if (c.granularity === 'task') {
    const lam = Array.from({ length: K }, (_, k) => c.records.map((r) => r.lambda?.[k] ?? NaN));
    panel(bottom + 30, 220, 'λ per task (as used)', lam, steps);
    bottom += 290;
  } else {
    text(
      40,
      bottom + 18,
      `λ (as used): tasks × ${c.tensors} merged tensors, 0 white … 1 dark`,
      16,
      'font-weight="bold"',
    );
    const cw = (right - left) / Math.max(1, c.tensors);
    const ch = 22;
    for (let k = 0; k < K; k++) {
      text(left - 8, bottom + 44 + k * ch, c.tasks[k], 12, 'text-anchor="end"');
      for (let l = 0; l < c.tensors; l++) {
        const v = Math.max(0, Math.min(1, c.lambda[k * c.tensors + l]));
        const g = Math.round(255 - 200 * v);
        out.push(
          `<rect x="${(left + l * cw).toFixed(2)}" y="${bottom + 30 + k * ch}" width="${Math.max(0.5, cw).toFixed(2)}" height="${ch - 2}" fill="rgb(${g},${g},255)"/>`,
        );
      }
    }
    bottom += 60 + K * ch;
  }
  const H = bottom + 20;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<rect width="${W}" height="${H}" fill="white"/>${out.join('')}</svg>`
  );
}

export function adaChartPng(c: AdaChartInput): Promise<Uint8Array> {
  return svgToPng(adaChartSvg(c));
}
