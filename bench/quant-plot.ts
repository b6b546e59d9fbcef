/**
 * The size/accuracy picture of `slimgrad bench quant --accuracy --plot FILE.svg`: one point per
 * method (file bytes on a log axis, test accuracy of the deployed model), whatever rows the run
 * produced, so presets added later appear without changes here.
 */
import { esc, fmt, px, scale, svgOpen, ticks } from '../src/explain/plots.js';

export interface SizeAccuracyPoint {
  /** Method label (preset, `nested:N`, `float`). */
  label: string;
  /** Legend group: points of one group share a colour. */
  group: string;
  bytes: number;
  /** Mean test accuracy in [0, 1]. */
  accuracy: number;
  seeds: number;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Decades (and 2x, 5x) of bytes covering [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

const bytesLabel = (b: number): string => (b >= 1024 * 1024 ? `${fmt(b / 1024 / 1024)} MiB` : b >= 1024 ? `${fmt(b / 1024)} KiB` : `${b} B`);

/**
 * A standalone SVG scatter plot of model size (log x) against accuracy (y, percent); points more
 * than `dropBelow` under the best are named in a note under the plot instead of flattening it.
 */
export function sizeAccuracyPlot(points: readonly SizeAccuracyPoint[], title: string, dropBelow = 0.1): string {
  if (!points.length) throw new RangeError('sizeAccuracyPlot: no points (run with --accuracy and at least one preset)');
  for (const p of points) if (!(p.bytes > 0) || !Number.isFinite(p.accuracy)) throw new RangeError(`sizeAccuracyPlot: point '${p.label}' has bytes ${p.bytes}, accuracy ${p.accuracy}`);
  // Points more than `dropBelow` under the best would flatten the rest: listed under the plot instead.
  const best = Math.max(...points.map((p) => p.accuracy));
  const offScale = points.filter((p) => p.accuracy < best - dropBelow);
  points = points.filter((p) => p.accuracy >= best - dropBelow);
  const width = 760, height = 480, left = 70, right = 190, top = 40, bottom = 60;
  const lx = points.map((p) => Math.log10(p.bytes));
  const xLo = Math.min(...lx) - 0.15, xHi = Math.max(...lx) + 0.15;
  const acc = points.map((p) => 100 * p.accuracy);
  const yLo = Math.floor(Math.min(...acc) - 0.5), yHi = Math.ceil(Math.max(...acc) + 0.5);
  const x = scale(xLo, xHi, left, width - right), y = scale(yLo, yHi, height - bottom, top);
  const groups = [...new Set(points.map((p) => p.group))];
  const colour = (g: string) => COLOURS[groups.indexOf(g) % COLOURS.length]!;
  let s = svgOpen(width, height, title);
  s += `<text x="${px(left)}" y="24" font-size="14" fill="#111111">${esc(title)}</text>`;
  // Axes: x log bytes, y accuracy.
  s += `<g class="axis x"><line x1="${px(left)}" y1="${px(height - bottom)}" x2="${px(width - right)}" y2="${px(height - bottom)}" stroke="#333333"/>`;
  for (const t of logTicks(10 ** xLo, 10 ** xHi)) {
    const tx = x(Math.log10(t));
    s += `<line x1="${px(tx)}" y1="${px(height - bottom)}" x2="${px(tx)}" y2="${px(height - bottom + 4)}" stroke="#333333"/>`
      + `<text x="${px(tx)}" y="${px(height - bottom + 16)}" text-anchor="middle" fill="#333333">${esc(bytesLabel(t))}</text>`;
  }
  s += `<text x="${px((left + width - right) / 2)}" y="${px(height - 18)}" text-anchor="middle" fill="#333333">deployed file size (bytes, log scale)</text></g>`;
  s += `<g class="axis y"><line x1="${px(left)}" y1="${px(top)}" x2="${px(left)}" y2="${px(height - bottom)}" stroke="#333333"/>`;
  for (const t of ticks(yLo, yHi)) {
    s += `<line x1="${px(left - 4)}" y1="${px(y(t))}" x2="${px(width - right)}" y2="${px(y(t))}" stroke="#e5e5e5"/>`
      + `<text x="${px(left - 8)}" y="${px(y(t) + 4)}" text-anchor="end" fill="#333333">${esc(fmt(t))}</text>`;
  }
  s += `<text transform="translate(18 ${px((top + height - bottom) / 2)}) rotate(-90)" text-anchor="middle" fill="#333333">test accuracy (%)</text></g>`;
  // Labels right of their points, pushed down where they would overlap a label near the same x.
  const placed: { x: number; y: number }[] = [];
  const labelY = new Map<SizeAccuracyPoint, number>();
  for (const p of [...points].sort((a, b) => b.accuracy - a.accuracy)) {
    const cx = x(Math.log10(p.bytes));
    let ly = y(100 * p.accuracy) - 6;
    for (const q of placed.filter((l) => Math.abs(l.x - cx) < 110).sort((a, b) => a.y - b.y)) if (Math.abs(q.y - ly) < 11) ly = q.y + 11;
    placed.push({ x: cx, y: ly });
    labelY.set(p, ly);
  }
  for (const p of points) {
    const cx = x(Math.log10(p.bytes)), cy = y(100 * p.accuracy), ly = labelY.get(p)!;
    s += `<g class="point" data-label="${esc(p.label)}" data-bytes="${p.bytes}" data-accuracy="${p.accuracy}" data-seeds="${p.seeds}">`
      + `<circle cx="${px(cx)}" cy="${px(cy)}" r="4.5" fill="${colour(p.group)}"/>`
      + (Math.abs(ly - (cy - 6)) > 1 ? `<line x1="${px(cx + 4)}" y1="${px(cy)}" x2="${px(cx + 7)}" y2="${px(ly - 3)}" stroke="#999999"/>` : '')
      + `<text x="${px(cx + 7)}" y="${px(ly)}" font-size="10" fill="#222222">${esc(p.label)}</text></g>`;
  }
  if (offScale.length) {
    s += `<text class="off-scale" x="${px(left)}" y="${px(height - 4)}" font-size="10" fill="#555555">not shown (more than ${fmt(100 * dropBelow)} pt below the best): ${esc(offScale.map((p) => `${p.label} ${(100 * p.accuracy).toFixed(2)} % at ${bytesLabel(p.bytes)}`).join(', '))}</text>`;
  }
  groups.forEach((g, i) => {
    const ly = top + 10 + i * 18;
    s += `<g class="legend"><circle cx="${px(width - right + 20)}" cy="${px(ly)}" r="4.5" fill="${colour(g)}"/><text x="${px(width - right + 30)}" y="${px(ly + 4)}" fill="#333333">${esc(g)}</text></g>`;
  });
  return `${s}</svg>\n`;
}
