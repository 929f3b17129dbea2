/**
 * The validity check as a picture: one panel per target task, mean prediction entropy (x) against accuracy
 * (y) for every merge of the sweep. The Task Arithmetic path (λ = 0 → 1) is a line, the task's own fine-tuned
 * model a green dot, the other target models grey dots. The premise of entropy-based merging holds where the
 * points run from the bottom right (unsure, wrong) to the top left (sure, right).
 */
import type { ValidityReport } from './validity';

const FONT = 'DejaVu Sans';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function validitySvg(v: ValidityReport, title: string): string {
  const cols = 4;
  const pw = 330;
  const ph = 260;
  const pad = { l: 56, r: 14, t: 34, b: 44 };
  const rows = Math.ceil(v.tasks.length / cols);
  const W = cols * pw + 20;
  const H = 90 + rows * ph + 40;
  const out: string[] = [];
  const text = (x: number, y: number, s: string, size: number, extra = '') =>
    out.push(
      `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-family="${FONT}" font-size="${size}" ${extra}>${esc(s)}</text>`,
    );
  text(20, 34, title, 22, 'font-weight="bold"');
  text(
    20,
    62,
    'x: mean prediction entropy (nats), y: accuracy (%); line: Task Arithmetic λ = 0 → 1; green: the task’s own model; grey: the other models',
    14,
    'fill="#555"',
  );
  v.tasks.forEach((t, i) => {
    const ox = 10 + (i % cols) * pw;
    const oy = 80 + Math.floor(i / cols) * ph;
    const x0 = ox + pad.l;
    const x1 = ox + pw - pad.r;
    const y0 = oy + ph - pad.b;
    const y1 = oy + pad.t;
    const hmax = Math.max(Math.log(t.classes), ...t.points.map((p) => p.entropy));
    const X = (h: number) => x0 + (h / hmax) * (x1 - x0);
    const Y = (a: number) => y0 - a * (y0 - y1);
    out.push(`<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" fill="#fafafa" stroke="#ccc"/>`);
    text(x0, oy + 22, `${t.task}  ρ = ${t.correlation.toFixed(2)}`, 15, 'font-weight="bold"');
    for (const a of [0, 0.5, 1]) text(ox + 14, Y(a) + 5, `${a * 100}`, 12, 'fill="#777"');
    text(x0, y0 + 18, '0', 12, 'fill="#777"');
    text(x1 - 30, y0 + 18, hmax.toFixed(2), 12, 'fill="#777"');
    out.push(
      `<line x1="${x0}" y1="${Y(t.chance).toFixed(1)}" x2="${x1}" y2="${Y(t.chance).toFixed(1)}" stroke="#c0504d" stroke-dasharray="4 3"/>`,
    );
    const path = t.points.filter((p) => p.point.startsWith('ta@'));
    out.push(
      `<polyline fill="none" stroke="#3b6fb6" stroke-width="2" points="${path
        .map((p) => `${X(p.entropy).toFixed(1)},${Y(p.accuracy).toFixed(1)}`)
        .join(' ')}"/>`,
    );
    for (const p of path)
      out.push(`<circle cx="${X(p.entropy).toFixed(1)}" cy="${Y(p.accuracy).toFixed(1)}" r="3" fill="#3b6fb6"/>`);
    for (const p of t.points.filter((q) => !q.point.startsWith('ta@'))) {
      const own = p.point === t.task;
      out.push(
        `<circle cx="${X(p.entropy).toFixed(1)}" cy="${Y(p.accuracy).toFixed(1)}" r="${own ? 6 : 4}" fill="${own ? '#2f6f4f' : '#9c9c9c'}"/>`,
      );
    }
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<rect width="${W}" height="${H}" fill="white"/>` +
    out.join('') +
    '</svg>'
  );
}
