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

/** The MLP's float64 weights, checking the Linear → softplus → Linear → softplus → Linear shape. */
function mlpWeights(mlp: TabularMlp): { w1: Float64Array; b1: Float64Array; w2: Float64Array; b2: Float64Array; out: Float64Array; h1: number; h2: number } {
  const l = mlp.network.layers;
  const shapeOk = l.length === 5 && [0, 2, 4].every((k) => l[k] instanceof Linear && (l[k] as Linear).bias) && [1, 3].every((k) => l[k] instanceof Lambda && (l[k] as Lambda).label === 'softplus');
  if (!shapeOk) throw new RangeError('tabular MLP: third-order interactions need the Linear → softplus → Linear → softplus → Linear network of createTabularMlp');
  const [first, second, last] = [l[0], l[2], l[4]] as Linear[];
  const read = (t: Tensor) => Float64Array.from(t.data());
  return {
    w1: read(first!.weight), b1: read(first!.bias!), w2: read(second!.weight), b2: read(second!.bias!),
    out: read(last!.weight).subarray(second!.outFeatures, 2 * second!.outFeatures), h1: first!.outFeatures, h2: second!.outFeatures,
  };
}

/**
 * Third-order directional derivatives D³f(z)[v_i, v_j, v_k] of the class-1 logit at `point`, for all
 * triples i < j < k of the `count` directions (count × width, row-major), packed lexicographically
 * (the layout of `controlVariateShapley`). Analytic, in float64 from the float32 weights: with
 * a = W1·z + b1, c = W2·softplus(a) + b2, P_i = W1·v_i, Q_i = W2·(σ(a)∘P_i) (σ = softplus' = sigmoid),
 *   D³f[i,j,k] = Σ_u w_u σ''(c_u) Q_iu Q_ju Q_ku + Σ_v γ_v P_iv P_jv P_kv + Σ_v (P_iv P_jv G_kv + P_iv P_kv G_jv + P_jv P_kv G_iv),
 * γ = σ''(a)' ∘ W2ᵀ(w∘σ(c)) (the third derivative of softplus) and G_k = σ'(a)∘W2ᵀ(w∘σ'(c)∘Q_k): four
 * dot products per triple after O(count·h1·h2) set-up, no model call.
 * @example const d3 = classOneThirdOrder(mlp, midpoint, playerDirections(x, r, groups), groups.length);
 */
export function classOneThirdOrder(mlp: TabularMlp, point: Float64Array, directions: Float64Array, count: number): Float64Array {
  const width = mlp.inputSize;
  if (point.length !== width) throw new RangeError(`tabular MLP: third-order point has ${point.length} values, the model takes ${width}`);
  if (directions.length !== count * width) throw new RangeError(`tabular MLP: ${count} directions need ${count * width} values, got ${directions.length}`);
  const { w1, b1, w2, b2, out, h1, h2 } = mlpWeights(mlp);
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  // Layer 1 at the point: softplus derivatives s1 = σ, s2 = σ', s3 = σ''.
  const s1 = new Float64Array(h1), s2 = new Float64Array(h1), s3 = new Float64Array(h1), hidden = new Float64Array(h1);
  for (let v = 0; v < h1; v++) {
    let a = b1[v]!;
    for (let c = 0; c < width; c++) a += w1[v * width + c]! * point[c]!;
    const s = sigmoid(a);
    s1[v] = s; s2[v] = s * (1 - s); s3[v] = s * (1 - s) * (1 - 2 * s);
    hidden[v] = a > 30 ? a : Math.log1p(Math.exp(a));
  }
  // Layer 2: α = w∘σ''(c), β = w∘σ'(c), γ = s3 ∘ W2ᵀ(w∘σ(c)).
  const alpha = new Float64Array(h2), beta = new Float64Array(h2), gamma = new Float64Array(h1);
  for (let u = 0; u < h2; u++) {
    let c = b2[u]!;
    for (let v = 0; v < h1; v++) c += w2[u * h1 + v]! * hidden[v]!;
    const t = sigmoid(c);
    alpha[u] = out[u]! * t * (1 - t) * (1 - 2 * t);
    beta[u] = out[u]! * t * (1 - t);
    for (let v = 0; v < h1; v++) gamma[v]! += w2[u * h1 + v]! * out[u]! * t;
  }
  for (let v = 0; v < h1; v++) gamma[v]! *= s3[v]!;
  const P = new Float64Array(count * h1), Q = new Float64Array(count * h2), G = new Float64Array(count * h1), B = new Float64Array(count * h1);
  for (let i = 0; i < count; i++) {
    const d = directions.subarray(i * width, (i + 1) * width);
    for (let c = 0; c < width; c++) {
      const dc = d[c]!;
      if (dc !== 0) for (let v = 0; v < h1; v++) P[i * h1 + v]! += w1[v * width + c]! * dc;
    }
    for (let u = 0; u < h2; u++) {
      let q = 0;
      for (let v = 0; v < h1; v++) q += w2[u * h1 + v]! * s1[v]! * P[i * h1 + v]!;
      Q[i * h2 + u] = q;
      const bq = beta[u]! * q;
      for (let v = 0; v < h1; v++) G[i * h1 + v]! += w2[u * h1 + v]! * bq;
    }
    for (let v = 0; v < h1; v++) {
      G[i * h1 + v]! *= s2[v]!;
      B[i * h1 + v] = gamma[v]! * P[i * h1 + v]! + G[i * h1 + v]!;
    }
  }
  const result = new Float64Array((count * (count - 1) * (count - 2)) / 6);
  // Per pair (i, j): P_i∘P_j, P_i∘G_j + P_j∘G_i and α∘Q_i∘Q_j; then three dot products per triple.
  const pij = new Float64Array(h1), gij = new Float64Array(h1), qij = new Float64Array(h2);
  let t = 0;
  for (let i = 0; i < count; i++) {
    for (let j = i + 1; j < count; j++) {
      for (let v = 0; v < h1; v++) {
        const pi = P[i * h1 + v]!, pj = P[j * h1 + v]!;
        pij[v] = pi * pj;
        gij[v] = pi * G[j * h1 + v]! + pj * G[i * h1 + v]!;
      }
      for (let u = 0; u < h2; u++) qij[u] = alpha[u]! * Q[i * h2 + u]! * Q[j * h2 + u]!;
      for (let k = j + 1; k < count; k++, t++) {
        let s = 0;
        const ok = k * h1, qk = k * h2;
        for (let v = 0; v < h1; v++) s += pij[v]! * B[ok + v]! + gij[v]! * P[ok + v]!;
        for (let u = 0; u < h2; u++) s += qij[u]! * Q[qk + u]!;
        result[t] = s;
      }
    }
  }
  return result;
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
    thirdOrderInteractions: (point, directions, count) => classOneThirdOrder(mlp, point, directions, count),
    thirdOrderSource: 'analytic third derivatives of the MLP',
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
