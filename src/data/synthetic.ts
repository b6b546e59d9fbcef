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

/** Signed distance (negative inside) of a point from a shape of class `label`. */
function shapeDistance(label: number, dx: number, dy: number, r: number, t: number): number {
  const d = r * Math.SQRT1_2; // half-extent of the diagonal strokes
  switch (label) {
    case 0: return Math.sqrt(dx * dx + dy * dy) - r;
    case 1: return Math.abs(Math.sqrt(dx * dx + dy * dy) - r) - t;
    case 2: return segmentDistance(dx, dy, -r, 0, r, 0) - t;
    case 3: return segmentDistance(dx, dy, 0, -r, 0, r) - t;
    case 4: return segmentDistance(dx, dy, -d, -d, d, d) - t;
    case 5: return segmentDistance(dx, dy, -d, d, d, -d) - t;
    case 6: return Math.min(segmentDistance(dx, dy, -r, 0, r, 0), segmentDistance(dx, dy, 0, -r, 0, r)) - t;
    case 7: return Math.min(segmentDistance(dx, dy, -d, -d, d, d), segmentDistance(dx, dy, -d, d, d, -d)) - t;
    case 8: return Math.abs(Math.max(Math.abs(dx), Math.abs(dy)) - r * 0.8) - t;
    default: return Math.min(segmentDistance(dx, dy, -r, -r / 2, r, -r / 2), segmentDistance(dx, dy, -r, r / 2, r, r / 2)) - t;
  }
}

function segmentDistance(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const vx = bx - ax, vy = by - ay;
  const h = Math.max(0, Math.min(1, ((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy)));
  const ex = px - ax - h * vx, ey = py - ay - h * vy;
  return Math.sqrt(ex * ex + ey * ey);
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
    // One-pixel anti-aliased edge: full inside, linear ramp across the boundary.
    for (let py = 0; py < size; py++) {
      for (let px = 0; px < size; px++) {
        const sd = shapeDistance(label, px - cx, py - cy, r, t);
        coverage[py * size + px] = Math.max(0, Math.min(1, 0.5 - sd));
      }
    }
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
