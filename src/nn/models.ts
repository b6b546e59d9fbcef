/** Reference models, each built from a seed so that the same seed gives the same weights. */
import { Tensor } from '../core/tensor.js';
import { add, mean, relu, reshape } from '../ops/index.js';
import { Rng } from '../util/rng.js';
import { TransformerBlock } from './attention.js';
import {
  BatchNorm, Conv2d, Embedding, Flatten, GlobalAvgPool2d, LayerNorm, Linear, MaxPool2d, ReLU, Sequential,
} from './layers.js';
import { Module } from './module.js';

/** Multi-layer perceptron on flattened input: sizes [in, hidden..., out], ReLU between. */
export function mlp(sizes: number[], seed = 0): Sequential {
  const rng = new Rng(seed, 1);
  const layers: Module[] = [Flatten()];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push(new Linear(sizes[i]!, sizes[i + 1]!, { rng }));
    if (i + 2 < sizes.length) layers.push(ReLU());
  }
  return new Sequential(...layers);
}

/** LeNet-5 (padding 2 on the first conv, ReLU, max pooling); 28x28 input by default. */
export function lenet5(classes = 10, seed = 0, inChannels = 1, inputSize = 28): Sequential {
  const rng = new Rng(seed, 2);
  const side = Math.floor((Math.floor(inputSize / 2) - 4) / 2);
  if (side < 1) throw new Error(`lenet5: input size ${inputSize} is too small (needs >= 12)`);
  return new Sequential(
    new Conv2d(inChannels, 6, 5, { padding: 2, rng }), ReLU(), MaxPool2d({ kernel: 2 }),
    new Conv2d(6, 16, 5, { rng }), ReLU(), MaxPool2d({ kernel: 2 }),
    Flatten(),
    new Linear(16 * side * side, 120, { rng }), ReLU(),
    new Linear(120, 84, { rng }), ReLU(),
    new Linear(84, classes, { rng }),
  );
}

/** The small CNN of the TensorFlow.js tutorials: conv32-pool-conv64-pool-fc128-fc10 (3x3 valid convs, ReLU). */
export function smallCnn(classes = 10, seed = 0, inChannels = 1, inputSize = 28): Sequential {
  const rng = new Rng(seed, 6);
  const side = Math.floor((Math.floor((inputSize - 2) / 2) - 2) / 2);
  if (side < 1) throw new Error(`smallCnn: input size ${inputSize} is too small (needs >= 10)`);
  return new Sequential(
    new Conv2d(inChannels, 32, 3, { rng }), ReLU(), MaxPool2d({ kernel: 2 }),
    new Conv2d(32, 64, 3, { rng }), ReLU(), MaxPool2d({ kernel: 2 }),
    Flatten(),
    new Linear(64 * side * side, 128, { rng }), ReLU(),
    new Linear(128, classes, { rng }),
  );
}

/** A small VGG: [conv-bn-relu x2, maxpool] x 3 stages (32, 64, 128 channels), global pool, linear. */
export function vggSmall(classes = 10, seed = 0, inChannels = 3): Sequential {
  const rng = new Rng(seed, 3);
  const layers: Module[] = [];
  let c = inChannels;
  for (const width of [32, 64, 128]) {
    for (let i = 0; i < 2; i++) {
      layers.push(new Conv2d(c, width, 3, { padding: 1, bias: false, rng }), new BatchNorm(width), ReLU());
      c = width;
    }
    layers.push(MaxPool2d({ kernel: 2 }));
  }
  layers.push(GlobalAvgPool2d(), new Linear(c, classes, { rng }));
  return new Sequential(...layers);
}

/** Builds a block's 3x3 body convolutions (binary networks pass quantized ones). */
export type BlockConv = (inC: number, outC: number, stride: number, rng: Rng) => Module;

export interface BlockOptions {
  /** The body's 3x3 convolutions (default: float Conv2d, no bias). */
  conv?: BlockConv;
  /** ReLU inside the body and after the sum (default true; binary blocks feed a sign instead). */
  relu?: boolean;
}

/** CIFAR-style basic residual block; the shortcut is a strided 1x1 conv + BN when shapes change. */
export class BasicBlock extends Module {
  readonly body: Sequential;
  readonly shortcut: Sequential | null;
  /** Whether a ReLU follows the sum. */
  readonly relu: boolean;
  constructor(inC: number, outC: number, stride: number, rng: Rng, o: BlockOptions = {}) {
    super();
    const conv = o.conv ?? ((i: number, out: number, st: number, r: Rng) => new Conv2d(i, out, 3, { stride: st, padding: 1, bias: false, rng: r }));
    this.relu = o.relu ?? true;
    this.body = this.registerModule('body', new Sequential(
      conv(inC, outC, stride, rng), new BatchNorm(outC), ...(this.relu ? [ReLU()] : []),
      conv(outC, outC, 1, rng), new BatchNorm(outC),
    ));
    this.shortcut = stride !== 1 || inC !== outC
      ? this.registerModule('shortcut', new Sequential(new Conv2d(inC, outC, 1, { stride, bias: false, rng }), new BatchNorm(outC)))
      : null;
    this.finalize();
  }
  forward(x: Tensor): Tensor {
    const y = this.body.call(x);
    const s = this.shortcut ? this.shortcut.call(x) : x;
    // Free intermediates as soon as they are consumed, so peak memory is activations in flight only.
    const sum = add(y, s);
    y.dispose();
    if (s !== x) s.dispose();
    if (!this.relu) return sum;
    const out = relu(sum);
    sum.dispose();
    return out;
  }
}

/**
 * ResNet-20 (He et al. 2016, CIFAR variant): 3 stages of 3 blocks, 16/32/64 channels; any channel
 * count and size (global pooling). `block` options give the blocks' convolutions and ReLUs (the
 * binary ResNet-20 of quant/models.ts).
 */
