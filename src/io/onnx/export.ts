/**
 * ONNX export (opset 13) of float models, and of post-training-quantized models as QDQ graphs that
 * onnxruntime computes bit for bit as slimgrad's deployed int8 model. Each int8 layer reads its input
 * through QuantizeLinear (int8, zero point 0, per-tensor scale = the input step; a Clip first when
 * the code range is narrower than int8, and for AQuant a per-channel shift s·(0.5 − b_c) so that
 * ONNX's round-half-to-even reproduces the border rounding) and DequantizeLinear with scale 1, and
 * its int8 weight initializer through DequantizeLinear with scale 1: the Conv/Gemm then sums exact
 * integers (the int32 accumulators), and the per-channel epilogue y = acc·mul + bias (weight and
 * input steps, BatchNorm folded in) follows as Cast/Mul/Add in float64, rounded once to float32, as
 * in the runtime. A quantized Sequential is exported from its deployed stages (`deployPtq`: the
 * BatchNorm folds, residual adds, pools and global average pool the runtime runs); other graphs
 * layer by layer, BatchNorm then run in float by ONNX.
 *
 * Exports Sequential, GraphModule (imported DAGs), BasicBlock (ResNet) and the layers Conv2d,
 * Linear, BatchNorm, max/avg/global pools, ReLU/LeakyReLU/Sigmoid/Tanh/Hardtanh, Flatten,
 * Reshape, Softmax, Add/Concat; anything else is an error naming the module.
 *
 * @example
 * writeFileSync('lenet.onnx', exportOnnx(model, [1, 28, 28]));
 * writeFileSync('lenet.qdq.onnx', exportOnnx(model, [1, 28, 28], { ptq: result }));
 */
import { BatchNorm, Conv2d, Lambda, Linear, Sequential } from '../../nn/layers.js';
import { BasicBlock } from '../../nn/models.js';
import type { Module } from '../../nn/module.js';
import { MaxPool2dLayer } from '../../quant/layers.js';
import { deployPtq, quantizableLayers, type LayerQuant, type PtqResult } from '../../quant/ptq/ptq.js';
import { bordersPerChannel, type ActivationGrid } from '../../quant/ptq/activation.js';
import { convOut } from '../../quant/kernels.js';
import type { Stage } from '../../quant/runtime.js';
import { AttrType, DataType, encodeModel, type OnnxAttribute, type OnnxNode, type OnnxTensorProto } from './schema.js';
import { GraphModule, Merge } from './graph.js';

export interface ExportOptions {
  /** Export as a QDQ graph with this PTQ result (from `ptq` on the same model). */
  ptq?: PtqResult;
  /** Also output each quantized layer's int8 input codes as `<layer path>.input_q` (for validation). */
  exposeCodes?: boolean;
}

type Attr = number | number[] | string;

class Builder {
  readonly nodes: OnnxNode[] = [];
  readonly inits: OnnxTensorProto[] = [];
  readonly extraOutputs: string[] = [];
  private count = 0;
  fresh(hint: string): string {
    return `${hint}_${this.count++}`;
  }
  init(name: string, dims: number[], data: Float32Array | Float64Array | Int8Array | number[], type: number = DataType.FLOAT): string {
    const t: OnnxTensorProto = { name, dims, data_type: type };
    if (type === DataType.INT64) t.int64_data = Array.from(data);
    else {
      const typed = !Array.isArray(data) ? data : type === DataType.INT8 ? Int8Array.from(data) : Float32Array.from(data);
      t.raw_data = new Uint8Array(typed.buffer.slice(typed.byteOffset, typed.byteOffset + typed.byteLength));
    }
    this.inits.push(t);
    return name;
  }
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, name = op, out = this.fresh(name)): string {
    const attribute: OnnxAttribute[] = Object.entries(attrs).map(([k, v]) =>
      typeof v === 'string' ? { name: k, type: AttrType.STRING, s: new TextEncoder().encode(v) }
        : Array.isArray(v) ? { name: k, type: AttrType.INTS, ints: v }
          : Number.isInteger(v) && k !== 'epsilon' && k !== 'momentum' && k !== 'alpha' ? { name: k, type: AttrType.INT, i: v } : { name: k, type: AttrType.FLOAT, f: v });
    this.nodes.push({ op_type: op, name: out, input: inputs, output: [out], attribute });
    return out;
  }
}

const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

