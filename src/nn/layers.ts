/** Layers: one Module per op family, holding its parameters and options. */
import { Tensor } from '../core/tensor.js';
import {
  add, avgPool2d, batchNorm, conv2d, dropout, embedding, gelu, globalAvgPool2d, hardtanh, layerNorm, leakyRelu, matmul,
  maxPool2d, relu, reshape, sigmoid, tanh, type Conv2dOptions, type Pool2dOptions,
} from '../ops/index.js';
import { Rng } from '../util/rng.js';
import { buffer, init, Module, parameter } from './module.js';

/** Options shared by layers with random initialization. */
export interface InitOptions {
  /** Seed of the initializer (each layer should get its own, e.g. from the model's Rng). */
  rng?: Rng;
  bias?: boolean;
}

/** y = x Wᵀ + b, W: [out, in]. Saves only its input for backward. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: InitOptions = {}) {
    super();
    const rng = o.rng ?? new Rng(0);
    this.weight = this.registerParameter('weight', parameter(init.kaimingUniform(rng, outFeatures * inFeatures, inFeatures), [outFeatures, inFeatures]));
    this.bias = o.bias === false ? null : this.registerParameter('bias', parameter(init.fanInUniform(rng, outFeatures, inFeatures), [outFeatures]));
  }
  forward(x: Tensor): Tensor {
    const y = matmul(x, this.weight, { transB: true });
    if (!this.bias) return y;
    const out = add(y, this.bias);
    y.dispose();
    return out;
  }
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernel: number, readonly options: Conv2dOptions & InitOptions = {}) {
    super();
    const rng = options.rng ?? new Rng(0);
    const groups = options.groups ?? 1;
    const fanIn = (inChannels / groups) * kernel * kernel;
    this.weight = this.registerParameter('weight', parameter(init.kaimingUniform(rng, outChannels * fanIn, fanIn), [outChannels, inChannels / groups, kernel, kernel]));
    this.bias = options.bias === false ? null : this.registerParameter('bias', parameter(init.fanInUniform(rng, outChannels, fanIn), [outChannels]));
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }
}

/** Batch normalization over channels of [N, C, ...] input (BatchNorm1d and 2d in one). */
export class BatchNorm extends Module {
  readonly gamma: Tensor;
  readonly beta: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(readonly channels: number, readonly momentum = 0.1, readonly eps = 1e-5) {
    super();
    this.gamma = this.registerParameter('weight', parameter(new Float32Array(channels).fill(1), [channels]));
    this.beta = this.registerParameter('bias', parameter(new Float32Array(channels), [channels]));
    this.runningMean = this.registerBuffer('running_mean', buffer(new Float32Array(channels), [channels]));
    this.runningVar = this.registerBuffer('running_var', buffer(new Float32Array(channels).fill(1), [channels]));
  }
  forward(x: Tensor): Tensor {
    return batchNorm(x, this.gamma, this.beta, {
      training: this.training, momentum: this.momentum, eps: this.eps, runningMean: this.runningMean, runningVar: this.runningVar,
    });
  }
}

export class LayerNorm extends Module {
  readonly gamma: Tensor;
  readonly beta: Tensor;
  constructor(readonly features: number, readonly eps = 1e-5) {
    super();
    this.gamma = this.registerParameter('weight', parameter(new Float32Array(features).fill(1), [features]));
    this.beta = this.registerParameter('bias', parameter(new Float32Array(features), [features]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.gamma, this.beta, this.eps);
  }
}

/** Inverted dropout; each call draws a fresh mask seed from the layer's own stream. */
export class Dropout extends Module {
  /** The mask stream (its position is saved in training checkpoints, so a resumed run draws the same masks). */
  readonly rng: Rng;
  constructor(readonly p = 0.5, seed = 0) {
    super();
    this.rng = new Rng(seed, 0xd0);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x.alias();
    return dropout(x, this.p, this.rng.nextU32());
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, o: InitOptions = {}) {
    super();
    this.weight = this.registerParameter('weight', parameter(init.normal(o.rng ?? new Rng(0), num * dim, 1), [num, dim]));
  }
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight);
  }
}

/** Wraps a parameter-free function as a module (activations, pooling, reshapes); `attrs` are its options (read by exporters). */
export class Lambda extends Module {
  constructor(readonly label: string, private readonly fn: (x: Tensor) => Tensor, readonly attrs: Readonly<Record<string, unknown>> = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

export const ReLU = () => new Lambda('relu', relu);
export const LeakyReLU = (slope = 0.01) => new Lambda('leaky_relu', (x) => leakyRelu(x, slope), { slope });
export const GELU = () => new Lambda('gelu', gelu);
export const Tanh = () => new Lambda('tanh', tanh);
export const Sigmoid = () => new Lambda('sigmoid', sigmoid);
export const Hardtanh = (min = -1, max = 1) => new Lambda('hardtanh', (x) => hardtanh(x, min, max), { min, max });
export const MaxPool2d = (o: Pool2dOptions) => new Lambda('maxpool2d', (x) => maxPool2d(x, o), { ...o });
export const AvgPool2d = (o: Pool2dOptions) => new Lambda('avgpool2d', (x) => avgPool2d(x, o), { ...o });
export const GlobalAvgPool2d = () => new Lambda('global_avgpool2d', globalAvgPool2d);
/** [N, ...] -> [N, prod(...)]. */
export const Flatten = () => new Lambda('flatten', (x) => reshape(x, [x.shape[0]!, -1]));

/** Runs children in order, disposing each intermediate result as soon as the next is computed. */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
    this.finalize();
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const l of this.layers) {
      const next = l.call(h);
      if (h !== x) h.dispose();
      h = next;
    }
    return h === x ? x.alias() : h;
  }
}
