/**
 * Shapley explanations of image classifiers: players are square patches of the image, absent
 * patches take the values of a masker image (zero, the mean image, or a blur of the explained image),
 * and every estimator runs through batched calls of the model, which may be an engine module or any
 * black box (e.g. a packed binary model run by the deploy runtime).
 */
import { grad } from '../autograd/backward.js';
import { noGrad } from '../autograd/mode.js';
import { scope } from '../core/scope.js';
import { fromValues } from '../core/tensor.js';
import type { Module } from '../nn/module.js';
import { runDeployed, type DeployedModel } from '../quant/index.js';
import { Explainer, type ExplainableModel } from './explainer.js';
import type { BatchedModel, PlayerGroup } from './game.js';

/** Image layout [channels, height, width] (row-major, channels first, as the engine's convs). */
export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

/** How absent patches are filled: zeros, a fixed mean image, or a box blur of the explained image. */
export type Masker = 'zero' | 'mean' | 'blur';
export const MASKERS: readonly Masker[] = ['zero', 'mean', 'blur'];

/** Options of {@link imageExplainer}. */
export interface ImageExplainerOptions {
  /** Patch side in pixels (default 7: 16 players on 28x28). Edge patches may be smaller. */
  patch?: number;
  /** Default 'blur'. */
  masker?: Masker;
  /** Players from a segmentation (height × width labels, e.g. {@link superpixels}) instead of patches. */
  segments?: ArrayLike<number>;
  /** Side of the blur box (odd, default 2·patch + 1). */
  blurSize?: number;
  /** The mean image for the 'mean' masker (length channels·height·width). */
  meanImage?: Float64Array | Float32Array;
}

/**
 * Players of an image: player p covers the pixels `pixels[offsets[p]..offsets[p+1])` (indices into
 * the [C, H, W] layout; a player holds its pixels in every channel).
 */
export interface ImagePlayers {
  shape: ImageShape;
  /** Pixel indices grouped by player (a permutation of 0..C·H·W−1). */
  pixels: Int32Array;
  offsets: Int32Array;
  /** The players as contiguous column blocks of the player-major layout (for {@link Explainer}). */
  groups: PlayerGroup[];
  /** Square patches only: the patch side and the grid (players in row-major order). */
  grid?: { patch: number; rows: number; cols: number };
}

function checkShape(shape: ImageShape): number {
  const { channels, height, width } = shape;
  if (![channels, height, width].every((d) => Number.isInteger(d) && d >= 1)) throw new RangeError(`image explain: shape [${channels}, ${height}, ${width}] must be positive integers`);
  return channels * height * width;
}

/**
 * Players from a segmentation: `labels` (height × width, any integers, e.g. from {@link superpixels})
 * gives each pixel its player; players are the distinct labels in ascending order.
 * @example imageSegments(shape, superpixels(image, shape, 16)).groups.length // about 16
 */
export function imageSegments(shape: ImageShape, labels: ArrayLike<number>, name = (label: number) => `segment ${label}`): ImagePlayers {
  const size = checkShape(shape);
  const { channels, height, width } = shape, plane = height * width;
  if (labels.length !== plane) throw new RangeError(`image explain: ${labels.length} segment labels for a ${height} x ${width} image`);
  const distinct = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  if (!distinct.every(Number.isInteger)) throw new RangeError('image explain: segment labels must be integers');
  const index = new Map(distinct.map((l, p) => [l, p]));
  const counts = new Int32Array(distinct.length + 1);
  for (let i = 0; i < plane; i++) counts[index.get(labels[i]!)! + 1]! += channels;
  const offsets = new Int32Array(distinct.length + 1);
  for (let p = 0; p < distinct.length; p++) offsets[p + 1] = offsets[p]! + counts[p + 1]!;
  const pixels = new Int32Array(size), fill = offsets.slice(0, distinct.length);
  for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) pixels[fill[index.get(labels[i]!)!]!++] = c * plane + i;
  const groups = distinct.map((l, p) => ({ name: name(l), start: offsets[p]!, end: offsets[p + 1]! }));
  return { shape, pixels, offsets, groups };
}

