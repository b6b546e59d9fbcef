/**
 * What a pipeline trains: a model as a list of layers (split into stages by layer ranges) and a
 * dataset with stable example ids. Every stage process builds the same task from the same
 * options, so the first stage has the inputs and the last stage the targets without sending them.
 */
import { Tensor, fromValues } from '../core/tensor.js';
import { charExample, charExampleCount, loadCharText } from '../data/text.js';
import { syntheticShapes } from '../data/synthetic.js';
import { Linear, ReLU, Tanh } from '../nn/layers.js';
import { mlp, resnet20, transformer, type Transformer } from '../nn/models.js';
import { Module } from '../nn/module.js';
import { add, crossEntropy, reshape } from '../ops/index.js';
import { Rng } from '../util/rng.js';

export const TASK_MODELS = ['charlm', 'resnet20', 'mlp', 'wide'] as const;
export type TaskModel = (typeof TASK_MODELS)[number];

export interface TaskOptions {
  model: TaskModel;
  seed?: number;
  /** Training examples used (the first N of the dataset). */
  examples?: number;
  /** charlm: text file (default ../shared/data/text/tinyshakespeare.txt). */
  data?: string;
  /** charlm: width, transformer blocks, heads, tokens per example. */
  dim?: number;
  layers?: number;
  heads?: number;
  tokens?: number;
}

export interface PipelineTask {
  readonly name: string;
  /** Number of examples (ids 0..examples-1). */
  readonly examples: number;
  /** The whole model as layers, built from the seed (same weights in every process). */
  layers(): Module[];
  /** Model input for examples `ids` (first stage). */
  inputs(ids: readonly number[]): Tensor;
  /** Targets for examples `ids` (last stage). */
  targets(ids: readonly number[]): Tensor;
  /** Mean loss of a micro-batch. */
  loss(out: Tensor, targets: Tensor): Tensor;
}

export const DEFAULT_TEXT = '../shared/data/text/tinyshakespeare.txt';