/** An int8 layer as the deployed runtime computes it (runtime.ts int8Conv): input codes, int32 accumulators, y = acc·mul[c] + bias[c]. */
interface IntLayer {
  path: string;
  /** Weight codes in weight layout ([O, I, k, k] or [O, I]). */
  codes: Int8Array;
  wShape: readonly number[];
  act: ActivationGrid;
  mul: ArrayLike<number>;
  bias: ArrayLike<number>;
  conv?: { stride: number; pad: number };
}

/**
 * The input codes of an int8 layer, rounded exactly as the runtime rounds (quantizeActivation):
 * v = x / step in float64; q = sign(v)·(⌊|v|⌋ + [frac(|v|) ≥ ½]) (half away from zero), or with
 * AQuant borders q = ⌊v⌋ + [frac(v) ≥ b] (b per channel, or looked up per channel and level ⌊v⌋ with
 * Gather); clamped to [lo, hi]. The integer q then goes through
 * QuantizeLinear (scale 1, int8; exact) and DequantizeLinear (scale 1): the codes as floats.
 * (QuantizeLinear on x with scale = step would divide in float32 and round half to even, which
 * differs from the runtime at ties and near-ties, and a 1-LSB flip grows over a deep network.)
 */
function emitQuantInput(b: Builder, x: string, path: string, a: ActivationGrid, channels: number, conv: boolean, expose: boolean): string {
  const prefix = `${path}.input`, d = (name: string, dims: number[], v: ArrayLike<number>) => b.init(`${prefix}.${name}`, dims, Float64Array.from(v), DataType.DOUBLE);
  const v = b.node('Div', [b.node('Cast', [x], { to: DataType.DOUBLE }, `${prefix}.x64`), d('step', [], [a.step])], {}, `${prefix}.scaled`);
  let q: string;
  if (a.border) {
    const levels = bordersPerChannel(a.border, channels, a.lo, a.hi, `export ${path}`), f = b.node('Floor', [v], {}, `${prefix}.floor`), dims = conv ? [channels, 1, 1] : [channels];
    let border: string;
    if (levels === 1) border = d('border', dims, a.border);
    else {
      // Border table lookup: index c·levels + clamp(f, lo, hi − 1) − lo.
      const level = b.node('Clip', [f, d('level_min', [], [a.lo]), d('level_max', [], [a.hi - 1])], {}, `${prefix}.level`);
      const at = b.node('Add', [level, d('row', dims, Array.from({ length: channels }, (_, c) => c * levels - a.lo))], {}, `${prefix}.border_at`);
      border = b.node('Gather', [d('border', [a.border.length], a.border), b.node('Cast', [at], { to: DataType.INT64 }, `${prefix}.border_index`)], { axis: 0 }, `${prefix}.border`);
    }
    const up = b.node('GreaterOrEqual', [b.node('Sub', [v, f], {}, `${prefix}.frac`), border], {}, `${prefix}.up`);
    q = b.node('Add', [f, b.node('Cast', [up], { to: DataType.DOUBLE })], {}, `${prefix}.round`);
  } else {
    const m = b.node('Abs', [v], {}, `${prefix}.abs`), f = b.node('Floor', [m], {}, `${prefix}.floor`);
    const up = b.node('GreaterOrEqual', [b.node('Sub', [m, f], {}, `${prefix}.frac`), d('half', [], [0.5])], {}, `${prefix}.up`);
    const r = b.node('Add', [f, b.node('Cast', [up], { to: DataType.DOUBLE })], {}, `${prefix}.round`);
    q = b.node('Mul', [r, b.node('Sign', [v], {}, `${prefix}.sign`)], {}, `${prefix}.signed`);
  }
  q = b.node('Cast', [b.node('Clip', [q, d('min', [], [a.lo]), d('max', [], [a.hi])], {}, `${prefix}.clip`)], { to: DataType.FLOAT });
  const unit = b.init(`${prefix}.unit_scale`, [], [1]), zp = b.init(`${prefix}.zero_point`, [], new Int8Array(1), DataType.INT8);
  const codes = b.node('QuantizeLinear', [q, unit, zp], {}, `${prefix}.q`);
  if (expose) b.extraOutputs.push(codes);
  return b.node('DequantizeLinear', [codes, unit, zp], {}, `${prefix}.dq`);
}

