/**
 * Quantized reference models and the presets behind `slimgrad train --quant`. Every model is a
 * Sequential built from a seed (same seed, same latent weights).
 *
 * @example
 * const model = applyQuantPreset('lenet', 'twn', 0);  // ternary-weight LeNet-5
 * const bnn = larqMnistBnn(0);                          // 93k binary weights, ≈13 KiB packed
 */
import { BatchNorm, Conv2d, Flatten, Linear, ReLU, Sequential } from '../nn/layers.js';
import { resnet20 } from '../nn/models.js';
import { Module } from '../nn/module.js';
import { Rng } from '../util/rng.js';
import type { Optimizer } from '../optim/optimizer.js';
import { constrainWeights, nestedQuantizers, setQuantProgress, MaxPool2dLayer, QuantConv2d, QuantLinear, type QuantOptions } from './layers.js';
import { ONCE_QAT_WIDTHS, checkNestedBits, type QuantizerConfig } from './quantizers.js';
import type { Tensor } from '../core/tensor.js';
import { add, crossEntropy, mulScalar } from '../ops/index.js';

const binary: QuantOptions = { inputQuantizer: 'ste_sign', kernelQuantizer: 'ste_sign', kernelConstraint: 'weight_clip' };
const binaryWeightsOnly: QuantOptions = { kernelQuantizer: 'ste_sign', kernelConstraint: 'weight_clip' };
/** IR-Net: Libra-PB weights (balanced, standardized, power-of-two scale) and EDE sign activations. */
const irnet: QuantOptions = { inputQuantizer: 'ede_sign', kernelQuantizer: 'irnet_weight', kernelConstraint: 'weight_clip' };
/** DIR-Net: IMB weights (here Libra-PB: balanced, standardized, power-of-two scale) and DTE sign activations. */
const dirnet: QuantOptions = { inputQuantizer: 'dte_sign', kernelQuantizer: 'irnet_weight', kernelConstraint: 'weight_clip' };
/** FDA-BNN: Fourier-series sign gradients with the noise-adaptation module (weights and activations); weights scaled by mean|W| per filter. */
const fda: QuantOptions = { inputQuantizer: { name: 'fda_sign', noise: true }, kernelQuantizer: { name: 'fda_sign', scaled: true, noise: true }, kernelConstraint: 'weight_clip' };
const xnor: QuantOptions = { inputQuantizer: 'ste_sign', kernelQuantizer: 'magnitude_aware_sign', kernelConstraint: 'weight_clip' };
/** SBNN: sparse binary weights (a fraction `sparsity` at the majority code) and IR-Net's EDE sign activations. */
const sbnn = (sparsity: number): QuantOptions => ({ inputQuantizer: 'ede_sign', kernelQuantizer: { name: 'sbnn_weight', sparsity }, kernelConstraint: 'weight_clip' });
/** Default sparsity of the `sbnn` presets (`sbnn:S` picks another). */
export const SBNN_SPARSITY = 0.9;

/**
 * BinaryNet MLP (Courbariaux et al.): binary weights and activations, BN after every layer; the
 * first layer reads the float input. sizes default to the paper's 784-4096-4096-4096-10.
 */
export function binaryNetMlp(sizes: number[] = [784, 4096, 4096, 4096, 10], seed = 0): Sequential {
  const rng = new Rng(seed, 11);
  const layers: Module[] = [Flatten()];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push(new QuantLinear(sizes[i]!, sizes[i + 1]!, { ...(i === 0 ? binaryWeightsOnly : binary), bias: false, rng }), new BatchNorm(sizes[i + 1]!, 0.1, 1e-4));
  }
  return new Sequential(...layers);
}

/**
 * The Larq MNIST tutorial BNN: binary 3x3 convs 32-64-64 with 2x2 max-pools, binary dense 64 and
 * 10, no biases, BN after each; first layer binary weights on float input. 93,088 binary weights.
 * `q` picks the binarizers (default straight-through sign; the `bnn-irnet`, `bnn-dirnet`,
 * `bnn-fda` and `bnn-sbnn` presets pass theirs); the first layer takes q's weights only.
 */
