/**
 * The SHEAR-paper tabular classifier on the slimgrad engine: Linear → softplus → Linear → softplus →
 * Linear(2), explained through its class-1 logit. Softplus keeps second derivatives non-zero, so
 * SHEAR's cross-contribution can come from the exact Hessian (autograd double backward).
 */
import { backward, grad } from '../autograd/backward.js';
import { noGrad } from '../autograd/mode.js';
import { scope } from '../core/scope.js';
import { fromValues, type Tensor } from '../core/tensor.js';
import { Lambda, Linear, Sequential } from '../nn/layers.js';
import { crossEntropy, matmul, softplus, sum } from '../ops/index.js';
import { Adam, clipGradNorm } from '../optim/optimizer.js';
import { Rng } from '../util/rng.js';
import type { ExplainableModel } from './explainer.js';

/** Options of {@link createTabularMlp}. */
export interface TabularMlpOptions {
  /** Hidden width (default 64, as in the SHEAR repository). */
  hidden?: number;
  /** Initialisation seed (default 0). */
  seed?: number;
}

/** A softplus MLP with two logits; `network` is the engine module. */
export interface TabularMlp {
  inputSize: number;
  network: Sequential;
}

/**
 * Builds the 3-layer softplus MLP.
 * @example const mlp = createTabularMlp(dataset.columns.length);
 */
export function createTabularMlp(inputSize: number, options: TabularMlpOptions = {}): TabularMlp {
  const hidden = options.hidden ?? 64;
  if (!Number.isInteger(inputSize) || inputSize < 1) throw new RangeError(`createTabularMlp: inputSize must be a positive integer, got ${inputSize}`);
  const rng = new Rng(options.seed ?? 0, 0x3e1);
  const network = new Sequential(
    new Linear(inputSize, hidden, { rng }),
    new Lambda('softplus', softplus),
    new Linear(hidden, hidden, { rng }),
    new Lambda('softplus', softplus),
    new Linear(hidden, 2, { rng }),
  );
  return { inputSize, network };
}

/** Class-1 column selector [2, 1]: logits @ e1 keeps the explained logit differentiable. */
function classOneSelector(): Tensor {
  return fromValues([0, 1], [2, 1], 'float32');
}

/** Class-1 logits of `rows` rows (float64 in, float64 out; the network computes in float32). */
export function classOneLogits(mlp: TabularMlp, batch: Float64Array, rows: number): Float64Array {
  const width = mlp.inputSize;
  if (batch.length < rows * width) throw new RangeError(`tabular MLP: ${rows} rows need ${rows * width} values, got ${batch.length}`);
  return noGrad(() => scope(() => {
    const x = fromValues(batch.subarray(0, rows * width), [rows, width], 'float32');
    const logits = mlp.network.call(x);
    const data = logits.data();
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) out[r] = data[r * 2 + 1]!;
    return out;
  }));
}

/** Step (in input units, along the normalised direction) of the central differences of gradients. */
const HVP_STEP = 1e-2;

/**
 * How to compute Hessian-vector products: 'double-backward' (exact, autograd twice), 'gradient-difference'
 * (forward differences of autograd gradients: one ordinary backward, several times cheaper), or
 * 'auto' (double backward when the engine supports it).
 */
export type HvpMethod = 'auto' | 'double-backward' | 'gradient-difference';

/** How {@link classOneHvp} computed its products (reported in SHEAR explanations). */
export type HvpSource = 'autograd double backward' | 'forward differences of autograd gradients';

/**
 * Hessian-vector products H(x)·v_k of the class-1 logit for `count` directions (count × width),
 * batched over `count` replicas of x. Preferred: double backward — g = ∇ Σ_k f(X_k) with the graph
 * kept, then ∇ Σ_k v_k·g_k puts H v_k in row k. When the engine's first backward does not record a
 * differentiable graph (probed once per model: g does not require grad), uses forward differences of
 * autograd gradients, H v ≈ (∇f(x + h v̂) − ∇f(x))·|v| / h with v̂ = v/|v|, in one backward over count + 1
 * rows (O(h) error is harmless: only the ranking of cross-contributions is used).
 */
