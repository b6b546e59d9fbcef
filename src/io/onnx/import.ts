/**
 * ONNX import: a float CNN/MLP graph becomes slimgrad modules that can be evaluated, fine-tuned,
 * compressed and quantized. A chain becomes a `Sequential` of the standard layers (so
 * `quant.convert` can deploy it); a DAG (ResNet-style Add/Concat) becomes a `GraphModule`.
 *
 * Supported ops: Conv, Gemm, MatMul (constant weight), Add, Relu, LeakyRelu, Sigmoid, Tanh, Clip,
 * MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, Flatten, Reshape (constant shape),
 * Softmax, Concat, Identity, Dropout, Constant. Anything else is an error listing every
 * unsupported op with its node name.
 *
 * @example
 * const { model, inputShape } = importOnnx(readFileSync('model.onnx'), 'model.onnx');
 * const logits = model.eval().call(fromValues(pixels, [1, ...inputShape]));
 */
import { fromValues, Tensor } from '../../core/tensor.js';
import { keep } from '../../core/scope.js';
import { mean, reshape, sigmoid, softmax, tanh } from '../../ops/index.js';
import {
  AvgPool2d, BatchNorm, Conv2d, Flatten, Hardtanh, Lambda, LeakyReLU, Linear, MaxPool2d, ReLU, Sequential,
} from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import { MaxPool2dLayer } from '../../quant/layers.js';
import { AttrType, DataType, decodeModel, type OnnxAttribute, type OnnxNode, type OnnxTensorProto } from './schema.js';
import { GraphModule, Merge, type GraphNode } from './graph.js';

export interface ImportedModel {
  model: Module;
  /** Input shape without the batch axis (from the graph input's declared shape). */
  inputShape: number[];
  inputName: string;
  outputName: string;
}

/** Largest tensor accepted from a file (elements), so a hostile header cannot make us allocate GBs. */
const MAX_ELEMENTS = 1 << 28;

/** Values of a TensorProto as numbers (float32 for floats, exact integers otherwise). */
export function tensorValues(t: OnnxTensorProto, source: string): { dims: number[]; data: Float32Array | number[] } {
  const dims = (t.dims ?? []).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const what = `${source}: tensor '${t.name ?? ''}'`;
  if (!dims.every((d) => Number.isInteger(d) && d >= 0) || count > MAX_ELEMENTS) throw new Error(`${what} has invalid dims [${dims}]`);
  if (t.data_location === 1) throw new Error(`${what} uses external data, which is not supported (save the model with its weights inside)`);
  const raw = t.raw_data && t.raw_data.length ? t.raw_data : null;
  const type = t.data_type ?? 0;
  const bytesPer: Record<number, number> = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.INT32]: 4, [DataType.INT8]: 1, [DataType.UINT8]: 1 };
  if (!(type in bytesPer)) throw new Error(`${what} has unsupported data type ${type}`);
  if (raw) {
    if (raw.length !== count * bytesPer[type]!) throw new Error(`${what} has ${raw.length} bytes of data for dims [${dims}]`);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    switch (type) {
      case DataType.FLOAT:
        return { dims, data: Float32Array.from({ length: count }, (_, i) => dv.getFloat32(i * 4, true)) };
      case DataType.DOUBLE:
        return { dims, data: Float32Array.from({ length: count }, (_, i) => dv.getFloat64(i * 8, true)) };
      case DataType.INT64:
        return { dims, data: Array.from({ length: count }, (_, i) => Number(dv.getBigInt64(i * 8, true))) };
      case DataType.INT32:
        return { dims, data: Array.from({ length: count }, (_, i) => dv.getInt32(i * 4, true)) };
      case DataType.INT8:
        return { dims, data: Array.from({ length: count }, (_, i) => dv.getInt8(i)) };
      default:
        return { dims, data: Array.from(raw) };
    }
  }
  const list = type === DataType.FLOAT ? t.float_data : type === DataType.DOUBLE ? t.double_data : type === DataType.INT64 ? t.int64_data : t.int32_data;
  const values = list ?? [];
  if (values.length !== count) throw new Error(`${what} has ${values.length} values for dims [${dims}]`);
  return { dims, data: type === DataType.FLOAT || type === DataType.DOUBLE ? Float32Array.from(values) : values.map(Number) };
}