/** Float32 values y·mul[c] + bias[c] computed in float64 and rounded once (the runtime's epilogue), per channel of axis 1. */
function emitAffine64(b: Builder, x: string, path: string, mul: ArrayLike<number>, bias: ArrayLike<number>, image: boolean): string {
  const dims = image ? [mul.length, 1, 1] : [mul.length];
  const h = b.node('Cast', [x], { to: DataType.DOUBLE }, `${path}.acc64`);
  const m = b.node('Mul', [h, b.init(`${path}.mul`, dims, Float64Array.from(mul), DataType.DOUBLE)], {}, `${path}.scale`);
  const y = b.node('Add', [m, b.init(`${path}.shift`, dims, Float64Array.from(bias), DataType.DOUBLE)], {}, `${path}.bias`);
  return b.node('Cast', [y], { to: DataType.FLOAT }, `${path}.out`);
}

/**
 * An int8 layer in QDQ form that onnxruntime computes bit for bit as the deployed runtime: the Conv
 * (or Gemm) runs on the codes of its input and its int8 weights (DequantizeLinear with scale 1), so
 * its float32 sums are the exact int32 accumulators (every partial sum of integers below 2^24 is
 * exact: |Σ w·q| ≤ 2^24 holds for a row of up to 1,032 int8 weights at full range), and the
 * epilogue (weight and input steps, folded BatchNorm, bias) follows in float64 as in the runtime.
 */
function emitIntLayer(b: Builder, x: string, l: IntLayer, expose: boolean): string {
  const input = emitQuantInput(b, x, l.path, l.act, l.wShape[1]!, !!l.conv, expose);
  const name = `${l.path}.weight`;
  const q = b.init(`${name}_quantized`, [...l.wShape], l.codes, DataType.INT8);
  const w = b.node('DequantizeLinear', [q, b.init(`${name}_scale`, [], [1]), b.init(`${name}_zero_point`, [], new Int8Array(1), DataType.INT8)], {}, `${name}.dq`);
  let acc: string;
  if (!l.conv) acc = b.node('Gemm', [input, w], { transB: 1 }, `${l.path}.gemm`);
  else {
    const { stride, pad } = l.conv, k = l.wShape[2]!;
    acc = b.node('Conv', [input, w], { kernel_shape: [k, l.wShape[3]!], strides: [stride, stride], pads: [pad, pad, pad, pad] }, `${l.path}.conv`);
  }
  return emitAffine64(b, acc, l.path, l.mul, l.bias, !!l.conv);
}

/** The int8 layer of a quantized Conv2d/Linear (module walk: no BatchNorm folded; ONNX runs it after). */
function intLayerOf(m: Conv2d | Linear, lq: LayerQuant): IntLayer {
  const outC = m.weight.shape[0]!;
  const mul = Float32Array.from(lq.wStep, (s) => s * lq.act.step);
  const bias = m.bias ? Float32Array.from(m.bias.values()) : new Float32Array(outC);
  if (m instanceof Linear) return { path: m.path || 'gemm', codes: lq.codes, wShape: m.weight.shape, act: lq.act, mul, bias };
  const o = m.options, [sh, sw] = pair(o.stride, 1), [ph, pw] = pair(o.padding, 0), [dh, dw] = pair(o.dilation, 1);
  if (sh !== sw || ph !== pw || dh !== 1 || dw !== 1 || (o.groups ?? 1) !== 1) throw new Error(`ONNX export: quantized layer '${m.path}': only square stride/padding without dilation or groups is supported`);
  return { path: m.path || 'conv', codes: lq.codes, wShape: m.weight.shape, act: lq.act, mul, bias, conv: { stride: sh, pad: ph } };
}

/** An ONNX value and its shape without the batch axis. */
interface Value {
  name: string;
  shape: number[];
}

/**
 * The stages of a deployed PTQ model (int8 conv/dense, residual, pools, ReLU, flatten, global
 * average pool, affine) as ONNX, each computing what the runtime computes; `paths` names the int8
 * stages in execution order.
 */