export function larqMnistBnn(seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28], q: QuantOptions = binary, preset = 'bnn'): Sequential {
  const rng = new Rng(seed, 12);
  const [c, h, w] = imageShape(preset, 'lenet', inputShape, (s) => Math.floor((Math.floor((s - 2) / 2) - 2) / 2) - 2, 18);
  const first: QuantOptions = { kernelQuantizer: q.kernelQuantizer, kernelConstraint: q.kernelConstraint };
  return new Sequential(
    new QuantConv2d(c, 32, 3, { ...first, bias: false, rng }), new MaxPool2dLayer(2), new BatchNorm(32),
    new QuantConv2d(32, 64, 3, { ...q, bias: false, rng }), new MaxPool2dLayer(2), new BatchNorm(64),
    new QuantConv2d(64, 64, 3, { ...q, bias: false, rng }), new BatchNorm(64),
    Flatten(),
    new QuantLinear(64 * h * w, 64, { ...q, bias: false, rng }), new BatchNorm(64),
    new QuantLinear(64, classes, { ...q, bias: false, rng }), new BatchNorm(classes),
  );
}

/**
 * XNOR-Net CNN for 1x28x28 input: float first conv, then blocks BN -> binary activation ->
 * binary conv (alpha = mean|W| per filter, zero padding 1) -> max-pool, float classifier.
 */
export function xnorNet(seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28]): Sequential {
  const rng = new Rng(seed, 13);
  const [c, h, w] = imageShape('xnor', 'lenet', inputShape, (s) => Math.floor(Math.floor(Math.floor(s / 2) / 2) / 2), 8);
  return new Sequential(
    new Conv2d(c, 32, 3, { padding: 1, bias: false, rng }), new MaxPool2dLayer(2),
    new BatchNorm(32), new QuantConv2d(32, 64, 3, { ...xnor, padding: 1, bias: false, rng }), new MaxPool2dLayer(2),
    new BatchNorm(64), new QuantConv2d(64, 128, 3, { ...xnor, padding: 1, bias: false, rng }), new MaxPool2dLayer(2),
    new BatchNorm(128), Flatten(), new Linear(128 * h * w, classes, { rng }),
  );
}

/**
 * LeNet-5 (as nn.lenet5: padding 2 on conv 1, ReLU, 2x2 max-pool) with its convs/linears
 * quantized by `q`; with `floatEnds` the first conv and the classifier stay float (the usual
 * practice for low-bit weights: they hold 1.5 % of the weights but most of the sensitivity).
 */
function quantLenet5(preset: string, q: QuantOptions, seed: number, classes: number, inputShape: readonly number[], floatEnds = false): Sequential {
  const rng = new Rng(seed, 2);
  const ends = floatEnds ? {} : q;
  const [c, h, w] = imageShape(preset, 'lenet', inputShape, (s) => Math.floor((Math.floor(s / 2) - 4) / 2), 12);
  return new Sequential(
    new QuantConv2d(c, 6, 5, { ...ends, padding: 2, rng }), ReLU(), new MaxPool2dLayer(2),
    new QuantConv2d(6, 16, 5, { ...q, rng }), ReLU(), new MaxPool2dLayer(2),
    Flatten(),
    new QuantLinear(16 * h * w, 120, { ...q, rng }), ReLU(),
    new QuantLinear(120, 84, { ...q, rng }), ReLU(),
    new QuantLinear(84, classes, { ...ends, rng }),
  );
}

/**
 * Binary LeNet-5: LeNet-5's shapes with BatchNorm + sign in place of ReLU, the middle conv and the
 * two hidden dense layers 1-bit in weights and activations (`q`), the first conv and the
 * classifier float (as IR-Net keeps its first and last layers). Deploys as binary layers with
 * packed activations between them.
 */