export function classOneHvp(mlp: TabularMlp, x: Float64Array, directions: Float64Array, count: number, method: HvpMethod = 'auto'): { products: Float64Array; source: HvpSource } {
  const width = mlp.inputSize;
  if (x.length !== width) throw new RangeError(`tabular MLP: Hessian point has ${x.length} values, the model takes ${width}`);
  if (directions.length !== count * width) throw new RangeError(`tabular MLP: ${count} directions need ${count * width} values, got ${directions.length}`);
  if (method === 'double-backward' && !engineHasDoubleBackward(mlp)) throw new Error('tabular MLP: the engine does not differentiate this network twice (use hvp: gradient-difference)');
  const useDouble = method === 'double-backward' || (method === 'auto' && engineHasDoubleBackward(mlp));
  return withInputGradientsOnly(mlp, () => (useDouble ? doubleBackwardHvp(mlp, x, directions, count) : gradientDifferenceHvp(mlp, x, directions, count)));
}

/**
 * Runs `fn` with the parameters frozen, so that backward passes differentiate with respect to the
 * input rows only (no weight gradients: a third of the double-backward work).
 */
function withInputGradientsOnly<T>(mlp: TabularMlp, fn: () => T): T {
  const params = mlp.network.parameters().filter((p) => p.requiresGrad);
  for (const p of params) p.requiresGrad = false;
  try {
    return fn();
  } finally {
    for (const p of params) p.requiresGrad = true;
  }
}

/** Σ_k class-1 logit of rows X (a differentiable scalar). */
function summedClassOneLogit(mlp: TabularMlp, X: Tensor): Tensor {
  return sum(matmul(mlp.network.call(X), classOneSelector()));
}

const doubleBackwardSupport = new WeakMap<TabularMlp, boolean>();

/** Whether a createGraph backward through this network yields a differentiable gradient (probed once). */
function engineHasDoubleBackward(mlp: TabularMlp): boolean {
  let ok = doubleBackwardSupport.get(mlp);
  if (ok === undefined) {
    ok = scope(() => {
      const X = fromValues(new Float32Array(mlp.inputSize), [1, mlp.inputSize], 'float32');
      X.requiresGrad = true;
      return grad(summedClassOneLogit(mlp, X), [X], { createGraph: true })[0]!.requiresGrad;
    });
    doubleBackwardSupport.set(mlp, ok);
  }
  return ok;
}

function doubleBackwardHvp(mlp: TabularMlp, x: Float64Array, directions: Float64Array, count: number): { products: Float64Array; source: HvpSource } {
  const width = mlp.inputSize;
  return scope(() => {
    const rep = new Float32Array(count * width);
    for (let k = 0; k < count; k++) rep.set(x, k * width);
    const X = fromValues(rep, [count, width], 'float32');
    X.requiresGrad = true;
    const [g] = grad(summedClassOneLogit(mlp, X), [X], { createGraph: true });
    const [h] = grad(g!, [X], { gradOutputs: [fromValues(directions, [count, width], 'float32')] });
    return { products: Float64Array.from(h!.data()), source: 'autograd double backward' as const };
  });
}

function gradientDifferenceHvp(mlp: TabularMlp, x: Float64Array, directions: Float64Array, count: number): { products: Float64Array; source: HvpSource } {
  const width = mlp.inputSize;
  return scope(() => {
    // Rows 0..count−1: x + h·v̂_k; row count: x itself (forward differences: one backward over count + 1 rows).
    const norms = new Float64Array(count);
    const shifted = new Float32Array((count + 1) * width);
    shifted.set(x, count * width);
    for (let k = 0; k < count; k++) {
      let n2 = 0;
      for (let c = 0; c < width; c++) n2 += directions[k * width + c]! ** 2;
      norms[k] = Math.sqrt(n2);
      const scale = norms[k]! > 0 ? HVP_STEP / norms[k]! : 0;
      for (let c = 0; c < width; c++) shifted[k * width + c] = x[c]! + scale * directions[k * width + c]!;
    }
    const S = fromValues(shifted, [count + 1, width], 'float32');
    S.requiresGrad = true;
    const [gs] = grad(summedClassOneLogit(mlp, S), [S]);
    const d = gs!.data();
    const products = new Float64Array(count * width);
    for (let k = 0; k < count; k++) {
      const f = norms[k]! / HVP_STEP;
      for (let c = 0; c < width; c++) products[k * width + c] = (d[k * width + c]! - d[count * width + c]!) * f;
    }
    return { products, source: 'forward differences of autograd gradients' as const };
  });
}

