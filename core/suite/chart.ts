/**
 * The report's bar chart: drawn as SVG here, rendered to PNG with resvg (WebAssembly build, no native
 * binary) and the DejaVu Sans font shipped in the dejavu-fonts-ttf package (no system fonts are read, so
 * the PNG looks the same everywhere).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ChartRow {
  label: string;
  /** Accuracy per column, 0..1 (same order as `columns`). */
  values: number[];
  average: number;
}

export interface ChartInput {
  title: string;
  subtitle?: string;
  columns: string[];
  rows: ChartRow[];
}

const COLORS = ['#9c9c9c', '#2f6f4f', '#e39c37', '#3b6fb6', '#c0504d', '#7d5ba6', '#4bacc6', '#8c564b'];
const FONT = 'DejaVu Sans';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const pct = (v: number) => (v * 100).toFixed(1);

/** SVG of the chart: average accuracy per method (top), accuracy per task and method (bottom). */
export function chartSvg(input: ChartInput): string {
  const W = 1400;
  const rows = input.rows;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, size: number, extra = '') =>
    out.push(
      `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${size}" ${extra}>${esc(s)}</text>`,
    );
  const rect = (x: number, y: number, w: number, h: number, fill: string) =>
    out.push(
      `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0, w).toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${fill}"/>`,
    );
  const line = (x1: number, y1: number, x2: number, y2: number, stroke: string, width = 1) =>
    out.push(
      `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}" stroke-width="${width}"/>`,
    );

  text(40, 44, input.title, 26, 'font-weight="bold"');
  if (input.subtitle) text(40, 74, input.subtitle, 16, 'fill="#555"');

  // top panel: horizontal bars, average accuracy per method
  const top = 130;
  const barH = 30;
  const gap = 12;
  const labelW = 230;
  const x0 = 40 + labelW;
  const plotW = W - x0 - 140;
  text(40, top - 10, 'Average accuracy over the target tasks (%)', 18, 'font-weight="bold"');
  rows.forEach((r, i) => {
    const y = top + 10 + i * (barH + gap);
    text(40, y + barH * 0.7, r.label, 18);
    rect(x0, y, plotW, barH, '#f0f0f0');
    rect(x0, y, plotW * Math.max(0, Math.min(1, r.average)), barH, COLORS[i % COLORS.length]);
    text(
      x0 + plotW * Math.max(0, Math.min(1, r.average)) + 8,
      y + barH * 0.7,
      pct(r.average),
      18,
      'font-weight="bold"',
    );
  });
  const topEnd = top + 10 + rows.length * (barH + gap);

  // bottom panel: grouped vertical bars per task (+ the average)
  const cols = [...input.columns, 'Avg.'];
  const b0 = topEnd + 60;
  const plotH = 380;
  const left = 80;
  const right = W - 40;
  const gw = (right - left) / cols.length;
  const bw = Math.min(22, (gw * 0.82) / Math.max(1, rows.length));
  text(40, b0 - 20, 'Accuracy per task (%)', 18, 'font-weight="bold"');
  for (let g = 0; g <= 10; g += 2) {
    const y = b0 + plotH - (plotH * g) / 10;
    line(left, y, right, y, g === 0 ? '#333' : '#ddd', g === 0 ? 1.5 : 1);
    text(left - 10, y + 5, String(g * 10), 14, 'text-anchor="end" fill="#555"');
  }
  cols.forEach((c, j) => {
    const gx = left + j * gw + (gw - bw * rows.length) / 2;
    rows.forEach((r, i) => {
      const v = j < input.columns.length ? r.values[j] : r.average;
      const h = plotH * Math.max(0, Math.min(1, v));
      rect(gx + i * bw, b0 + plotH - h, bw - 2, h, COLORS[i % COLORS.length]);
    });
    const cx = left + j * gw + gw / 2;
    text(cx, b0 + plotH + 24, c, 14, `text-anchor="middle"${j === cols.length - 1 ? ' font-weight="bold"' : ''}`);
  });
  // legend
  const ly = b0 + plotH + 60;
  let lx = left;
  rows.forEach((r, i) => {
    rect(lx, ly - 14, 18, 18, COLORS[i % COLORS.length]);
    text(lx + 26, ly, r.label, 16);
    lx += 40 + r.label.length * 10;
  });
  const H = ly + 30;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<rect width="${W}" height="${H}" fill="white"/>` +
    out.join('') +
    '</svg>'
  );
}

let wasmReady: Promise<void> | undefined;

function fontFile(): Buffer {
  const dir = path.dirname(require.resolve('dejavu-fonts-ttf/package.json'));
  return fs.readFileSync(path.join(dir, 'ttf', 'DejaVuSans.ttf'));
}

/** PNG bytes of an SVG, rendered with resvg (wasm) and DejaVu Sans. */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  const resvg = require('@resvg/resvg-wasm') as typeof import('@resvg/resvg-wasm');
  wasmReady ??= resvg.initWasm(fs.readFileSync(require.resolve('@resvg/resvg-wasm/index_bg.wasm')));
  await wasmReady;
  const r = new resvg.Resvg(svg, {
    font: { fontBuffers: [fontFile()], loadSystemFonts: false, defaultFontFamily: FONT },
  });
  const img = r.render();
  const png = img.asPng();
  img.free();
  r.free();
  return png;
}

export async function chartPng(input: ChartInput): Promise<Uint8Array> {
  return svgToPng(chartSvg(input));
}