export function binaryLenet5(seed = 0, classes = 10, q: QuantOptions = binary, inputShape: readonly number[] = [1, 28, 28], preset = 'binary'): Sequential {
  const rng = new Rng(seed, 14);
  const [c, h, w] = imageShape(preset, 'lenet', inputShape, (s) => Math.floor((Math.floor(s / 2) - 4) / 2), 12);
  return new Sequential(
    new Conv2d(c, 6, 5, { padding: 2, bias: false, rng }), new BatchNorm(6), new MaxPool2dLayer(2),
    new QuantConv2d(6, 16, 5, { ...q, bias: false, rng }), new MaxPool2dLayer(2), new BatchNorm(16),
    Flatten(),
    new QuantLinear(16 * h * w, 120, { ...q, bias: false, rng }), new BatchNorm(120),
    new QuantLinear(120, 84, { ...q, bias: false, rng }), new BatchNorm(84),
    new Linear(84, classes, { rng }),
  );
}

/**
 * Binary ResNet-20 (as IR-Net trains it on CIFAR): the float stem conv and classifier, every 3x3
 * conv of the blocks 1-bit in weights and activations (`q`), BatchNorm after each, no ReLU (the next
 * conv's sign is the nonlinearity), float residual sums and float 1x1 downsampling shortcuts.
 * Deploys with packed activations inside each block and float sums between blocks.
 */
export function binaryResnet20(seed = 0, classes = 10, q: QuantOptions = binary, inputShape: readonly number[] = [3, 32, 32], preset = 'binary'): Sequential {
  const [c] = imageShape(preset, 'resnet20', inputShape, (s) => Math.ceil(Math.ceil(s / 2) / 2), 8);
  const conv = (inC: number, outC: number, stride: number, rng: Rng) => new QuantConv2d(inC, outC, 3, { ...q, stride, padding: 1, bias: false, rng });
  return resnet20(classes, seed, c, { conv, relu: false });
}

/**
 * Binary-weight LeNet-5 (BWN): weights alpha_c·sign(W), alpha_c = mean|W| per output channel;
 * float activations; first conv and classifier float.
 */
export const bwnLenet5 = (seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28]): Sequential =>
  quantLenet5('bwn', { kernelQuantizer: 'magnitude_aware_sign', kernelConstraint: 'weight_clip' }, seed, classes, inputShape, true);

const twnKernel: QuantizerConfig = { name: 'ste_tern', ternaryWeightNetworks: true, scaled: true };
/** Ternary-weight LeNet-5 (TWN): Δ = 0.7·mean|W|, alpha_c = mean of |W| above Δ per output channel; first conv and classifier float. */
export const twnLenet5 = (seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28]): Sequential =>
  quantLenet5('twn', { kernelQuantizer: twnKernel }, seed, classes, inputShape, true);

/** Kernel quantizers of the ternary presets beyond TWN (each trains on mlp, lenet and resnet20). */
const ternaryKernels = {
  /** TTQ: learned W_p / W_n per layer, Δ = 0.05·max|W|. */
  ttq: { kernelQuantizer: 'ttq' },
  /** Pruning ternary: pruning by magnitude growing to 50 % of each layer by half of training, ±RMS of survivors per filter, then decay of pruned weights. */
  pternary: { kernelQuantizer: { name: 'pruned_tern', sparsity: 0.5, pruneUntil: 0.5 } },
  /** Hyperspherical: filters on spheres, pruning to 50 % over the first half of training, then re-initialised survivors. */
  hq: { kernelQuantizer: { name: 'hq_tern', sparsity: 0.5 } },
} satisfies Record<string, QuantOptions>;
type TernaryPreset = keyof typeof ternaryKernels;

/**
 * A ternary preset's model as `build` makes it; pternary and hq models start at the end of their
 * pruning schedule (the trained state convert, eval and infer see): training sets the schedule
 * from its first step through withConstraints(optimizer, model, totalSteps).
 */
