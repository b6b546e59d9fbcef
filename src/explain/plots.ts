/**
 * The plots users know from `shap`, written as standalone SVG strings (no browser, DOM or Node
 * API): bar and waterfall for one explained row, beeswarm summary over many rows, and heat-map
 * overlays of image explanations. Red pushes the output up, blue down (shap's colours).
 * Every mark carries `class` and `data-*` attributes so the files can be checked and restyled.
 */

const POSITIVE = '#ff0051';
const NEGATIVE = '#008bfb';
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

/** Escapes text for XML content and attribute values. */
export function esc(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Fixed-precision number for coordinates (keeps files small). */
export const px = (v: number): string => (Math.round(v * 10) / 10).toString();

/** Compact value label: 4 significant digits. */
export function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : (+v.toPrecision(4)).toString();
}

export function svgOpen(width: number, height: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${px(width)}" height="${px(height)}" viewBox="0 0 ${px(width)} ${px(height)}" ${FONT} font-size="12">`
    + `<title>${esc(title)}</title><rect class="background" x="0" y="0" width="${px(width)}" height="${px(height)}" fill="#ffffff"/>`;
}

/** Linear map from [lo, hi] to [a, b]; a degenerate domain maps to the middle. */
export function scale(lo: number, hi: number, a: number, b: number): (v: number) => number {
  return hi > lo ? (v) => a + ((v - lo) / (hi - lo)) * (b - a) : () => (a + b) / 2;
}

/** ~5 round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

function axis(x: (v: number) => number, lo: number, hi: number, y: number, label: string): string {
  let s = `<g class="axis"><line x1="${px(x(lo))}" y1="${px(y)}" x2="${px(x(hi))}" y2="${px(y)}" stroke="#333333"/>`;
  for (const t of ticks(lo, hi)) {
    s += `<line x1="${px(x(t))}" y1="${px(y)}" x2="${px(x(t))}" y2="${px(y + 4)}" stroke="#333333"/>`
      + `<text x="${px(x(t))}" y="${px(y + 16)}" text-anchor="middle" fill="#333333">${esc(fmt(t))}</text>`;
  }
  return `${s}<text x="${px((x(lo) + x(hi)) / 2)}" y="${px(y + 34)}" text-anchor="middle" fill="#333333">${esc(label)}</text></g>`;
}

function checkValues(fn: string, players: readonly string[], values: ArrayLike<number>): void {
  if (players.length !== values.length || players.length === 0) throw new RangeError(`${fn}: ${players.length} player names for ${values.length} values (need the same non-zero number)`);
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) throw new RangeError(`${fn}: value ${i} ('${players[i]}') is not finite`);
}

/** One explained row: names and Shapley values. */
export interface RowExplanation {
  players: readonly string[];
  values: ArrayLike<number>;
}

/** Common plot options. */
export interface PlotOptions {
  title?: string;
  /** Players shown (largest |φ| first); the rest are summed into one row. Default 10. */
  maxDisplay?: number;
  /** Image width in pixels (default 640). */
  width?: number;
}

/** The rows a one-row plot shows: top players by |φ| plus an aggregate of the others. */
function displayed(players: readonly string[], values: ArrayLike<number>, maxDisplay: number): { name: string; value: number }[] {
  const order = players.map((_, i) => i).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
  const keep = order.length > maxDisplay ? maxDisplay - 1 : order.length;
  const rows = order.slice(0, keep).map((i) => ({ name: players[i]!, value: values[i]! }));
  if (keep < order.length) {
    let rest = 0;
    for (const i of order.slice(keep)) rest += values[i]!;
    rows.push({ name: `${order.length - keep} other features`, value: rest });
  }
  return rows;
}

const LABEL_WIDTH = 170;
const ROW = 26;

/**
 * Bar plot of one row: one horizontal bar per player from 0 to φ_i, largest |φ| on top.
 * @example writeFileSync('bar.svg', barPlot({ players: e.players, values: e.values }, { title: 'row 0' }));
 */
