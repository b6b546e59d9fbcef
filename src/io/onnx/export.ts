/**
 * ONNX export (opset 13) of float models, and of post-training-quantized models as QDQ graphs:
 * each quantized Conv/Gemm reads its input through QuantizeLinear → DequantizeLinear (int8, zero
 * point 0, per-tensor scale; a Clip first when the code range is narrower than int8, and for
 * AQuant a per-channel shift s·(0.5 − b_c) so that ONNX's round-half-to-even reproduces the border
 * rounding) and its weight as an int8 initializer through a per-channel (axis 0) DequantizeLinear.
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
import { quantizableLayers, type LayerQuant, type PtqResult } from '../../quant/ptq/ptq.js';
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
  init(name: string, dims: number[], data: Float32Array | Int8Array | number[], type: number = DataType.FLOAT): string {
    const t: OnnxTensorProto = { name, dims, data_type: type };
    if (type === DataType.INT64) t.int64_data = Array.from(data);
    else {
      const typed = data instanceof Float32Array || data instanceof Int8Array ? data : type === DataType.INT8 ? Int8Array.from(data) : Float32Array.from(data);
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

function emitQuantInput(b: Builder, x: string, lq: LayerQuant, conv: boolean, expose: boolean): string {
  const a = lq.act, prefix = `${lq.path}.input`;
  let h = x;
  if (a.border) {
    const c = a.border.length;
    const shift = b.init(`${prefix}.border_shift`, conv ? [c, 1, 1] : [c], Float32Array.from(a.border, (v) => a.step * (0.5 - v)));
    h = b.node('Add', [h, shift], {}, `${prefix}.border`);
  }
  if (a.lo !== -128 || a.hi !== 127) h = b.node('Clip', [h, b.init(`${prefix}.min`, [], [a.lo * a.step]), b.init(`${prefix}.max`, [], [a.hi * a.step])], {}, `${prefix}.clip`);
  const scale = b.init(`${prefix}.scale`, [], [a.step]), zp = b.init(`${prefix}.zero_point`, [], new Int8Array(1), DataType.INT8);
  const q = b.node('QuantizeLinear', [h, scale, zp], {}, `${prefix}.q`);
  if (expose) b.extraOutputs.push(q);
  return b.node('DequantizeLinear', [q, scale, zp], {}, `${prefix}.dq`);
}

function emitWeight(b: Builder, layer: Conv2d | Linear, lq: LayerQuant | undefined): string {
  const name = `${layer.path}.weight`;
  if (!lq) return b.init(name, [...layer.weight.shape], Float32Array.from(layer.weight.values()));
  const outC = layer.weight.shape[0]!;
  const q = b.init(`${name}_quantized`, [...layer.weight.shape], lq.codes, DataType.INT8);
  const scale = b.init(`${name}_scale`, [outC], lq.wStep), zp = b.init(`${name}_zero_point`, [outC], new Int8Array(outC), DataType.INT8);
  return b.node('DequantizeLinear', [q, scale, zp], { axis: 0 }, `${name}.dq`);
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
    const input = lq ? emitQuantInput(b, x, lq, m instanceof Conv2d, expose) : x;
    const w = emitWeight(b, m, lq);
    const bias = m.bias ? [b.init(`${m.path}.bias`, [...m.bias.shape], Float32Array.from(m.bias.values()))] : [];
    if (m instanceof Linear) return b.node('Gemm', [input, w, ...bias], { transB: 1 }, m.path || 'gemm');
    const o = m.options, k = m.weight.shape[2]!;
    const [sh, sw] = pair(o.stride, 1), [ph, pw] = pair(o.padding, 0), [dh, dw] = pair(o.dilation, 1);
    return b.node('Conv', [input, w, ...bias], { kernel_shape: [k, m.weight.shape[3]!], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], group: o.groups ?? 1 }, m.path || 'conv');
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
  if (options.ptq) {
    const layers = quantizableLayers(model);
    if (layers.length !== options.ptq.layers.length) throw new Error(`ONNX export: the model has ${layers.length} quantizable layers, the PTQ result ${options.ptq.layers.length}`);
    layers.forEach((l, i) => quant.set(l, options.ptq!.layers[i]!));
  }
  const b = new Builder();
  const out = emit(b, model, ['input'], quant, options.exposeCodes ?? false);
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