/**
 * Square patches of side `patch` tiling the image (the last row/column of patches is cut to fit).
 * @example imagePatches({ channels: 1, height: 28, width: 28 }, 7).groups.length // 16
 */
export function imagePatches(shape: ImageShape, patch: number): ImagePlayers {
  checkShape(shape);
  const { height, width } = shape;
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.max(height, width)) throw new RangeError(`image explain: patch side must be an integer in 1..${Math.max(height, width)}, got ${patch}`);
  const cols = Math.ceil(width / patch), rows = Math.ceil(height / patch);
  const labels = Int32Array.from({ length: height * width }, (_, i) => Math.floor(Math.floor(i / width) / patch) * cols + Math.floor((i % width) / patch));
  return { ...imageSegments(shape, labels, (p) => `patch(${Math.floor(p / cols)},${p % cols})`), grid: { patch, rows, cols } };
}

/**
 * Superpixels by simple linear iterative clustering (SLIC, Achanta et al. 2012) on the channel-mean
 * intensity: about `count` compact regions that follow edges. `compactness` weighs spatial distance
 * against intensity (in intensity units per grid step; default 0.1 for images in [0, 1]).
 * Returns a label per pixel (height × width), labels 0..k−1.
 * @example imageExplainer(model, image, shape, { segments: superpixels(image, shape, 16) })
 */