export function barPlot(row: RowExplanation, options: PlotOptions = {}): string {
  checkValues('barPlot', row.players, row.values);
  const rows = displayed(row.players, row.values, Math.max(1, options.maxDisplay ?? 10));
  const width = options.width ?? 640, top = options.title ? 36 : 14, height = top + rows.length * ROW + 50;
  const lo = Math.min(0, ...rows.map((r) => r.value)), hi = Math.max(0, ...rows.map((r) => r.value));
  const x = scale(lo, hi, LABEL_WIDTH, width - 70);
  let s = svgOpen(width, height, options.title ?? 'Shapley values');
  if (options.title) s += `<text class="title" x="${px(width / 2)}" y="22" text-anchor="middle" font-size="14">${esc(options.title)}</text>`;
  rows.forEach((r, k) => {
    const y = top + k * ROW, x0 = x(Math.min(0, r.value)), w = Math.abs(x(r.value) - x(0));
    const sign = r.value >= 0 ? 'positive' : 'negative';
    s += `<text class="label" x="${LABEL_WIDTH - 8}" y="${px(y + ROW / 2 + 4)}" text-anchor="end" fill="#333333">${esc(r.name)}</text>`
      + `<rect class="bar ${sign}" data-player="${esc(r.name)}" data-value="${r.value}" x="${px(x0)}" y="${px(y + 3)}" width="${px(w)}" height="${ROW - 6}" fill="${r.value >= 0 ? POSITIVE : NEGATIVE}"/>`
      + `<text class="value" x="${px(r.value >= 0 ? x(r.value) + 4 : x(r.value) - 4)}" y="${px(y + ROW / 2 + 4)}" text-anchor="${r.value >= 0 ? 'start' : 'end'}" fill="${r.value >= 0 ? POSITIVE : NEGATIVE}">${r.value >= 0 ? '+' : ''}${esc(fmt(r.value))}</text>`;
  });
  s += `<line class="zero" x1="${px(x(0))}" y1="${top}" x2="${px(x(0))}" y2="${px(top + rows.length * ROW)}" stroke="#999999"/>`;
  return `${s}${axis(x, lo, hi, top + rows.length * ROW + 4, 'Shapley value (impact on model output)')}</svg>`;
}

/** A row for {@link waterfallPlot}: the values plus where they start (v(∅)) and end (f(x)). */
export interface WaterfallRow extends RowExplanation {
  /** Output with every player absent (reference / background mean): shap's E[f(X)]. */
  base: number;
  /** Model output f(x); default base + Σφ (what efficient estimators give). */
  output?: number;
}

/**
 * Waterfall plot of one row: starting from the base value at the bottom, each player's bar moves
 * the output by φ_i, ending at f(x) on top (largest |φ| on top, as in shap).
 * @example waterfallPlot({ players, values, base: game.values(emptyMask, 1)[0], output: fx })
 */