class Attributes {
  private readonly map: Map<string, OnnxAttribute>;
  constructor(private readonly node: OnnxNode, private readonly where: string) {
    this.map = new Map((node.attribute ?? []).map((a) => [a.name, a]));
  }
  int(name: string, d: number): number {
    const a = this.map.get(name);
    return a ? Number(a.i ?? 0) : d;
  }
  float(name: string, d: number): number {
    const a = this.map.get(name);
    return a ? (a.f ?? 0) : d;
  }
  ints(name: string, d: number[]): number[] {
    const a = this.map.get(name);
    return a && a.type === AttrType.INTS ? (a.ints ?? []).map(Number) : d;
  }
  string(name: string, d: string): string {
    const a = this.map.get(name);
    return a?.s ? new TextDecoder().decode(a.s) : d;
  }
  tensor(name: string): OnnxTensorProto | undefined {
    return this.map.get(name)?.t;
  }
  fail(why: string): never {
    throw new Error(`${this.where}: ${why}`);
  }
}

const SUPPORTED = new Set([
  'Conv', 'Gemm', 'MatMul', 'Add', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Clip', 'MaxPool', 'AveragePool', 'GlobalAveragePool',
  'BatchNormalization', 'Flatten', 'Reshape', 'Softmax', 'Concat', 'Identity', 'Dropout', 'Constant',
]);

/** One side of square 2-D window attributes; asymmetric or non-square values are errors. */
function square(a: Attributes, name: string, values: number[], d: number): number {
  if (values.length === 0) return d;
  if (!values.every((v) => v === values[0])) a.fail(`${name} [${values}] is not supported (only equal values on both axes/sides)`);
  return values[0]!;
}

const copyInto = (t: Tensor, values: ArrayLike<number>): void => {
  t.data().set(values);
  t.bumpVersion();
};