const ternary = (preset: TernaryPreset, build: (q: QuantOptions) => Sequential): Sequential => {
  const model = build(ternaryKernels[preset]);
  setQuantProgress(model, 1);
  return model;
};

/** A ternary LeNet-5 (first conv and classifier float, as TWN). */
const ternaryLenet5 = (preset: TernaryPreset): Builder => (seed, classes, inputShape) => ternary(preset, (q) => quantLenet5(preset, q, seed, classes, inputShape, true));

/**
 * ResNet-20 whose block convolutions (body and shortcut) are quantized by `q`; the stem conv and
 * the classifier stay float. The float twin is nn.resnet20 with the same seed (same latent weights).
 */
export function quantResnet20(q: QuantOptions, seed = 0, classes = 10, inputShape: readonly number[] = [3, 32, 32]): Sequential {
  if (inputShape.length !== 3) throw new Error(`--model resnet20 needs image input [C, H, W]; this data has [${inputShape.join(', ')}]`);
  return resnet20(classes, seed, inputShape[0]!, { conv: (i, o, stride, rng) => new QuantConv2d(i, o, 3, { stride, padding: 1, bias: false, rng, ...q }) });
}

/** LeNet-5 with 8-bit LSQ weights and inputs on every layer (W8A8). */
export const w8a8Lenet5 = (seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28]): Sequential =>
  quantLenet5('w8a8', { kernelQuantizer: { name: 'lsq', bits: 8 }, inputQuantizer: { name: 'lsq', bits: 8 } }, seed, classes, inputShape);

/**
 * Nested-precision LeNet-5: every conv/linear (first and last included) holds 8-bit weights
 * whose top 2..8 bits are each a model (vertical-layered representation); float activations.
 * Train it with onceQatLoss (as `train --quant nested` does) so every width works.
 */
export const nestedLenet5 = (seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28]): Sequential =>
  quantLenet5('nested', { kernelQuantizer: 'nested' }, seed, classes, inputShape);

/**
 * SmartDeal LeNet-5: the middle conv and the two hidden dense layers as basis × power-of-two
 * vector-sparse coefficients (SmartDealWeight, 4-value segments, rank 4, half the segments zero);
 * first conv and classifier float, as in the TWN/BWN presets. The architecture (and parameter
 * names) of nn.lenet5, so a trained float LeNet-5 checkpoint loads into it: decomposition of
 * trained weights is `convert --checkpoint float.safetensors --quant smartdeal`.
 */
export const smartdealLenet5 = (seed = 0, classes = 10, inputShape: readonly number[] = [1, 28, 28]): Sequential =>
  quantLenet5('smartdeal', { kernelQuantizer: 'smartdeal' }, seed, classes, inputShape, true);

/**
 * Once-QAT (Wu et al., TPAMI 2023): the training loss Σ_b λ_b·L(f(x; Q_b(W)))/Σ_b λ_b over the
 * nested widths `widths` (default 8/6/4/3/2, λ_b = 1), with straight-through gradients through
 * every width into the shared latent weights. Pass it as fit's `loss`; the model reads its
 * previous width again afterwards.
 *
 * @example
 * fit(model, train, test, { epochs: 10, batchSize: 64, optimizer, loss: onceQatLoss() });
 */
export function onceQatLoss(widths: readonly number[] = ONCE_QAT_WIDTHS, lambdas: readonly number[] = widths.map(() => 1)): (model: Module, x: Tensor, y: Tensor) => Tensor {
  if (!widths.length || lambdas.length !== widths.length) throw new RangeError(`onceQatLoss: expects one lambda per width, got ${widths.length} widths and ${lambdas.length} lambdas`);
  widths.forEach((b) => checkNestedBits(b, 'onceQatLoss'));
  const total = lambdas.reduce((a, b) => a + b, 0);
  return (model, x, y) => {
    const qs = nestedQuantizers(model);
    if (!qs.length) throw new Error('onceQatLoss: the model has no nested-precision layers');
    const prev = qs.map((q) => q.bits);
    try {
      let loss: Tensor | null = null;
      widths.forEach((b, i) => {
        for (const q of qs) q.bits = b;
        const term = mulScalar(crossEntropy(model.call(x), y), lambdas[i]! / total);
        loss = loss ? add(loss, term) : term;
      });
      return loss!;
    } finally {
      qs.forEach((q, i) => (q.bits = prev[i]!));
    }
  };
}