/**
 * Wraps the MLP for the explainers: batched class-1 logits plus Hessian-vector products.
 * @example new Explainer(explainableMlp(mlp), { reference, groups: dataset.groups })
 */
export function explainableMlp(mlp: TabularMlp, hvp: HvpMethod = 'auto'): ExplainableModel {
  return {
    inputSize: mlp.inputSize,
    predict: (batch, rows) => classOneLogits(mlp, batch, rows),
    hessianVectorProducts(x, directions, count) {
      const { products, source } = classOneHvp(mlp, x, directions, count, hvp);
      this.hessianSource = source;
      return products;
    },
  };
}

/** Options of {@link trainTabularMlp}; defaults follow the SHEAR repository (§2.2 of the spec). */
export interface TrainOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Global gradient-norm clip (default 0.1). */
  clipNorm?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** Called after every epoch with the mean training loss. */
  onEpoch?: (epoch: number, loss: number) => void;
}

/** A labelled design matrix (rows × inputSize, float64; labels 0/1). */
export interface LabelledRows {
  x: Float64Array;
  y: ArrayLike<number>;
  rows: number;
}

/**
 * Trains the MLP with cross-entropy, Adam and gradient-norm clipping on shuffled mini-batches.
 * Returns the mean loss of the last epoch.
 * @example trainTabularMlp(mlp, dataset.train, { epochs: 20 });
 */
export function trainTabularMlp(mlp: TabularMlp, data: LabelledRows, options: TrainOptions = {}): number {
  const { epochs = 20, batchSize = 256, lr = 1e-3, clipNorm = 0.1, seed = 0 } = options;
  const width = mlp.inputSize;
  if (data.x.length !== data.rows * width) throw new RangeError(`trainTabularMlp: ${data.rows} rows need ${data.rows * width} values, got ${data.x.length}`);
  if (!(Number.isInteger(epochs) && epochs >= 1 && Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`trainTabularMlp: epochs and batchSize must be positive integers, got ${epochs} and ${batchSize}`);
  }
  const params = mlp.network.parameters();
  const optimizer = new Adam(params, { lr });
  const xb = new Float32Array(batchSize * width);
  const yb = new Int32Array(batchSize);
  let lastLoss = NaN;
  mlp.network.train();
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = new Rng(seed, 0x7a1 + epoch).permutation(data.rows);
    let total = 0;
    for (let b0 = 0; b0 < data.rows; b0 += batchSize) {
      const n = Math.min(batchSize, data.rows - b0);
      for (let k = 0; k < n; k++) {
        const r = order[b0 + k]!;
        xb.set(data.x.subarray(r * width, (r + 1) * width), k * width);
        yb[k] = data.y[r]!;
      }
      total += scope(() => {
        const loss = crossEntropy(mlp.network.call(fromValues(xb.subarray(0, n * width), [n, width], 'float32')), fromValues(yb.subarray(0, n), [n], 'int32'));
        backward(loss);
        clipGradNorm(params, clipNorm);
        optimizer.step();
        optimizer.zeroGrad();
        return loss.item() * n;
      });
    }
    lastLoss = total / data.rows;
    options.onEpoch?.(epoch, lastLoss);
  }
  optimizer.dispose();
  mlp.network.eval();
  return lastLoss;
}

/** Classification accuracy (argmax of the two logits) on labelled rows. */
export function mlpAccuracy(mlp: TabularMlp, data: LabelledRows): number {
  const width = mlp.inputSize;
  let correct = 0;
  const chunk = 4096;
  for (let r0 = 0; r0 < data.rows; r0 += chunk) {
    const n = Math.min(chunk, data.rows - r0);
    const predicted = noGrad(() => scope(() => {
      const logits = mlp.network.call(fromValues(data.x.subarray(r0 * width, (r0 + n) * width), [n, width], 'float32')).data();
      return Uint8Array.from({ length: n }, (_, k) => (logits[2 * k + 1]! > logits[2 * k]! ? 1 : 0));
    }));
    for (let k = 0; k < n; k++) if (predicted[k] === data.y[r0 + k]) correct++;
  }
  return correct / data.rows;
}