export function waterfallPlot(row: WaterfallRow, options: PlotOptions = {}): string {
  checkValues('waterfallPlot', row.players, row.values);
  if (!Number.isFinite(row.base)) throw new RangeError('waterfallPlot: base must be finite');
  const rows = displayed(row.players, row.values, Math.max(1, options.maxDisplay ?? 10));
  const sum = rows.reduce((a, r) => a + r.value, 0);
  const output = row.output ?? row.base + sum;
  // The gap an inefficient estimator leaves (f(x) − base − Σφ) gets its own row so the bars still end at f(x).
  const gap = output - row.base - sum;
  if (Math.abs(gap) > 1e-9 * Math.max(1, Math.abs(output))) rows.push({ name: 'estimation gap', value: gap });
  const width = options.width ?? 640, top = options.title ? 56 : 34, height = top + rows.length * ROW + 70;
  // Cumulative positions from the bottom row (smallest) upwards.
  const starts = new Float64Array(rows.length);
  let cum = row.base;
  for (let k = rows.length - 1; k >= 0; k--) { starts[k] = cum; cum += rows[k]!.value; }
  const all = [row.base, output, ...rows.map((r, k) => starts[k]! + r.value)];
  const lo = Math.min(...all), hi = Math.max(...all);
  const pad = (hi - lo) * 0.08 || 1;
  const x = scale(lo - pad, hi + pad, LABEL_WIDTH, width - 30);
  let s = svgOpen(width, height, options.title ?? 'Shapley waterfall');
  if (options.title) s += `<text class="title" x="${px(width / 2)}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`;
  s += `<text class="output" data-value="${output}" x="${px(x(output))}" y="${top - 8}" text-anchor="middle" fill="#333333">f(x) = ${esc(fmt(output))}</text>`
    + `<line x1="${px(x(output))}" y1="${top - 4}" x2="${px(x(output))}" y2="${top + 4}" stroke="#333333"/>`;
  rows.forEach((r, k) => {
    const y = top + k * ROW, a = x(starts[k]!), b = x(starts[k]! + r.value);
    const left = Math.min(a, b), w = Math.abs(b - a), tip = Math.min(6, w);
    const pos = r.value >= 0;
    // An arrow-shaped bar pointing in the direction of the push.
    const points = pos
      ? [[left, y + 4], [left + w - tip, y + 4], [left + w, y + ROW / 2], [left + w - tip, y + ROW - 4], [left, y + ROW - 4]]
      : [[left + w, y + 4], [left + tip, y + 4], [left, y + ROW / 2], [left + tip, y + ROW - 4], [left + w, y + ROW - 4]];
    s += `<text class="label" x="${LABEL_WIDTH - 8}" y="${px(y + ROW / 2 + 4)}" text-anchor="end" fill="#333333">${esc(r.name)}</text>`
      + `<polygon class="step ${pos ? 'positive' : 'negative'}" data-player="${esc(r.name)}" data-value="${r.value}" data-start="${starts[k]}" points="${points.map(([u, v]) => `${px(u!)},${px(v!)}`).join(' ')}" fill="${pos ? POSITIVE : NEGATIVE}"/>`
      + `<text class="value" x="${px(pos ? left + w + 4 : left - 4)}" y="${px(y + ROW / 2 + 4)}" text-anchor="${pos ? 'start' : 'end'}" fill="${pos ? POSITIVE : NEGATIVE}">${pos ? '+' : ''}${esc(fmt(r.value))}</text>`;
    if (k > 0) s += `<line class="connector" x1="${px(a)}" y1="${px(y + 4)}" x2="${px(a)}" y2="${px(y - ROW + 4)}" stroke="#bbbbbb" stroke-dasharray="2,2"/>`;
  });
  const bottom = top + rows.length * ROW;
  s += `<line x1="${px(x(row.base))}" y1="${px(bottom - 4)}" x2="${px(x(row.base))}" y2="${px(bottom + 4)}" stroke="#333333"/>`
    + `<text class="base" data-value="${row.base}" x="${px(x(row.base))}" y="${px(bottom + 56)}" text-anchor="middle" fill="#333333">E[f(X)] = ${esc(fmt(row.base))}</text>`;
  return `${s}${axis(x, lo - pad, hi + pad, bottom + 4, '')}</svg>`;
}

/** Many explained rows for {@link beeswarmPlot}: values and (for colour) feature values, rows × players. */
export interface ManyRows {
  players: readonly string[];
  /** rows × players, row-major. */
  values: ArrayLike<number>;
  /** rows × players feature values (one number per player, e.g. the raw column or the one-hot level index); colours the dots. */
  features?: ArrayLike<number>;
}

/** Blue → purple → red for t ∈ [0, 1] (shap's colour bar). */
function valueColour(t: number): string {
  const c = Math.min(1, Math.max(0, t));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * c).toString(16).padStart(2, '0');
  return `#${mix(0x00, 0xff)}${mix(0x8b, 0x00)}${mix(0xfb, 0x51)}`;
}

/**
 * Beeswarm summary over rows: one line per player (ordered by mean |φ|), one dot per row at its φ,
 * stacked where dots collide, coloured by the feature value (blue low, red high).
 * @example beeswarmPlot({ players, values: allPhi, features: rowsX }, { title: 'Adult, 50 rows' })
 */