/**
 * The training loss a quantized model needs beyond cross-entropy: once-QAT for nested models, else undefined.
 *
 * @example
 * fit(model, train, test, { epochs, batchSize: 64, optimizer, loss: quantTrainingLoss(model) });
 */
export const quantTrainingLoss = (model: Module): ((model: Module, x: Tensor, y: Tensor) => Tensor) | undefined =>
  nestedQuantizers(model).length ? onceQatLoss() : undefined;

/**
 * [C, H', W'] for an image preset: H' and W' are the feature map sizes before the classifier
 * (`final`); refuses inputs that are not images of at least `minSide` pixels, naming what fits.
 */
function imageShape(preset: string, model: string, inputShape: readonly number[], final: (side: number) => number, minSide: number): [number, number, number] {
  const [c, h, w] = inputShape as [number, number, number];
  if (inputShape.length !== 3 || Math.min(h, w) < minSide || final(h) < 1 || final(w) < 1) {
    throw new Error(`--quant ${preset} on --model ${model} needs image input [C, H, W] with H, W >= ${minSide} (e.g. MNIST [1, 28, 28], CIFAR-10 [3, 32, 32]); this data has [${inputShape.join(', ')}] (use --model mlp for flat input)`);
  }
  return [c, final(h), final(w)];
}

/** MLP with ReLU whose linear layers are all quantized by `q` (float twin: nn.mlp with the same sizes). */
function quantMlp(q: QuantOptions, sizes: number[], seed: number): Sequential {
  const rng = new Rng(seed, 1);
  const layers: Module[] = [Flatten()];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push(new QuantLinear(sizes[i]!, sizes[i + 1]!, { ...q, rng }));
    if (i + 2 < sizes.length) layers.push(ReLU());
  }
  return new Sequential(...layers);
}

/** Presets of `slimgrad train --quant`. */
export const quantPresets = ['bnn', 'xnor', 'bwn', 'twn', 'w8a8', 'binary', 'irnet', 'fda', 'dirnet', 'nested', 'smartdeal', 'ttq', 'pternary', 'hq', 'sbnn', 'bnn-irnet', 'bnn-dirnet', 'bnn-fda', 'bnn-sbnn'] as const;
export type QuantPreset = (typeof quantPresets)[number];

/** MLP sizes of the bwn/twn/w8a8 presets on 'mlp': the float twin is createModel('mlp') on MNIST. */
export const MLP_SIZES = [784, 512, 512, 10];

/** `sparsity`: the sbnn presets' fraction of weights at the majority code (from `sbnn:S`). */
type Builder = (seed: number, classes: number, inputShape: readonly number[], sparsity: number) => Sequential;

/**
 * A model whose forward pass follows training progress (SBNN's sparsity ramp, FDA's noise
 * adaptation) starts at the end of training (what convert, eval and infer of a trained model see);
 * training sets the schedule from its first step (withConstraints with totalSteps).
 */
const atEnd = (model: Sequential): Sequential => {
  setQuantProgress(model, 1);
  return model;
};
/** MLP_SIZES with the input and class counts of the data. */
const mlpSizes = (inputShape: readonly number[], classes: number, hidden = MLP_SIZES.slice(1, -1)): number[] => [inputShape.reduce((a, b) => a * b, 1), ...hidden, classes];

