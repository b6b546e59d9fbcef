/**
 * Conversion of a trained quantized Sequential into a deployable model: 1-bit weights packed 32
 * per word (+ per-channel scale), ternary weights as two bit planes, int8 weights with scales,
 * BatchNorm folded into per-channel multiplier/bias, and BN + sign folded into per-channel
 * integer thresholds when the next layer binarizes its input. `runDeployed` (runtime.ts) executes it
 * with the packed kernels; `encodeDeployed`/`decodeDeployed` (src/io/deployed-format.ts) are the file format.
 *
 * @example
 * const deployed = convert(model);                 // model: trained larqMnistBnn()
 * const bytes = encodeDeployed(deployed);          // ≈13.3 KiB
 * const logits = runDeployed(decodeDeployed(bytes), images, [n, 1, 28, 28]);
 */
import type { FloatArray } from '../core/dtype.js';
import { scope } from '../core/scope.js';
import { noGrad } from '../autograd/mode.js';
import { BatchNorm, Conv2d, Lambda, Linear, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { BasicBlock } from '../nn/models.js';
import { packSignRows, packTernaryRows, packWeightsOHWI } from './kernels.js';
import { encodeFloat, encodeTernary } from './sparse.js';
import { isQuantLayer, MaxPool2dLayer } from './layers.js';
import { nestedCode, roundHalfAway } from './ops.js';
import { layerPlan } from './plan.js';
import { packFactors } from './smartdeal.js';
import { channelGroups, deadChannels } from './prune.js';
import type { DeployedModel, MatStage, Stage } from './runtime.js';

export type { DeployedModel, MatStage, Stage } from './runtime.js';

/** Per-channel scale and shift of a BatchNorm in eval mode: y·g + h (channels `keep` only, when given). */
function bnAffine(bn: BatchNorm, keep: Keep = null): { g: Float64Array; h: Float64Array } {
  const gamma = bn.gamma.values(), beta = bn.beta.values(), mean = bn.runningMean.values(), variance = bn.runningVar.values();
  const g = Float64Array.from(gamma, (v, c) => v / Math.sqrt(variance[c]! + bn.eps));
  const h = Float64Array.from(beta, (v, c) => v - mean[c]! * g[c]!);
  return keep ? { g: Float64Array.from(keep, (c) => g[c]!), h: Float64Array.from(keep, (c) => h[c]!) } : { g, h };
}

/** Indices kept along an axis (null: all). */
type Keep = number[] | null;

/** Rows `keepOut` and columns `keepIn` of a [rows, K] matrix. */
function sliceMatrix(v: ArrayLike<number>, rows: number, K: number, keepOut: Keep, keepIn: Keep): Float32Array {
  const ro = keepOut ?? Array.from({ length: rows }, (_, i) => i), ci = keepIn ?? Array.from({ length: K }, (_, i) => i);
  const out = new Float32Array(ro.length * ci.length);
  ro.forEach((r, i) => ci.forEach((c, j) => (out[i * ci.length + j] = v[r * K + c]!)));
  return out;
}

/** Weight columns of input channels `keep` (conv: k·k taps each, OIHW; dense: one feature each, or `perChannel` features after a flatten). */
function inputColumns(keep: Keep, perChannel: number): Keep {
  return keep && keep.flatMap((c) => Array.from({ length: perChannel }, (_, t) => c * perChannel + t));
}

/**
 * Weights and epilogue of one conv/dense layer (before BatchNorm folding). `keepOut`/`keepIn`:
 * the output channels and input features that survive structured pruning (float and ternary
 * kernels only); ternary and float weights take the sparse encoding when it is smaller.
 */
function convertLayer(layer: Linear | Conv2d, keepOut: Keep = null, keepIn: Keep = null): MatStage {
  const plan = layerPlan(layer)!;
  const fullOut = layer.weight.shape[0]!;
  const fullIn = layer.weight.shape[1]!;
  const isConv = layer instanceof Conv2d;
  let k = 0, stride = 1, pad = 0;
  if (isConv) {
    const o = layer.options;
    const one = (v: number | [number, number] | undefined, d: number, what: string): number => {
      const [a, b] = v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
      if (a !== b) throw new Error(`convert: layer ${layer.path}: non-square ${what} [${a}, ${b}] is not supported`);
      return a;
    };
    if ((o.groups ?? 1) !== 1 || one(o.dilation, 1, 'dilation') !== 1) throw new Error(`convert: layer ${layer.path}: groups/dilation are not supported`);
    if (layer.weight.shape[2] !== layer.weight.shape[3]) throw new Error(`convert: layer ${layer.path}: non-square kernel`);
    k = layer.weight.shape[2]!;
    stride = one(o.stride, 1, 'stride');
    pad = one(o.padding, 0, 'padding');
  }
  if ((keepOut || keepIn) && plan.kernel !== 'float' && plan.kernel !== 'ternary_weights') throw new Error(`convert: layer ${layer.path}: channels can be removed from float and ternary layers only`);
  const cols = inputColumns(keepIn, isConv ? k * k : 1);
  const outC = keepOut?.length ?? fullOut;
  const inC = keepIn?.length ?? fullIn;
  const fullK = isConv ? fullIn * k * k : fullIn;
  const rows = outC, K = isConv ? inC * k * k : inC;
  const pick = (v: ArrayLike<number>) => Float32Array.from(keepOut ? keepOut.map((c) => v[c]!) : v);
  const mul = new Float32Array(outC).fill(1);
  const bias = layer.bias ? pick(layer.bias.values()) : new Float32Array(outC);
  const kq = isQuantLayer(layer) ? layer.kernelQuantizer : null;
  const iq = isQuantLayer(layer) ? layer.inputQuantizer : null;
  let weights: MatStage['weights'];
  let mask: Uint32Array | undefined, negRatio: number | undefined;
  let inputStep = 0;
  const kd = kq?.deployment(), xd = iq?.deployment();
  // The values to pack: the latent weight, or what the quantizer binarizes (IR-Net: balanced weights).
  const w = (kd?.latent ? noGrad(() => scope(() => Float32Array.from(kd.latent!(layer.weight).values()))) : layer.weight.values()) as FloatArray;
  const scale = noGrad(() =>
    scope(() => {
      const s = plan.channelScale ? kd?.channelScale?.(layer.weight) : null;
      return s ? pick(s.values()) : null;
    }),
  );
  if (scale) mul.set(scale);
  // SBNN: the two weight values of code 0 (packed bit 1) and code 1; the epilogue scales their combination.
  const levels = (plan.kernel === 'binary' || plan.kernel === 'binary_weights') && kd?.levels ? kd.levels(layer.weight) : undefined;
  switch (plan.kernel) {
    case 'binary':
      weights = isConv ? packWeightsOHWI(w, outC, inC, k) : packSignRows(w, rows, K);
      break;
    case 'binary_weights':
      weights = packSignRows(w, rows, K);
      break;
    case 'ternary_weights': {
      const delta = kd!.threshold!(layer.weight);
      const codes = sliceMatrix(Array.from(w, (v) => (v >= delta ? 1 : v <= -delta ? -1 : 0)), fullOut, fullK, keepOut, cols);
      ({ weights, mask } = encodeTernary(codes, rows, K));
      if (kd!.negativeRatio) negRatio = kd!.negativeRatio();
      break;
    }
    case 'nested_weights':
      // The same float32 division as the fake-quantized forward, so the codes are the trained ones.
      weights = Int8Array.from(w, (v, i) => nestedCode(Math.fround(v / scale![Math.floor(i / K)]!), 0));
      return { op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights, inputStep, mul, bias, bits: plan.readBits };
    case 'smartdeal': {
      const f = kd!.factors!(layer.weight), { weights: codes, rowMask } = packFactors(f);
      return { op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights: codes, inputStep, mul, bias, rowMask, basis: f.basis, segment: f.segment, rank: f.rank, emax: f.emax };
    }
    case 'int8': {
      const ws = kd!.step!(), xs = xd!.step!();
      weights = Int8Array.from(w, (v) => Math.min(127, Math.max(-128, roundHalfAway(v / ws))));
      inputStep = xs;
      mul.fill(ws * xs);
      break;
    }
    case 'float': {
      // Plain layers keep their weights; unsupported fake quantizers are applied once here.
      const values = kq ? noGrad(() => scope(() => Float32Array.from(kq.forward(layer.weight).values()))) : w;
      ({ weights, mask } = encodeFloat(sliceMatrix(values, fullOut, fullK, keepOut, cols)));
      break;
    }
  }
  return {
    op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights, ...(mask ? { mask } : {}), ...(negRatio !== undefined ? { negRatio } : {}), ...(levels ? { levels } : {}),
    inputStep, mul, bias, ...(plan.kernel === 'float' && iq ? { inputQuantizer: iq.config() } : {}),
  };
}

/** Whether `layers[from...]` reaches a layer that binarizes its input through shape-only/monotone stages. */
function nextBinarizes(layers: readonly Module[], from: number): boolean {
  for (let i = from; i < layers.length; i++) {
    const l = layers[i]!;
    if (maxPoolKernel(l) !== undefined || (l instanceof Lambda && l.label === 'flatten')) continue;
    return (l instanceof Linear || l instanceof Conv2d) && layerPlan(l)!.kernel === 'binary';
  }
  return false;
}

/**
 * The deployable form of a trained Sequential (eval-mode semantics: BatchNorm uses running
 * statistics). Supported layers: QuantConv2d/QuantLinear/Conv2d/Linear, BatchNorm, max-pooling
 * (MaxPool2dLayer or nn's MaxPool2d with stride = window), global average pooling, ReLU and
 * Flatten (nn Lambdas), and ResNet BasicBlocks (a residual stage holding the converted body and
 * shortcut, then a ReLU stage).
 * Channels removed by structured pruning (weights, bias, BatchNorm gamma and beta 0: exactly 0
 * through ReLU, max-pool and flatten) are left out of the deployed layers, with the next layer's
 * matching inputs.
 */
export function convert(model: Module, inputShape: number[]): DeployedModel {
  if (!(model instanceof Sequential)) throw new Error(`convert: expects a Sequential model, got ${model.constructor.name}`);
  // Channels structured pruning removed (prune.ts): exactly 0 through to the next layer, left out.
  const removed = new Map(channelGroups(model).map((g) => [g.layer as Module, deadChannels(g)]));
  return { inputShape: [...inputShape], stages: convertLayers(model.layers, removed) };
}

function convertLayers(layers: Module[], removed: Map<Module, number[]>): Stage[] {
  const stages: Stage[] = [];
  // Channels kept by the last conv/dense (null: all), and its full output channel count.
  let keep: Keep = null, keptOf = 0;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    if (l instanceof Linear || l instanceof Conv2d) {
      const inC = l.weight.shape[1]!;
      // Input features of the surviving channels: a dense layer after a flatten reads inC / keptOf features per channel.
      const keepIn = keep && (l instanceof Conv2d ? keep : inputColumns(keep, inC / keptOf));
      const dead = new Set(removed.get(l) ?? []);
      const keepOut = dead.size ? Array.from({ length: l.weight.shape[0]! }, (_, c) => c).filter((c) => !dead.has(c)) : null;
      const s = convertLayer(l, keepOut, keepIn);
      keep = keepOut;
      keptOf = l.weight.shape[0]!;
      // Fold the BatchNorm that follows, directly or across max-pools when the combined scale is
      // positive everywhere (max commutes with an increasing affine map).
      let j = i + 1;
      while (maxPoolKernel(layers[j]) !== undefined) j++;
      const pools = layers.slice(i + 1, j), bn = layers[j];
      let last = i;
      if (bn instanceof BatchNorm) {
        const { g, h } = bnAffine(bn, keep);
        if (pools.length === 0 || s.mul!.every((m, c) => m * g[c]! > 0)) {
          for (let c = 0; c < s.outC; c++) {
            s.bias![c] = s.bias![c]! * g[c]! + h[c]!;
            s.mul![c] = s.mul![c]! * g[c]!;
          }
          last = j;
        }
      }
      // sign(max(z)) = max(sign(z)): thresholds may precede the pools.
      if (nextBinarizes(layers, last + 1)) toThresholds(s);
      stages.push(s);
      if (last === j) pools.forEach((p) => stages.push(...convertSimple(p, keep)));
      i = last;
      continue;
    }
    if (l instanceof BasicBlock) {
      stages.push({ op: 'residual', body: convertLayers(l.body.layers, removed), shortcut: l.shortcut ? convertLayers(l.shortcut.layers, removed) : [] }, ...(l.relu ? [{ op: 'relu' } as const] : []));
      keep = null;
      continue;
    }
    stages.push(...convertSimple(l, keep));
  }
  return stages;
}

