/**
 * A built-in, deterministic image dataset so that training runs on a fresh machine with no
 * downloads: ten classes of procedurally drawn shapes (disk, ring, bars, diagonals, plus, cross,
 * square outline, double bar) at random positions, sizes, stroke widths and brightness, with
 * uniform pixel noise. Item i depends only on (seed, i), so a larger dataset extends a smaller
 * one, and labels cycle 0..9 so every prefix of a multiple of ten items is exactly balanced.
 */
import { Dataset, type ItemGenerator } from './dataset.js';
import { KeyedRandom, RANDOM_DOMAINS } from './random.js';

export const SYNTHETIC_CLASSES = ['disk', 'ring', 'hbar', 'vbar', 'diagonal', 'antidiagonal', 'plus', 'cross', 'square', 'doublebar'] as const;

export interface SyntheticOptions {
  /** Number of items (default 10,000). */
  n?: number;
  /** Index of the first item (default 0): items [start, start + n) of the endless sequence. */
  start?: number;
  /** Image height and width (default 28). */
  size?: number;
  /** 1 (grey) or 3 (RGB with a random foreground and background colour per item); default 1. */
  channels?: 1 | 3;
  /** Standard deviation of the pixel noise, uniform in [-noise*sqrt(3), noise*sqrt(3)] (default 0.1). */
  noise?: number;
  seed?: number;
}

/** Stroke segments (ax, ay, bx, by per segment) of the class being drawn; see setStrokes. */
const segments = new Float64Array(8);

/** Writes the stroke segments of classes 2-7 and 9 (r: half-length, d: half-extent of a diagonal) into `segments`; returns their count. */
function setStrokes(label: number, r: number, d: number): number {
  const put = (k: number, ax: number, ay: number, bx: number, by: number): void => {
    segments[4 * k] = ax;
    segments[4 * k + 1] = ay;
    segments[4 * k + 2] = bx;
    segments[4 * k + 3] = by;
  };
  switch (label) {
    case 2: put(0, -r, 0, r, 0); return 1;
    case 3: put(0, 0, -r, 0, r); return 1;
    case 4: put(0, -d, -d, d, d); return 1;
    case 5: put(0, -d, d, d, -d); return 1;
    case 6: put(0, -r, 0, r, 0); put(1, 0, -r, 0, r); return 2;
    case 7: put(0, -d, -d, d, d); put(1, -d, d, d, -d); return 2;
    case 9: put(0, -r, -r / 2, r, -r / 2); put(1, -r, r / 2, r, r / 2); return 2;
    default: return 0; // disk, ring and square have no strokes
  }
}

/**
 * Anti-aliased coverage in [0, 1] of a shape of class `label` centred at (cx, cy): full inside,
 * a linear ramp across a one-pixel boundary. Everything per pixel is inline arithmetic: a call
 * per pixel that V8 does not inline boxes its float arguments (~100 bytes of garbage per pixel,
 * ~50 MiB per epoch of synthetic-rgb), and that churn promotes a training step's live objects
 * into the old generation.
 */
function drawCoverage(label: number, cx: number, cy: number, r: number, t: number, size: number, coverage: Float32Array): void {
  const numSegments = setStrokes(label, r, r * Math.SQRT1_2);
  for (let py = 0; py < size; py++) {
    const dy = py - cy;
    for (let px = 0; px < size; px++) {
      const dx = px - cx;
      let sd: number; // signed distance, negative inside
      if (label === 0) sd = Math.sqrt(dx * dx + dy * dy) - r;
      else if (label === 1) sd = Math.abs(Math.sqrt(dx * dx + dy * dy) - r) - t;
      else if (label === 8) sd = Math.abs(Math.max(Math.abs(dx), Math.abs(dy)) - r * 0.8) - t;
      else {
        let nearest = Infinity; // distance to the nearest stroke segment
        for (let k = 0; k < numSegments; k++) {
          const ax = segments[4 * k]!, ay = segments[4 * k + 1]!;
          const vx = segments[4 * k + 2]! - ax, vy = segments[4 * k + 3]! - ay;
          const h = Math.max(0, Math.min(1, ((dx - ax) * vx + (dy - ay) * vy) / (vx * vx + vy * vy)));
          const ex = dx - ax - h * vx, ey = dy - ay - h * vy;
          nearest = Math.min(nearest, Math.sqrt(ex * ex + ey * ey));
        }
        sd = nearest - t;
      }
      coverage[py * size + px] = Math.max(0, Math.min(1, 0.5 - sd));
    }
  }
}

/**
 * The synthetic shapes dataset: items [channels, size, size] in [0, 1], 10 classes, 8-bit
 * pixel values k/255, each drawn when it is read (no memory held for the pixels).
 *
 * @example
 * const data = syntheticShapes({ n: 10000, seed: 1 });
 * const [train, test] = data.split(8000);
 */
export function syntheticShapes(options: SyntheticOptions = {}): Dataset {
  const { n = 10000, start = 0, size = 28, channels = 1, noise = 0.1, seed = 0 } = options;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`syntheticShapes: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(start) || start < 0) throw new RangeError(`syntheticShapes: start must be a non-negative integer, got ${start}`);
  if (!Number.isInteger(size) || size < 8) throw new RangeError(`syntheticShapes: size must be an integer >= 8, got ${size}`);
  if (channels !== 1 && channels !== 3) throw new RangeError(`syntheticShapes: channels must be 1 or 3, got ${channels}`);
  if (!(noise >= 0)) throw new RangeError(`syntheticShapes: noise must be >= 0, got ${noise}`);
  const numClasses = SYNTHETIC_CLASSES.length;
  const plane = size * size;
  const y = new Int32Array(n);
  for (let j = 0; j < n; j++) y[j] = (start + j) % numClasses;
  const coverage = new Float32Array(plane);
  const rng = new KeyedRandom(seed, RANDOM_DOMAINS.synthetic);
  // Items are drawn when read (8-bit pixels, like an image file): the set holds no pixels.
  const render = (i: number, x: Uint8Array): void => {
    const label = i % numClasses;
    rng.reset(i, 0);
    const r = size * (0.22 + 0.12 * rng.uniform());
    const t = size * (0.04 + 0.03 * rng.uniform());
    const cx = (size - 1) / 2 + size * 0.12 * (2 * rng.uniform() - 1);
    const cy = (size - 1) / 2 + size * 0.12 * (2 * rng.uniform() - 1);
    drawCoverage(label, cx, cy, r, t, size, coverage);
    for (let c = 0; c < channels; c++) {
      const fg = channels === 1 ? 0.6 + 0.4 * rng.uniform() : 0.5 + 0.5 * rng.uniform();
      const bg = channels === 1 ? 0 : 0.3 * rng.uniform();
      const base = c * plane;
      // Uniform rather than Gaussian noise: one random word per pixel keeps generation fast.
      const amplitude = 2 * Math.sqrt(3) * noise;
      for (let p = 0; p < plane; p++) {
        const v = bg + (fg - bg) * coverage[p]! + (noise > 0 ? amplitude * (rng.uniform() - 0.5) : 0);
        x[base + p] = Math.round(255 * Math.max(0, Math.min(1, v)));
      }
    }
  };
  const generator: ItemGenerator = { storage: 'uint8', render: (i, out) => render(start + i, out as Uint8Array) };
  const name = `synthetic-shapes-${size}x${size}x${channels}`;
  return new Dataset(generator, [channels, size, size], y, numClasses, name, 255);
}