/** Consecutive sub-modules of a model run by `fn` as one pipeline layer (the children hold its parameters). */
class Part extends Module {
  constructor(children: Record<string, Module>, private readonly fn: (x: Tensor) => Tensor) {
    super();
    for (const [name, m] of Object.entries(children)) this.registerModule(name, m);
  }
  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

/**
 * The layers of a causal Transformer LM: token + position embedding, each block, final norm +
 * head ([B, T, D] -> logits [B*T, V]). Running them in order is exactly `tf.call` (same ops, same order).
 */
export function transformerLayers(tf: Transformer): Module[] {
  const embed = new Part({ tok: tf.tokenEmbedding, pos: tf.positionEmbedding }, (ids) =>
    add(tf.tokenEmbedding.call(ids), tf.positionEmbedding.call(reshape(tf.positions, [1, ids.shape[1]!]))));
  const head = new Part({ ln: tf.lnFinal, head: tf.head }, (h) => reshape(tf.head.call(tf.lnFinal.call(h)), [h.shape[0]! * h.shape[1]!, -1]));
  return [embed, ...tf.blocks.layers, head];
}

function checkCount(n: number | undefined, what: string, fallback: number, max = Infinity): number {
  const v = n ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${what} must be an integer in [1, ${max}], got ${n}`);
  return v;
}

function charLmTask(o: TaskOptions): PipelineTask {
  const tokens = checkCount(o.tokens, 'charlm tokens', 64, 4096);
  const dim = checkCount(o.dim, 'charlm dim', 64, 4096);
  const heads = checkCount(o.heads, 'charlm heads', 4, dim);
  const blocks = checkCount(o.layers, 'charlm layers', 2, 256);
  const text = loadCharText(o.data ?? DEFAULT_TEXT);
  const available = charExampleCount(text.train, tokens);
  const examples = checkCount(o.examples ?? available, 'examples', available, available);
  const build = () => transformer({ dim, heads, layers: blocks, tokens, vocab: text.vocab.length, seed: o.seed ?? 0 });
  return {
    name: `charlm d${dim} L${blocks} T${tokens}`,
    examples,
    layers: () => transformerLayers(build()),
    inputs(ids) {
      const x = new Int32Array(ids.length * tokens), y = new Int32Array(ids.length * tokens);
      ids.forEach((id, j) => charExample(text.train, tokens, id, x, y, j * tokens));
      return fromValues(x, [ids.length, tokens], 'int32');
    },
    targets(ids) {
      const x = new Int32Array(ids.length * tokens), y = new Int32Array(ids.length * tokens);
      ids.forEach((id, j) => charExample(text.train, tokens, id, x, y, j * tokens));
      return fromValues(y, [ids.length * tokens], 'int32');
    },
    loss: (out, y) => crossEntropy(out, y),
  };
}

function imageTask(name: string, x: Float32Array, y: Int32Array, itemShape: number[], layers: () => Module[]): PipelineTask {
  const item = itemShape.reduce((a, b) => a * b, 1);
  return {
    name,
    examples: y.length,
    layers,
    inputs(ids) {
      const out = new Float32Array(ids.length * item);
      ids.forEach((id, j) => out.set(x.subarray(id * item, (id + 1) * item), j * item));
      return fromValues(out, [ids.length, ...itemShape]);
    },
    targets: (ids) => fromValues(ids.map((id) => y[id]!), [ids.length], 'int32'),
    loss: (out, t) => crossEntropy(out, t),
  };
}

/** Builds a task from options (reads the text file for charlm). */
export function createTask(o: TaskOptions): PipelineTask {
  const seed = o.seed ?? 0;
  switch (o.model) {
    case 'charlm':
      return charLmTask(o);
    case 'resnet20': {
      const n = checkCount(o.examples, 'examples', 256, 1 << 20);
      const data = syntheticShapes({ n, size: 32, channels: 3, seed });
      return imageTask('resnet20 (synthetic shapes 3x32x32)', data.values(), data.y, [3, 32, 32], () => resnet20(10, seed).layers);
    }
    case 'mlp': {
      const n = checkCount(o.examples, 'examples', 256, 1 << 20);
      const { x, y } = teacherData(n, 16, 4, seed);
      return imageTask('mlp 16-32-32-32-4 (random teacher)', x, y, [16], () => mlp([16, 32, 32, 32, 4], seed).layers);
    }
    case 'wide': {
      // Little compute per byte between stages: every boundary carries 2048 values per example.
      const n = checkCount(o.examples, 'examples', 256, 1 << 20);
      const { x, y } = teacherData(n, 32, 4, seed);
      const layers = () => {
        const rng = new Rng(seed, 78);
        return [new Linear(32, 2048, { rng }), ReLU(), Tanh(), ReLU(), new Linear(2048, 4, { rng })];
      };
      return imageTask('wide 32-2048-4 (link-bound probe, random teacher)', x, y, [32], layers);
    }
    default:
      throw new Error(`unknown pipeline model '${String(o.model)}' (available: ${TASK_MODELS.join(', ')})`);
  }
}

/** Gaussian inputs [n, d] labelled by a random linear teacher with k classes: small, fast, learnable. */
function teacherData(n: number, d: number, k: number, seed: number): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(seed, 77);
  const x = Float32Array.from({ length: n * d }, () => rng.normal());
  const w = Float32Array.from({ length: d * k }, () => rng.normal());
  const y = Int32Array.from({ length: n }, (_, i) => {
    let best = 0, bestV = -Infinity;
    for (let c = 0; c < k; c++) {
      let v = 0;
      for (let j = 0; j < d; j++) v += x[i * d + j]! * w[j * k + c]!;
      if (v > bestV) [best, bestV] = [c, v];
    }
    return best;
  });
  return { x, y };
}

/** Example ids of step `step` for one replica: epochs walk a seeded permutation, global batch = batch x replicas. */
export function batchIds(examples: number, batch: number, replicas: number, replica: number, step: number, seed: number): number[] {
  const global = batch * replicas;
  const perEpoch = Math.floor(examples / global);
  if (perEpoch < 1) throw new Error(`batch ${batch} x ${replicas} replicas needs at least ${global} examples, the task has ${examples}`);
  const epoch = Math.floor(step / perEpoch), k = step % perEpoch;
  const rng = new Rng(seed, 1000 + epoch);
  const perm = Array.from({ length: examples }, (_, i) => i);
  for (let i = examples - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const start = k * global + replica * batch;
  return perm.slice(start, start + batch);
}

/** Contiguous layer ranges, one per stage: from `starts` (first layer of stages 1..S-1) or balanced by parameter count. */
export function partition(layers: readonly Module[], stages: number, starts?: readonly number[]): [number, number][] {
  const L = layers.length;
  if (!Number.isInteger(stages) || stages < 1 || stages > L) throw new Error(`cannot split ${L} layers into ${stages} stages (need 1..${L})`);
  let cuts: number[];
  if (starts) {
    if (starts.length !== stages - 1) throw new Error(`stage boundaries: ${stages} stages need ${stages - 1} boundaries, got ${starts.length}`);
    cuts = [...starts];
    cuts.forEach((c, i) => {
      if (!Number.isInteger(c) || c <= (i ? cuts[i - 1]! : 0) || c >= L) throw new Error(`stage boundaries must increase within (0, ${L}), got ${starts.join(',')}`);
    });
  } else {
    const prefix = [0];
    for (const l of layers) prefix.push(prefix[prefix.length - 1]! + l.parameterCount());
    const total = prefix[L]!;
    cuts = [];
    for (let s = 1, c = 0; s < stages; s++) {
      const target = (total * s) / stages;
      c++; // every stage gets at least one layer
      // Move the cut right while that brings the parameters before it closer to s/stages of the total.
      while (c < L - (stages - s) && Math.abs(prefix[c + 1]! - target) <= Math.abs(prefix[c]! - target)) c++;
      cuts.push(c);
    }
  }
  const bounds = [0, ...cuts, L];
  return Array.from({ length: stages }, (_, s) => [bounds[s]!, bounds[s + 1]!] as [number, number]);
}