export function superpixels(image: ArrayLike<number>, shape: ImageShape, count: number, compactness = 0.1, iterations = 8): Int32Array {
  const size = checkShape(shape);
  if (image.length !== size) throw new RangeError(`image explain: image has ${image.length} values, shape needs ${size}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`image explain: superpixel count must be a positive integer, got ${count}`);
  const { channels, height, width } = shape, plane = height * width;
  const grey = new Float64Array(plane);
  for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) grey[i]! += image[c * plane + i]! / channels;
  const step = Math.max(1, Math.sqrt(plane / count));
  const centres: number[][] = []; // [y, x, intensity]
  for (let y = step / 2; y < height; y += step) for (let x = step / 2; x < width; x += step) centres.push([y, x, grey[Math.floor(y) * width + Math.floor(x)]!]);
  const labels = new Int32Array(plane);
  const best = new Float64Array(plane);
  const w = 1 / (step * step), wi = 1 / (compactness * compactness);
  for (let it = 0; it < iterations; it++) {
    best.fill(Infinity);
    centres.forEach(([cy, cx, ci], k) => {
      for (let y = Math.max(0, Math.floor(cy! - 2 * step)); y < Math.min(height, Math.ceil(cy! + 2 * step)); y++) {
        for (let x = Math.max(0, Math.floor(cx! - 2 * step)); x < Math.min(width, Math.ceil(cx! + 2 * step)); x++) {
          const d = ((y - cy!) ** 2 + (x - cx!) ** 2) * w + (grey[y * width + x]! - ci!) ** 2 * wi;
          if (d < best[y * width + x]!) { best[y * width + x] = d; labels[y * width + x] = k; }
        }
      }
    });
    const sums = centres.map(() => [0, 0, 0, 0]);
    for (let i = 0; i < plane; i++) { const t = sums[labels[i]!]!; t[0]! += Math.floor(i / width); t[1]! += i % width; t[2]! += grey[i]!; t[3]!++; }
    sums.forEach((t, k) => { if (t[3]) centres[k] = [t[0]! / t[3]!, t[1]! / t[3]!, t[2]! / t[3]!]; });
  }
  // Compact labels 0..k−1 in order of first appearance.
  const remap = new Map<number, number>();
  return labels.map((l) => { if (!remap.has(l)) remap.set(l, remap.size); return remap.get(l)!; });
}

/**
 * Box blur (side `size`, clamped at the borders) of each channel of an image.
 * @example boxBlur(image, { channels: 1, height: 28, width: 28 }, 15) // the 'blur' masker of 7x7 patches
 */
export function boxBlur(image: ArrayLike<number>, shape: ImageShape, size: number): Float64Array {
  checkShape(shape);
  if (!Number.isInteger(size) || size < 1 || size % 2 === 0) throw new RangeError(`image explain: blur size must be a positive odd integer, got ${size}`);
  const { channels, height, width } = shape, h = (size - 1) / 2;
  const out = new Float64Array(channels * height * width);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let s = 0, n = 0;
        for (let yy = Math.max(0, y - h); yy <= Math.min(height - 1, y + h); yy++) {
          for (let xx = Math.max(0, x - h); xx <= Math.min(width - 1, x + h); xx++) { s += image[(c * height + yy) * width + xx]!; n++; }
        }
        out[(c * height + y) * width + x] = s / n;
      }
    }
  }
  return out;
}

/**
 * The masker image of `image`: what absent patches show.
 * @example maskerImage(image, shape, { masker: 'mean', meanImage }) // a copy of meanImage
 */
export function maskerImage(image: ArrayLike<number>, shape: ImageShape, options: ImageExplainerOptions = {}): Float64Array {
  const size = checkShape(shape);
  if (image.length !== size) throw new RangeError(`image explain: image has ${image.length} values, shape [${shape.channels}, ${shape.height}, ${shape.width}] needs ${size}`);
  const masker = options.masker ?? 'blur';
  switch (masker) {
    case 'zero': return new Float64Array(size);
    case 'mean': {
      if (!options.meanImage) throw new RangeError("image explain: masker 'mean' needs meanImage (e.g. the training-set mean)");
      if (options.meanImage.length !== size) throw new RangeError(`image explain: meanImage has ${options.meanImage.length} values, the image ${size}`);
      return Float64Array.from(options.meanImage);
    }
    case 'blur': return boxBlur(image, shape, options.blurSize ?? 2 * (options.patch ?? 7) + 1);
    default: throw new RangeError(`image explain: unknown masker '${masker as string}' (${MASKERS.join(', ')})`);
  }
}

/** Rearranges one image (or `rows` images) from [C, H, W] to patch-major order, or back with `inverse`. */
function permuteRows(src: ArrayLike<number>, rows: number, pixels: Int32Array, inverse: boolean, out: Float64Array): Float64Array {
  const n = pixels.length;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    if (inverse) for (let k = 0; k < n; k++) out[o + pixels[k]!] = src[o + k]!;
    else for (let k = 0; k < n; k++) out[o + k] = src[o + pixels[k]!]!;
  }
  return out;
}

/** An {@link Explainer} for one image plus the maps back to pixels. */
export interface ImageExplainer {
  explainer: Explainer;
  players: ImagePlayers;
  /** The explained image in the explainer's (patch-major) layout: pass it to explainer.explain. */
  x: Float64Array;
  /** The masker image in pixel layout. */
  masker: Float64Array;
  /** Per-pixel map of per-player values (each pixel of a player gets its value), [C, H, W]. */
  toMap(values: ArrayLike<number>): Float64Array;
}

/**
 * Sets up the patch game of one image for any batched model taking [C, H, W] rows (float64).
 * @example
 * const { explainer, x, toMap } = imageExplainer(model, image, { channels: 1, height: 28, width: 28 }, { patch: 7, masker: 'blur' });
 * const e = explainer.explain(x, { method: 'shear-antithetic', budget: 8 });
 * const heat = toMap(e.values); // 28x28
 */
export function imageExplainer(model: BatchedModel, image: ArrayLike<number>, shape: ImageShape, options: ImageExplainerOptions = {}): ImageExplainer {
  const patches = options.segments ? imageSegments(shape, options.segments) : imagePatches(shape, options.patch ?? 7);
  const masker = maskerImage(image, shape, options);
  const size = patches.pixels.length;
  let scratch = new Float64Array(0);
  const wrapped: ExplainableModel = {
    inputSize: size,
    predict: (batch, rows) => {
      if (scratch.length < rows * size) scratch = new Float64Array(rows * size);
      const pixelRows = permuteRows(batch, rows, patches.pixels, true, scratch);
      return model(rows * size === pixelRows.length ? pixelRows : pixelRows.subarray(0, rows * size), rows);
    },
  };
  const reference = permuteRows(masker, 1, patches.pixels, false, new Float64Array(size));
  const x = permuteRows(image, 1, patches.pixels, false, new Float64Array(size));
  const explainer = new Explainer(wrapped, { reference, groups: patches.groups, maxBatchRows: 2048 });
  const toMap = (values: ArrayLike<number>): Float64Array => {
    if (values.length !== patches.groups.length) throw new RangeError(`image explain: ${values.length} values for ${patches.groups.length} patches`);
    const map = new Float64Array(size);
    patches.groups.forEach((g, p) => { for (let k = g.start; k < g.end; k++) map[patches.pixels[k]!] = values[p]!; });
    return map;
  };
  return { explainer, players: patches, x, masker, toMap };
}

/**
 * Output `output` (e.g. the predicted class's logit) of an engine classifier, as a batched model
 * over [C, H, W] rows; runs in evaluation mode without a graph, in chunks of 512 rows.
 * @example imageExplainer(moduleOutput(lenet, { channels: 1, height: 28, width: 28 }, label), image, shape)
 */
export function moduleOutput(module: Module, shape: ImageShape, output: number): BatchedModel {
  const size = checkShape(shape);
  return (batch, rows) => noGrad(() => {
    const out = new Float64Array(rows);
    for (let r0 = 0; r0 < rows; r0 += 512) {
      const n = Math.min(512, rows - r0);
      scope(() => {
        const y = module.call(fromValues(batch.subarray(r0 * size, (r0 + n) * size), [n, shape.channels, shape.height, shape.width], 'float32'));
        const classes = y.shape[1]!, data = y.data();
        if (!(output >= 0 && output < classes)) throw new RangeError(`image explain: output ${output} outside the model's ${classes} outputs`);
        for (let k = 0; k < n; k++) out[r0 + k] = data[k * classes + output]!;
      });
    }
    return out;
  });
}