function emitStages(b: Builder, stages: readonly Stage[], x: Value, paths: string[], expose: boolean): Value {
  let { name: h, shape } = x;
  for (const s of stages) {
    switch (s.op) {
      case 'conv':
      case 'dense': {
        if (s.kernel !== 'int8' || !s.mul || !s.bias) throw new Error(`ONNX export: deployed ${s.op} stage with kernel '${s.kernel}'${s.mul ? '' : ' and thresholds'} is not supported (QDQ export covers int8 stages)`);
        const [lo, hi] = s.inputRange ?? [-128, 127], path = paths.shift()!;
        const conv = s.op === 'conv' ? { stride: s.stride, pad: s.pad } : undefined;
        const wShape = conv ? [s.outC, s.inC, s.k, s.k] : [s.outC, s.inC];
        h = emitIntLayer(b, h, { path, codes: s.weights as Int8Array, wShape, act: { step: s.inputStep, lo, hi, border: s.inputBorder }, mul: s.mul, bias: s.bias, ...(conv ? { conv } : {}) }, expose);
        shape = conv ? [s.outC, ...convOut({ n: 1, c: s.inC, h: shape[1]!, w: shape[2]!, o: s.outC, k: s.k, stride: s.stride, pad: s.pad })] : [s.outC];
        break;
      }
      case 'residual': {
        const body = emitStages(b, s.body, { name: h, shape }, paths, expose);
        const short = s.shortcut.length ? emitStages(b, s.shortcut, { name: h, shape }, paths, expose).name : h;
        h = b.node('Add', [body.name, short], {}, 'residual');
        shape = body.shape;
        break;
      }
      case 'maxpool':
        h = b.node('MaxPool', [h], { kernel_shape: [s.k, s.k], strides: [s.k, s.k] });
        shape = [shape[0]!, Math.floor(shape[1]! / s.k), Math.floor(shape[2]! / s.k)];
        break;
      case 'relu':
        h = b.node('Relu', [h]);
        break;
      case 'flatten':
        h = b.node('Flatten', [h], { axis: 1 });
        shape = [shape.reduce((p, d) => p * d, 1)];
        break;
      case 'gap': {
        // The runtime sums each plane in float64 and divides once; the same here.
        const sum = b.node('ReduceSum', [b.node('Cast', [h], { to: DataType.DOUBLE }), b.init(b.fresh('gap_axes'), [2], [2, 3], DataType.INT64)], { keepdims: 0 }, 'gap_sum');
        const mean = b.node('Div', [sum, b.init(b.fresh('gap_count'), [], Float64Array.of(shape[1]! * shape[2]!), DataType.DOUBLE)], {}, 'gap_mean');
        h = b.node('Cast', [mean], { to: DataType.FLOAT });
        shape = [shape[0]!];
        break;
      }
      case 'affine':
        h = emitAffine64(b, h, b.fresh('affine'), s.mul, s.bias, shape.length === 3);
        break;
    }
  }
  return { name: h, shape };
}

function emitLambda(b: Builder, l: Lambda, x: string): string {
  const at = l.attrs as Record<string, unknown>;
  const pool = (op: string) => {
    const [k] = pair(at.kernel as number, 1), [s] = pair(at.stride as number | undefined, k), [p] = pair(at.padding as number | undefined, 0);
    return b.node(op, [x], { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p], ...(op === 'AveragePool' ? { count_include_pad: 1 } : {}) });
  };
  switch (l.label) {
    case 'relu':
      return b.node('Relu', [x]);
    case 'leaky_relu':
      return b.node('LeakyRelu', [x], { alpha: at.slope as number });
    case 'sigmoid':
      return b.node('Sigmoid', [x]);
    case 'tanh':
      return b.node('Tanh', [x]);
    case 'hardtanh':
      return b.node('Clip', [x, b.init(b.fresh('clip_min'), [], [at.min as number]), b.init(b.fresh('clip_max'), [], [at.max as number])]);
    case 'flatten':
      return b.node('Flatten', [x], { axis: 1 });
    case 'identity':
      return b.node('Identity', [x]);
    case 'maxpool2d':
      return pool('MaxPool');
    case 'avgpool2d':
      return pool('AveragePool');
    case 'global_avgpool2d': {
      const g = b.node('GlobalAveragePool', [x]);
      return at.keepDims ? g : b.node('Flatten', [g], { axis: 1 });
    }
    case 'softmax':
      return b.node('Softmax', [x], { axis: at.axis as number });
    case 'reshape': {
      const shape = (at.shape as number[]).map((d, i) => (i === 0 ? 0 : d));
      return b.node('Reshape', [x, b.init(b.fresh('shape'), [shape.length], shape, DataType.INT64)]);
    }
    default:
      throw new Error(`ONNX export: module '${l.path}' (${l.label}) is not supported`);
  }
}