export function beeswarmPlot(data: ManyRows, options: PlotOptions = {}): string {
  const m = data.players.length;
  if (m === 0 || data.values.length === 0 || data.values.length % m !== 0) throw new RangeError(`beeswarmPlot: ${data.values.length} values do not form rows of ${m} players`);
  const n = data.values.length / m;
  if (data.features && data.features.length !== data.values.length) throw new RangeError(`beeswarmPlot: ${data.features.length} feature values for ${data.values.length} Shapley values`);
  for (let k = 0; k < data.values.length; k++) if (!Number.isFinite(data.values[k]!)) throw new RangeError(`beeswarmPlot: value ${k} is not finite`);
  const meanAbs = data.players.map((_, i) => { let s = 0; for (let r = 0; r < n; r++) s += Math.abs(data.values[r * m + i]!); return s / n; });
  const order = data.players.map((_, i) => i).sort((a, b) => meanAbs[b]! - meanAbs[a]! || a - b).slice(0, Math.max(1, options.maxDisplay ?? 12));
  const width = options.width ?? 640, rowH = 34, top = options.title ? 36 : 14, height = top + order.length * rowH + 56;
  let lo = 0, hi = 0;
  for (const i of order) for (let r = 0; r < n; r++) { const v = data.values[r * m + i]!; lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const x = scale(lo, hi, LABEL_WIDTH, width - 60);
  let s = svgOpen(width, height, options.title ?? 'Shapley summary');
  if (options.title) s += `<text class="title" x="${px(width / 2)}" y="22" text-anchor="middle" font-size="14">${esc(options.title)}</text>`;
  s += `<line class="zero" x1="${px(x(0))}" y1="${top}" x2="${px(x(0))}" y2="${px(top + order.length * rowH)}" stroke="#999999"/>`;
  const dot = 2.6;
  order.forEach((i, k) => {
    const yMid = top + k * rowH + rowH / 2;
    s += `<text class="label" x="${LABEL_WIDTH - 8}" y="${px(yMid + 4)}" text-anchor="end" fill="#333333">${esc(data.players[i]!)}</text><g class="swarm" data-player="${esc(data.players[i]!)}">`;
    let fLo = Infinity, fHi = -Infinity;
    if (data.features) for (let r = 0; r < n; r++) { const f = data.features[r * m + i]!; fLo = Math.min(fLo, f); fHi = Math.max(fHi, f); }
    // Swarm: dots in the same horizontal bin stack alternately above and below the line.
    const bins = new Map<number, number>();
    const rowsByValue = Array.from({ length: n }, (_, r) => r).sort((a, b) => data.values[a * m + i]! - data.values[b * m + i]!);
    for (const r of rowsByValue) {
      const v = data.values[r * m + i]!, cx = x(v), bin = Math.round(cx / (2 * dot));
      const c = bins.get(bin) ?? 0;
      bins.set(bin, c + 1);
      const offset = Math.min(rowH / 2 - dot, Math.ceil(c / 2) * dot * 1.6) * (c % 2 ? -1 : 1);
      const fill = data.features && fHi > fLo ? valueColour((data.features[r * m + i]! - fLo) / (fHi - fLo)) : '#7f7f7f';
      s += `<circle class="dot" data-row="${r}" data-value="${+v.toPrecision(6)}" cx="${px(cx)}" cy="${px(yMid + offset)}" r="${dot}" fill="${fill}" fill-opacity="0.85"/>`;
    }
    s += '</g>';
  });
  if (data.features) {
    const cbX = width - 40, cbTop = top, cbH = Math.max(40, order.length * rowH - 20);
    s += `<defs><linearGradient id="featureValue" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="${NEGATIVE}"/><stop offset="1" stop-color="${POSITIVE}"/></linearGradient></defs>`
      + `<rect class="colorbar" x="${cbX}" y="${cbTop}" width="8" height="${px(cbH)}" fill="url(#featureValue)"/>`
      + `<text x="${cbX + 4}" y="${cbTop - 2}" text-anchor="middle" font-size="10" fill="#333333">high</text>`
      + `<text x="${cbX + 4}" y="${px(cbTop + cbH + 11)}" text-anchor="middle" font-size="10" fill="#333333">low</text>`;
  }
  return `${s}${axis(x, lo, hi, top + order.length * rowH + 4, 'Shapley value (impact on model output)')}</svg>`;
}

/** One panel of {@link imageHeatmap}: a greyscale image and an attribution map of the same size. */
export interface HeatmapPanel {
  title: string;
  /** height × width intensities in [0, 1] (drawn as ink on white). */
  image: ArrayLike<number>;
  /** height × width attributions (e.g. imageExplainer's toMap of the patch values). */
  map: ArrayLike<number>;
}

/** Options of {@link imageHeatmap}. */
export interface HeatmapOptions {
  height: number;
  width: number;
  /** Pixels per image pixel (default 6). */
  scale?: number;
  /** Largest overlay opacity (default 0.7). */
  maxOpacity?: number;
  /** One colour scale for all panels (default true: panels are comparable). */
  sharedScale?: boolean;
}

/**
 * Heat-map overlays of image explanations, panels side by side (e.g. a float model and its packed
 * twin): the image in grey, each pixel tinted red (pushes the output up) or blue (down) with opacity
 * ∝ |attribution|. Equal neighbouring overlay pixels are merged into one rectangle.
 * @example imageHeatmap([{ title: 'LeNet-5', image, map: toMap(e.values) }], { height: 28, width: 28 })
 */
export function imageHeatmap(panels: readonly HeatmapPanel[], options: HeatmapOptions): string {
  const { height, width } = options, size = height * width;
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) throw new RangeError(`imageHeatmap: height and width must be positive integers, got ${height} x ${width}`);
  if (panels.length === 0) throw new RangeError('imageHeatmap: no panels');
  for (const p of panels) {
    if (p.image.length !== size || p.map.length !== size) throw new RangeError(`imageHeatmap: panel '${p.title}' has ${p.image.length} pixels and ${p.map.length} map values; ${height} x ${width} needs ${size}`);
  }
  const k = options.scale ?? 6, alpha = options.maxOpacity ?? 0.7, gap = 16, titleH = 22;
  const peak = (map: ArrayLike<number>) => { let a = 0; for (let i = 0; i < size; i++) a = Math.max(a, Math.abs(map[i]!)); return a; };
  const shared = options.sharedScale ?? true ? Math.max(...panels.map((p) => peak(p.map))) : 0;
  const W = panels.length * (width * k + gap) + gap, H = height * k + titleH + gap + 20;
  let s = svgOpen(W, H, panels.map((p) => p.title).join(' | '));
  panels.forEach((p, idx) => {
    const ox = gap + idx * (width * k + gap), oy = titleH;
    const maxAbs = shared || peak(p.map) || 1;
    s += `<g class="panel" data-title="${esc(p.title)}" data-max="${maxAbs}"><text class="title" x="${px(ox + (width * k) / 2)}" y="15" text-anchor="middle">${esc(p.title)}</text>`
      + `<rect class="frame" x="${ox}" y="${oy}" width="${width * k}" height="${height * k}" fill="#ffffff" stroke="#cccccc"/><g class="image">`;
    for (let i = 0; i < size; i++) {
      const v = Math.min(1, Math.max(0, p.image[i]!));
      if (v <= 0.02) continue; // white background stays the frame
      const grey = Math.round(255 * (1 - v)).toString(16).padStart(2, '0');
      s += `<rect x="${ox + (i % width) * k}" y="${oy + Math.floor(i / width) * k}" width="${k}" height="${k}" fill="#${grey}${grey}${grey}"/>`;
    }
    s += '</g><g class="overlay">';
    for (let y = 0; y < height; y++) {
      for (let x0 = 0; x0 < width;) {
        const v = p.map[y * width + x0]!;
        let x1 = x0 + 1;
        while (x1 < width && p.map[y * width + x1] === v) x1++;
        if (v !== 0) {
          s += `<rect class="cell ${v > 0 ? 'positive' : 'negative'}" data-value="${+v.toPrecision(6)}" x="${ox + x0 * k}" y="${oy + y * k}" width="${(x1 - x0) * k}" height="${k}" fill="${v > 0 ? POSITIVE : NEGATIVE}" fill-opacity="${(Math.round((alpha * Math.min(1, Math.abs(v) / maxAbs)) * 1000) / 1000)}"/>`;
        }
        x0 = x1;
      }
    }
    s += '</g></g>';
  });
  s += `<text x="${gap}" y="${H - 8}" font-size="11" fill="#333333"><tspan fill="${POSITIVE}">red</tspan>: raises the explained output; <tspan fill="${NEGATIVE}">blue</tspan>: lowers it</text>`;
  return `${s}</svg>`;
}