/**
 * Output `output` of a packed model run by the deploy runtime (a black box to the explainers).
 * @example imageExplainer(deployedOutput(convert(bwnLenet, [1, 28, 28]), label), image, shape)
 */
export function deployedOutput(model: DeployedModel, output: number): BatchedModel {
  const size = model.inputShape.reduce((a, b) => a * b, 1);
  return (batch, rows) => {
    const y = runDeployed(model, Float32Array.from(batch.subarray(0, rows * size)), [rows, ...model.inputShape]);
    const classes = y.shape[1]!;
    if (!(output >= 0 && output < classes)) throw new RangeError(`image explain: output ${output} outside the model's ${classes} outputs`);
    return Float64Array.from({ length: rows }, (_, k) => y.data[k * classes + output]!);
  };
}

/**
 * Gradient × input per patch, Σ_{pixels of p} (x − masker)·∂f/∂x (the first-order Taylor estimate of
 * each patch's contribution, the classic saliency baseline), from one backward pass of `module`.
 * @example deletionCurve(setup.explainer.game(setup.x), gradientTimesInput(lenet, image, setup, label)).deletionAuc
 */
export function gradientTimesInput(module: Module, image: ArrayLike<number>, setup: ImageExplainer, output: number): Float64Array {
  const { shape, pixels, groups } = setup.players;
  const g = scope(() => {
    const X = fromValues(Float32Array.from(image), [1, shape.channels, shape.height, shape.width], 'float32');
    X.requiresGrad = true;
    const y = module.call(X);
    const pick = new Float32Array(y.shape[1]!);
    pick[output] = 1;
    return grad(y, [X], { gradOutputs: [fromValues(pick, [1, y.shape[1]!], 'float32')] })[0]!.data();
  });
  return Float64Array.from(groups, (grp) => {
    let s = 0;
    for (let k = grp.start; k < grp.end; k++) s += (image[pixels[k]!]! - setup.masker[pixels[k]!]!) * g[pixels[k]!]!;
    return s;
  });
}