function emit(b: Builder, m: Module, xs: string[], quant: Map<Module, LayerQuant>, expose: boolean): string {
  const x = xs[0]!;
  if (m instanceof GraphModule) {
    const values = new Map<string, string>([[m.input, x]]);
    for (const n of m.nodes) values.set(n.output, emit(b, n.module, n.inputs.map((i) => values.get(i)!), quant, expose));
    return values.get(m.output)!;
  }
  if (m instanceof Sequential) return m.layers.reduce((h, l) => emit(b, l, [h], quant, expose), x);
  if (m instanceof BasicBlock) {
    const y = emit(b, m.body, [x], quant, expose), s = m.shortcut ? emit(b, m.shortcut, [x], quant, expose) : x;
    const sum = b.node('Add', [y, s]);
    return m.relu ? b.node('Relu', [sum]) : sum;
  }
  if (m instanceof Conv2d || m instanceof Linear) {
    const lq = quant.get(m);
    if (lq) return emitIntLayer(b, x, intLayerOf(m, lq), expose);
    const w = b.init(`${m.path}.weight`, [...m.weight.shape], Float32Array.from(m.weight.values()));
    const bias = m.bias ? [b.init(`${m.path}.bias`, [...m.bias.shape], Float32Array.from(m.bias.values()))] : [];
    if (m instanceof Linear) return b.node('Gemm', [x, w, ...bias], { transB: 1 }, m.path || 'gemm');
    const o = m.options, k = m.weight.shape[2]!;
    const [sh, sw] = pair(o.stride, 1), [ph, pw] = pair(o.padding, 0), [dh, dw] = pair(o.dilation, 1);
    return b.node('Conv', [x, w, ...bias], { kernel_shape: [k, m.weight.shape[3]!], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], group: o.groups ?? 1 }, m.path || 'conv');
  }
  if (m instanceof BatchNorm) {
    const p = m.path;
    const t = (name: string, v: { values(): ArrayLike<number> }) => b.init(`${p}.${name}`, [m.channels], Float32Array.from(v.values()));
    return b.node('BatchNormalization', [x, t('weight', m.gamma), t('bias', m.beta), t('running_mean', m.runningMean), t('running_var', m.runningVar)], { epsilon: m.eps, momentum: 1 - m.momentum }, p || 'bn');
  }
  if (m instanceof MaxPool2dLayer) return b.node('MaxPool', [x], { kernel_shape: [m.kernel, m.kernel], strides: [m.kernel, m.kernel] });
  if (m instanceof Merge) {
    if (m.kind === 'concat') return b.node('Concat', xs, { axis: m.axis });
    const c = m.constant ? [b.init(b.fresh('addend'), [...m.constant.shape], Float32Array.from(m.constant.values()))] : [];
    return b.node('Add', [...xs, ...c]);
  }
  if (m instanceof Lambda) return emitLambda(b, m, x);
  throw new Error(`ONNX export: module '${m.path}' (${m.constructor.name}) is not supported`);
}

/** ONNX bytes of `model` for inputs of shape [N, ...inputShape] (input 'input', output 'output'). */
export function exportOnnx(model: Module, inputShape: number[], options: ExportOptions = {}): Uint8Array {
  const quant = new Map<Module, LayerQuant>();
  const b = new Builder(), expose = options.exposeCodes ?? false;
  let out: string;
  if (options.ptq) {
    const layers = quantizableLayers(model);
    if (layers.length !== options.ptq.layers.length) throw new Error(`ONNX export: the model has ${layers.length} quantizable layers, the PTQ result ${options.ptq.layers.length}`);
    layers.forEach((l, i) => quant.set(l, options.ptq!.layers[i]!));
  }
  if (options.ptq && model instanceof Sequential) {
    // What the deployed runtime runs: BatchNorm folded into the int8 epilogues, residual stages.
    const deployed = deployPtq(model, options.ptq, inputShape);
    out = emitStages(b, deployed.stages, { name: 'input', shape: inputShape }, options.ptq.layers.map((l) => l.path || 'layer'), expose).name;
  } else out = emit(b, model, ['input'], quant, expose);
  const valueInfo = (name: string, dims?: (number | string)[], type: number = DataType.FLOAT) => ({
    name, type: { tensor_type: { elem_type: type, ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } } : {}) } },
  });
  const output = b.node('Identity', [out], {}, 'output', 'output');
  return encodeModel({
    ir_version: 7,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'slimgrad',
    graph: {
      name: 'slimgrad',
      node: b.nodes,
      initializer: b.inits,
      input: [valueInfo('input', ['N', ...inputShape])],
      output: [valueInfo(output), ...b.extraOutputs.map((n) => valueInfo(n, undefined, DataType.INT8))],
    },
  });
}