export function resnet20(classes = 10, seed = 0, inChannels = 3, block: BlockOptions = {}): Sequential {
  const rng = new Rng(seed, 4);
  const layers: Module[] = [new Conv2d(inChannels, 16, 3, { padding: 1, bias: false, rng }), new BatchNorm(16), ...(block.relu ?? true ? [ReLU()] : [])];
  let c = 16;
  for (const [width, stride] of [[16, 1], [32, 2], [64, 2]] as const) {
    for (let i = 0; i < 3; i++) {
      layers.push(new BasicBlock(c, width, i === 0 ? stride : 1, rng, block));
      c = width;
    }
  }
  layers.push(GlobalAvgPool2d(), new Linear(c, classes, { rng }));
  return new Sequential(...layers);
}

export interface TransformerOptions {
  dim?: number;
  heads?: number;
  layers?: number;
  /** Sequence length (positions). */
  tokens?: number;
  vocab?: number;
  classes?: number;
  dropout?: number;
  seed?: number;
  /** Float tokens of this many features (e.g. image rows) embedded by a linear layer, instead of ids. */
  inputDim?: number;
}

/**
 * A small transformer. With `classes`, a sequence classifier (mean-pooled tokens -> linear);
 * without, a causal character language model (logits per position over the vocabulary).
 */
export class Transformer extends Module {
  readonly tokenEmbedding: Embedding | Linear;
  readonly positionEmbedding: Embedding;
  readonly blocks: Sequential;
  readonly lnFinal: LayerNorm;
  readonly head: Linear;
  readonly positions: Tensor;
  constructor(readonly opts: Required<Omit<TransformerOptions, 'classes' | 'inputDim'>> & { classes?: number; inputDim?: number }) {
    super();
    const rng = new Rng(opts.seed, 5);
    const causal = opts.classes === undefined;
    this.tokenEmbedding = this.registerModule('tok', opts.inputDim ? new Linear(opts.inputDim, opts.dim, { rng }) : new Embedding(opts.vocab, opts.dim, { rng }));
    this.positionEmbedding = this.registerModule('pos', new Embedding(opts.tokens, opts.dim, { rng }));
    this.blocks = this.registerModule('blocks', new Sequential(...Array.from({ length: opts.layers }, () => new TransformerBlock(opts.dim, opts.heads, causal, opts.dropout, rng))));
    this.lnFinal = this.registerModule('ln', new LayerNorm(opts.dim));
    this.head = this.registerModule('head', new Linear(opts.dim, opts.classes ?? opts.vocab, { rng }));
    this.positions = Tensor.empty([opts.tokens], 'int32', 'parameter');
    this.positions.data().set(Int32Array.from({ length: opts.tokens }, (_, i) => i));
    this.finalize();
  }
  /**
   * ids int32 [B, T] (or float tokens [B, T, inputDim], or [B, C, T, W] images read row by row)
   * -> logits [B, classes] (classifier) or [B*T, vocab] (language model).
   */
  forward(input: Tensor): Tensor {
    const ids = this.opts.inputDim && input.rank !== 3 ? reshape(input, [input.shape[0]!, this.opts.tokens, this.opts.inputDim]) : input;
    const [B, T] = ids.shape as [number, number];
    if (T !== this.opts.tokens) throw new Error(`Transformer: expected ${this.opts.tokens} tokens per sequence, got ${T}`);
    const positions = reshape(this.positions, [1, T]);
    const h = this.lnFinal.call(this.blocks.call(add(this.tokenEmbedding.call(ids), this.positionEmbedding.call(positions))));
    if (this.opts.classes !== undefined) return this.head.call(mean(h, [1]));
    return reshape(this.head.call(h), [B * T, -1]);
  }
}

export function transformer(o: TransformerOptions = {}): Transformer {
  return new Transformer({ dim: o.dim ?? 64, heads: o.heads ?? 4, layers: o.layers ?? 2, tokens: o.tokens ?? 32, vocab: o.vocab ?? 96, classes: o.classes, dropout: o.dropout ?? 0, seed: o.seed ?? 0, inputDim: o.inputDim });
}


export const MODEL_NAMES = ['mlp', 'lenet', 'cnn', 'vgg-small', 'resnet20', 'transformer'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Builds a named model for items of `inputShape` ([C, H, W]) and `classes` classes. */
export function createModel(name: string, inputShape: readonly number[], classes: number, seed = 0): Module {
  const [c, h, w] = inputShape.length === 3 ? (inputShape as [number, number, number]) : [1, 1, inputShape.reduce((a, b) => a * b, 1)];
  const needImage = () => {
    if (inputShape.length !== 3) throw new Error(`model '${name}' needs image input [C, H, W], got [${inputShape.join(', ')}]`);
  };
  switch (name) {
    case 'mlp':
      return mlp([c * h * w, 512, 512, classes], seed);
    case 'lenet':
      needImage();
      return lenet5(classes, seed, c, h);
    case 'cnn':
      needImage();
      return smallCnn(classes, seed, c, h);
    case 'vgg-small':
      needImage();
      if (h < 8 || w < 8) throw new Error(`model 'vgg-small' needs images of at least 8x8 (three 2x2 max-pools), got ${h}x${w}`);
      return vggSmall(classes, seed, c);
    case 'resnet20':
      needImage();
      return resnet20(classes, seed, c);
    case 'transformer':
      return transformer({ tokens: h, inputDim: c * w, classes, seed, dim: 64, heads: 4, layers: 2 });
    default:
      throw new Error(`unknown model '${name}' (available: ${MODEL_NAMES.join(', ')})`);
  }
}