/** Parses ONNX bytes into slimgrad modules; `source` names the file in errors. */
export function importOnnx(bytes: Uint8Array, source = 'ONNX model'): ImportedModel {
  const proto = decodeModel(bytes, source);
  const graph = proto.graph;
  if (!graph) throw new Error(`${source}: the ONNX model has no graph`);
  const nodes = graph.node ?? [];
  const unsupported = nodes.filter((n) => !SUPPORTED.has(n.op_type) || (n.domain && n.domain !== 'ai.onnx'));
  if (unsupported.length) {
    throw new Error(`${source}: unsupported ONNX ops: ${unsupported.map((n) => `${n.domain ? `${n.domain}.` : ''}${n.op_type} (node '${n.name ?? ''}')`).join(', ')}`);
  }
  const constants = new Map<string, { dims: number[]; data: Float32Array | number[] }>();
  for (const t of graph.initializer ?? []) constants.set(t.name ?? '', tensorValues(t, source));
  const inputs = (graph.input ?? []).filter((i) => !constants.has(i.name));
  if (inputs.length !== 1) throw new Error(`${source}: expected one graph input (besides initializers), got ${inputs.length}`);
  if ((graph.output ?? []).length !== 1) throw new Error(`${source}: expected one graph output, got ${(graph.output ?? []).length}`);
  const input = inputs[0]!;
  const dims = input.type?.tensor_type?.shape?.dim ?? [];
  const inputShape = dims.slice(1).map((d, i) => {
    const v = Number(d.dim_value ?? 0);
    if (!(v > 0)) throw new Error(`${source}: input '${input.name}' axis ${i + 1} has no fixed size (${d.dim_param ?? '?'}); only the batch axis may be symbolic`);
    return v;
  });

  const built: GraphNode[] = [];
  for (const [index, n] of nodes.entries()) {
    const where = `${source}: node '${n.name || `#${index}`}' (${n.op_type})`;
    const a = new Attributes(n, where);
    const ins = n.input ?? [];
    const konst = (i: number) => (ins[i] ? constants.get(ins[i]!) : undefined);
    const need = (i: number, what: string) => konst(i) ?? a.fail(`${what} (input ${i}, '${ins[i] ?? ''}') must be a constant initializer`);
    const activations = ins.filter((name) => name && !constants.has(name));
    const out = (n.output ?? [])[0] ?? a.fail('has no output');
    let module: Module;
    switch (n.op_type) {
      case 'Constant': {
        const t = a.tensor('value') ?? a.fail('only the tensor form of Constant (attribute value) is supported');
        constants.set(out, tensorValues(t, source));
        continue;
      }
      case 'Conv': {
        const w = need(1, 'weight');
        const [o, ig, kh, kw] = w.dims as [number, number, number, number];
        if (w.dims.length !== 4) a.fail(`only 2-D convolutions are supported (weight dims [${w.dims}])`);
        if (kh !== kw) a.fail(`kernel ${kh}x${kw} is not supported (square kernels only)`);
        if (a.string('auto_pad', 'NOTSET') !== 'NOTSET') a.fail('auto_pad is not supported (use explicit pads)');
        const groups = a.int('group', 1);
        const b = konst(2);
        const conv = new Conv2d(ig * groups, o, kh, {
          stride: square(a, 'strides', a.ints('strides', []), 1), padding: square(a, 'pads', a.ints('pads', []), 0),
          dilation: square(a, 'dilations', a.ints('dilations', []), 1), groups, bias: !!b,
        });
        copyInto(conv.weight, w.data);
        if (b) copyInto(conv.bias!, b.data);
        module = conv;
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const w = need(1, 'weight');
        if (w.dims.length !== 2) a.fail(`weight must be 2-D, got [${w.dims}]`);
        if (n.op_type === 'Gemm' && a.int('transA', 0) !== 0) a.fail('transA = 1 is not supported');
        const transB = n.op_type === 'Gemm' && a.int('transB', 0) === 1;
        const [outF, inF] = transB ? (w.dims as [number, number]) : [w.dims[1]!, w.dims[0]!];
        const alpha = a.float('alpha', 1), beta = a.float('beta', 1);
        const c = n.op_type === 'Gemm' ? konst(2) : undefined;
        if (c && c.data.length !== outF && c.data.length !== 1) a.fail(`bias C must have ${outF} values, got dims [${c.dims}]`);
        const lin = new Linear(inF, outF, { bias: !!c });
        const wv = new Float32Array(outF * inF);
        for (let r = 0; r < outF; r++) for (let k = 0; k < inF; k++) wv[r * inF + k] = alpha * w.data[transB ? r * inF + k : k * outF + r]!;
        copyInto(lin.weight, wv);
        if (c) copyInto(lin.bias!, Float32Array.from({ length: outF }, (_, i) => beta * c.data[c.data.length === 1 ? 0 : i]!));
        module = lin;
        break;
      }
      case 'BatchNormalization': {
        const [scale, bias, m, v] = [1, 2, 3, 4].map((i) => need(i, ['scale', 'bias', 'mean', 'var'][i - 1]!));
        const bn = new BatchNorm(scale!.data.length, 1 - a.float('momentum', 0.9), a.float('epsilon', 1e-5));
        copyInto(bn.gamma, scale!.data);
        copyInto(bn.beta, bias!.data);
        copyInto(bn.runningMean, m!.data);
        copyInto(bn.runningVar, v!.data);
        module = bn.eval();
        break;
      }
      case 'Relu':
        module = ReLU();
        break;
      case 'LeakyRelu':
        module = LeakyReLU(a.float('alpha', 0.01));
        break;
      case 'Sigmoid':
        module = new Lambda('sigmoid', sigmoid);
        break;
      case 'Tanh':
        module = new Lambda('tanh', tanh);
        break;
      case 'Clip': {
        const lo = konst(1)?.data[0] ?? a.float('min', -Infinity), hi = konst(2)?.data[0] ?? a.float('max', Infinity);
        if ((ins[1] && !konst(1)) || (ins[2] && !konst(2))) a.fail('min/max must be constants');
        module = Hardtanh(lo, hi);
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const ks = a.ints('kernel_shape', []);
        const k = square(a, 'kernel_shape', ks, 1), stride = square(a, 'strides', a.ints('strides', []), 1), pad = square(a, 'pads', a.ints('pads', []), 0);
        if (a.int('ceil_mode', 0) !== 0) a.fail('ceil_mode = 1 is not supported');
        if (square(a, 'dilations', a.ints('dilations', []), 1) !== 1) a.fail('dilated pooling is not supported');
        if (a.string('auto_pad', 'NOTSET') !== 'NOTSET') a.fail('auto_pad is not supported');
        if (n.op_type === 'MaxPool') module = stride === k && pad === 0 ? new MaxPool2dLayer(k) : MaxPool2d({ kernel: k, stride, padding: pad });
        else {
          // slimgrad's average pool divides by the full window (count_include_pad = 1).
          if (pad > 0 && a.int('count_include_pad', 0) !== 1) a.fail('padding with count_include_pad = 0 is not supported');
          module = AvgPool2d({ kernel: k, stride, padding: pad });
        }
        break;
      }
      case 'GlobalAveragePool':
        module = new Lambda('global_avgpool2d', (x) => mean(x, [2, 3], true), { keepDims: true });
        break;
      case 'Flatten':
        if (a.int('axis', 1) !== 1) a.fail(`axis ${a.int('axis', 1)} is not supported (only 1)`);
        module = Flatten();
        break;
      case 'Reshape': {
        const shape = Array.from(need(1, 'shape').data);
        if (a.int('allowzero', 0) !== 0) a.fail('allowzero = 1 is not supported');
        if (shape.length === 2 && (shape[1] === -1 || shape[0] === 0 || shape[0] === -1)) module = Flatten();
        else module = new Lambda('reshape', (x) => reshape(x, shape.map((d, i) => (d === 0 ? x.shape[i]! : i === 0 && d > 0 ? x.shape[0]! : d))), { shape });
        break;
      }
      case 'Softmax': {
        const axis = a.int('axis', -1);
        module = new Lambda('softmax', (x) => softmax(x, axis), { axis });
        break;
      }
      case 'Concat':
        module = new Merge('concat', a.int('axis', 1));
        break;
      case 'Add': {
        const c = ins.map((name) => constants.get(name)).find((v) => v);
        if (activations.length === 0) a.fail('adds two constants');
        module = new Merge('add', 1, c ? keep(fromValues(c.data, c.dims)) : null);
        break;
      }
      default: // Identity, Dropout (inference)
        module = new Lambda('identity', (x) => x.alias());
    }
    if (!(module instanceof Merge) && activations.length !== 1) a.fail(`expects one activation input, got ${activations.length} (${activations.join(', ')})`);
    built.push({ name: n.name || `${n.op_type}_${index}`, module, inputs: activations, output: out });
  }
  const output = graph.output![0]!.name;
  // A chain (each node reads the previous node's output) is a Sequential of the plain layers.
  const chain = built.every((n, i) => n.inputs.length === 1 && n.inputs[0] === (i === 0 ? input.name : built[i - 1]!.output)) && built.at(-1)?.output === output;
  const model = chain ? new Sequential(...built.map((n) => n.module)) : new GraphModule(input.name, built, output);
  return { model: model.eval(), inputShape, inputName: input.name, outputName: output };
}