/**
 * The window of a max-pool the runtime runs (square, stride = window, no padding): a
 * MaxPool2dLayer, or nn's MaxPool2d({ kernel: k }) (float models such as LeNet-5); else undefined.
 */
function maxPoolKernel(l: Module | undefined): number | undefined {
  if (l instanceof MaxPool2dLayer) return l.kernel;
  if (!(l instanceof Lambda) || l.label !== 'maxpool2d') return undefined;
  const { kernel, stride, padding } = l.attrs as { kernel?: unknown; stride?: unknown; padding?: unknown };
  const plain = typeof kernel === 'number' && (stride === undefined || stride === kernel) && (padding === undefined || padding === 0);
  return plain ? kernel : undefined;
}

function convertSimple(l: Module, keep: Keep): Stage[] {
  const k = maxPoolKernel(l);
  if (k !== undefined) return [{ op: 'maxpool', k }];
  if (l instanceof BatchNorm) {
    const { g, h } = bnAffine(l, keep);
    return [{ op: 'affine', mul: Float32Array.from(g), bias: Float32Array.from(h) }];
  }
  if (l instanceof Lambda && (l.label === 'relu' || l.label === 'flatten')) return [{ op: l.label }];
  if (l instanceof Lambda && l.label === 'global_avgpool2d') return [{ op: 'gap' }];
  throw new Error(`convert: layer ${l.path} (${l instanceof Lambda ? l.label : l.constructor.name}) is not supported (supported: conv/linear, BatchNorm, MaxPool2dLayer or MaxPool2d with stride = window and no padding, global average pooling, relu, flatten, ResNet BasicBlock)`);
}

/**
 * sign(acc·mul + bias) as a compare on acc. mul > 0: acc ≥ −bias/mul; mul < 0: acc ≤ −bias/mul;
 * mul = 0: constant sign(bias). Integer accumulators (binary, int8) get integer thresholds
 * (ceil / floor), so the compare stays integer-only; an SBNN stage's {α, β} sum is float.
 */
function toThresholds(s: MatStage): void {
  const integer = (s.kernel === 'binary' && !s.levels) || s.kernel === 'int8';
  const threshold = integer ? new Int32Array(s.outC) : new Float32Array(s.outC);
  const direction = new Int8Array(s.outC);
  for (let c = 0; c < s.outC; c++) {
    const m = s.mul![c]!, b = s.bias![c]!;
    if (m === 0) {
      threshold[c] = b >= 0 ? 0 : -1;
      continue;
    }
    const t = -b / m;
    threshold[c] = integer ? (m > 0 ? Math.ceil(t) : Math.floor(t)) : t;
    direction[c] = m > 0 ? 1 : -1;
  }
  delete s.mul;
  delete s.bias;
  s.threshold = threshold;
  s.direction = direction;
}

// ---------------------------------------------------------------------------------------------
// Execution