const builders: Record<string, Partial<Record<QuantPreset, Builder>>> = {
  mlp: {
    bnn: (s, k, shape) => binaryNetMlp(mlpSizes(shape, k, [1024, 1024]), s),
    bwn: (s, k, shape) => quantMlp({ kernelQuantizer: 'magnitude_aware_sign', kernelConstraint: 'weight_clip' }, mlpSizes(shape, k), s),
    twn: (s, k, shape) => quantMlp({ kernelQuantizer: twnKernel }, mlpSizes(shape, k), s),
    w8a8: (s, k, shape) => quantMlp({ kernelQuantizer: { name: 'lsq', bits: 8 }, inputQuantizer: { name: 'lsq', bits: 8 } }, mlpSizes(shape, k), s),
    nested: (s, k, shape) => quantMlp({ kernelQuantizer: 'nested' }, mlpSizes(shape, k), s),
    smartdeal: (s, k, shape) => quantMlp({ kernelQuantizer: 'smartdeal' }, mlpSizes(shape, k), s),
    ttq: (s, k, shape) => ternary('ttq', (q) => quantMlp(q, mlpSizes(shape, k), s)),
    pternary: (s, k, shape) => ternary('pternary', (q) => quantMlp(q, mlpSizes(shape, k), s)),
    hq: (s, k, shape) => ternary('hq', (q) => quantMlp(q, mlpSizes(shape, k), s)),
  },
  lenet: {
    bnn: (s, k, shape) => larqMnistBnn(s, k, shape),
    xnor: xnorNet,
    bwn: bwnLenet5,
    twn: twnLenet5,
    w8a8: w8a8Lenet5,
    binary: (s, k, shape) => binaryLenet5(s, k, binary, shape, 'binary'),
    irnet: (s, k, shape) => binaryLenet5(s, k, irnet, shape, 'irnet'),
    fda: (s, k, shape) => atEnd(binaryLenet5(s, k, fda, shape, 'fda')),
    nested: nestedLenet5,
    smartdeal: smartdealLenet5,
    ttq: ternaryLenet5('ttq'),
    pternary: ternaryLenet5('pternary'),
    hq: ternaryLenet5('hq'),
    dirnet: (s, k, shape) => binaryLenet5(s, k, dirnet, shape, 'dirnet'),
    sbnn: (s, k, shape, sp) => atEnd(binaryLenet5(s, k, sbnn(sp), shape, 'sbnn')),
    'bnn-irnet': (s, k, shape) => larqMnistBnn(s, k, shape, irnet, 'bnn-irnet'),
    'bnn-dirnet': (s, k, shape) => larqMnistBnn(s, k, shape, dirnet, 'bnn-dirnet'),
    'bnn-fda': (s, k, shape) => atEnd(larqMnistBnn(s, k, shape, fda, 'bnn-fda')),
    'bnn-sbnn': (s, k, shape, sp) => atEnd(larqMnistBnn(s, k, shape, sbnn(sp), 'bnn-sbnn')),
  },
  resnet20: {
    ttq: (s, k, shape) => ternary('ttq', (q) => quantResnet20(q, s, k, shape)),
    pternary: (s, k, shape) => ternary('pternary', (q) => quantResnet20(q, s, k, shape)),
    hq: (s, k, shape) => ternary('hq', (q) => quantResnet20(q, s, k, shape)),
    binary: (s, k, shape) => binaryResnet20(s, k, binary, shape, 'binary'),
    irnet: (s, k, shape) => binaryResnet20(s, k, irnet, shape, 'irnet'),
    fda: (s, k, shape) => atEnd(binaryResnet20(s, k, fda, shape, 'fda')),
    dirnet: (s, k, shape) => binaryResnet20(s, k, dirnet, shape, 'dirnet'),
    sbnn: (s, k, shape, sp) => atEnd(binaryResnet20(s, k, sbnn(sp), shape, 'sbnn')),
  },
};

/**
 * A preset name and its sparsity: `sbnn:S` / `bnn-sbnn:S` give S (in [0.5, 1)), other names the
 * default SBNN_SPARSITY (used by the sbnn presets only).
 *
 * @example
 * parseQuantPreset('sbnn:0.5');   // { preset: 'sbnn', sparsity: 0.5 }
 */
export function parseQuantPreset(name: string): { preset: string; sparsity: number } {
  const m = /^(sbnn|bnn-sbnn):(.*)$/.exec(name);
  if (!m) return { preset: name, sparsity: SBNN_SPARSITY };
  const sparsity = Number(m[2]);
  if (m[2] === '' || !(sparsity >= 0.5 && sparsity < 1)) throw new Error(`--quant ${name}: the sparsity after '${m[1]}:' must be a number in [0.5, 1) (the fraction of binary weights at the majority code), got '${m[2]}'`);
  return { preset: m[1]!, sparsity };
}

/**
 * The quantized model for `slimgrad train --model <modelName> --quant <preset>`, built for the
 * data's item shape and class count (default MNIST: [1, 28, 28], 10 classes).
 * 'mlp': bnn = BinaryNet MLP in-1024-1024-classes, bwn/twn/w8a8 = MLP in-512-512-classes quantized.
 * 'lenet' (alias 'lenet5'): bnn = the Larq MNIST BNN, xnor = XNOR-Net CNN, bwn/twn/w8a8 = LeNet-5
 * quantized; these need images [C, H, W] (and refuse others with a message naming the shapes they take).
 * binary/irnet/fda/dirnet = binary LeNet-5 (binaryLenet5) with straight-through sign, IR-Net,
 * FDA-BNN or DIR-Net binarizers (their schedules follow `withConstraints(optimizer, model,
 * totalSteps)`); sbnn (or sbnn:S) = binary LeNet-5 with SBNN sparse binary weights (a fraction S,
 * default 0.9, at the majority code) and EDE activations; bnn-irnet/bnn-dirnet/bnn-fda/bnn-sbnn =
 * the Larq MNIST BNN with those binarizers; on 'resnet20' the binary ResNet-20 (binaryResnet20)
 * with the same binarizers.
 * ttq/pternary/hq (TTQ, pruning ternary, hyperspherical) exist on 'mlp' (every layer), 'lenet'
 * (first conv and classifier float) and 'resnet20' (block convs ternary, stem and classifier float).
 * Train it with `withConstraints(optimizer, model)` (kernel constraints after every step).
 */
export function applyQuantPreset(modelName: string, presetName: string, seed = 0, inputShape: readonly number[] = [1, 28, 28], classes = 10): Sequential {
  const forModel = builders[modelName === 'lenet5' ? 'lenet' : modelName];
  if (!forModel) throw new Error(`--quant: no quantized presets for model '${modelName}' (available for: ${Object.keys(builders).join(', ')})`);
  const { preset, sparsity } = parseQuantPreset(presetName);
  const build = forModel[preset as QuantPreset];
  if (!build) {
    throw new Error(`--quant: unknown preset '${preset}' for model '${modelName}' (available: ${Object.keys(forModel).join(', ')})`);
  }
  return build(seed, classes, inputShape, sparsity);
}

/**
 * The optimizer with the model's kernel constraints (weight clip) applied after every step, so
 * any training loop that calls `optimizer.step()` keeps binary latent weights in range. With
 * `totalSteps`, scheduled quantizers (IR-Net's EDE, FDA's series length) also follow training
 * progress: setQuantProgress(model, step / (totalSteps - 1)) after each step (`stepsDone` when
 * a run resumes).
 *
 * @example
 * const opt = withConstraints(new Adam(model.parameters(), { lr: 1e-3 }), model, epochs * stepsPerEpoch);
 */
export function withConstraints<O extends Optimizer>(optimizer: O, model: Module, totalSteps?: number, stepsDone = 0): O {
  const step = optimizer.step.bind(optimizer);
  let done = stepsDone;
  if (totalSteps) setQuantProgress(model, done / Math.max(1, totalSteps - 1));
  optimizer.step = () => {
    step();
    constrainWeights(model);
    if (totalSteps) setQuantProgress(model, ++done / Math.max(1, totalSteps - 1));
  };
  return optimizer;
}
