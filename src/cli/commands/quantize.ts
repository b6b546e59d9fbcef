import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadModule } from '../../io/checkpoint.js';
import { saveDeployed } from '../../io/quant.js';
import { importOnnx } from '../../io/onnx/import.js';
import { exportOnnx } from '../../io/onnx/export.js';
import { createModel } from '../../nn/models.js';
import type { Module } from '../../nn/module.js';
import { evaluate } from '../../train/trainer.js';
import { deployPtq, ptq, ptqBytes, PTQ_METHODS, quantizableLayers, simulate, type PtqMethod } from '../../quant/ptq/ptq.js';
import { OBSERVERS, type ObserverKind } from '../../quant/ptq/observers.js';
import { allocateBits, hessianTraces } from '../../quant/ptq/mixed.js';
import { printJson, printTable, UsageError, type Command } from '../command.js';
import { loadData } from './train.js';

function int(flag: string, v: string, min: number, max = Infinity): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag} must be an integer in ${min}..${max}, got '${v}'`);
  return n;
}

function loadModel(path: string, arch: string | undefined, itemShape: readonly number[], classes: number): { model: Module; inputShape: number[] } {
  if (path.endsWith('.onnx')) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new Error(`cannot read ONNX model ${path}: ${(e as Error).message}`);
    }
    const { model, inputShape } = importOnnx(bytes, path);
    return { model, inputShape };
  }
  if (!path.endsWith('.safetensors')) throw new UsageError(`MODEL must be a .onnx or .safetensors file, got '${path}'`);
  if (!arch) throw new UsageError('a .safetensors checkpoint needs --arch (the model it was trained as, e.g. lenet or resnet20)');
  const model = createModel(arch, itemShape, classes);
  loadModule(model, path);
  return { model, inputShape: [...itemShape] };
}

/**
 * `slimgrad quantize MODEL.onnx|MODEL.safetensors --method rtn|adaround|aquant --w-bits B --a-bits B
 * --calib-items N --out FILE.sgq|FILE.onnx`: post-training quantization of a trained float model
 * on unlabeled calibration items, optionally with Hessian-guided mixed precision (--avg-bits or
 * --size-budget); writes the deployed int8 model (.sgq) and/or a QDQ ONNX file.
 */
export const quantize: Command = {
  name: 'quantize',
  summary: 'post-training quantization: MODEL.onnx|.safetensors --method rtn|adaround|aquant --w-bits B --a-bits B --calib-items N --out FILE.sgq|.onnx [--avg-bits B|--size-budget KB] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        method: { type: 'string', default: 'rtn' },
        'w-bits': { type: 'string', default: '8' },
        'a-bits': { type: 'string', default: '8' },
        'calib-items': { type: 'string', default: '256' },
        'eval-items': { type: 'string', default: '2000' },
        observer: { type: 'string', default: 'mse' },
        'weight-observer': { type: 'string', default: 'mse' },
        iters: { type: 'string', default: '400' },
        'avg-bits': { type: 'string' },
        'size-budget': { type: 'string' },
        arch: { type: 'string' },
        data: { type: 'string', default: 'mnist' },
        'data-dir': { type: 'string', default: '../shared/data/mnist-t10k' },
        seed: { type: 'string', default: '1' },
        out: { type: 'string' },
        'onnx-out': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (positionals.length !== 1) throw new UsageError('expects one MODEL file (.onnx or .safetensors)');
    const method = values.method as PtqMethod;
    if (!PTQ_METHODS.includes(method)) throw new UsageError(`unknown --method '${values.method}' (available: ${PTQ_METHODS.join(', ')})`);
    for (const flag of ['observer', 'weight-observer'] as const) {
      if (!OBSERVERS.includes(values[flag] as ObserverKind)) throw new UsageError(`unknown --${flag} '${values[flag]}' (available: ${OBSERVERS.join(', ')})`);
    }
    const wBits = int('w-bits', values['w-bits']!, 2, 8), aBits = int('a-bits', values['a-bits']!, 2, 8);
    const calibN = int('calib-items', values['calib-items']!, 1), evalN = int('eval-items', values['eval-items']!, 0);
    const iters = int('iters', values.iters!, 1), seed = int('seed', values.seed!, 0);
    if (!values.out && !values['onnx-out']) throw new UsageError('--out FILE.sgq|FILE.onnx (or --onnx-out FILE.onnx) is required');
    if (values.out && !/\.(sgq|onnx)$/.test(values.out)) throw new UsageError(`--out must end in .sgq (deployed model) or .onnx (QDQ graph), got '${values.out}'`);
    const avgBits = values['avg-bits'] !== undefined ? Number(values['avg-bits']) : undefined;
    const sizeKB = values['size-budget'] !== undefined ? Number(values['size-budget']) : undefined;
    if ((avgBits !== undefined && !(avgBits > 0)) || (sizeKB !== undefined && !(sizeKB > 0))) throw new UsageError('--avg-bits and --size-budget must be positive numbers');

    const [trainSet, testSet] = await loadData(values.data!, values['data-dir'], seed);
    const { model, inputShape } = loadModel(positionals[0]!, values.arch, trainSet.itemShape, trainSet.numClasses);
    if (inputShape.join() !== trainSet.itemShape.join()) throw new Error(`${positionals[0]}: model input [${inputShape}] does not match the data items [${trainSet.itemShape}]`);
    const n = Math.min(calibN, trainSet.length);
    const calib = trainSet.x.subarray(0, n * trainSet.itemSize), shape = [n, ...inputShape];

    let bits: number | number[] = wBits;
    let sensitivity: { layer: string; params: number; trace: number; bits: number }[] = [];
    if (avgBits !== undefined || sizeKB !== undefined) {
      const m = Math.min(n, 64);
      const sens = hessianTraces(model, calib.subarray(0, m * trainSet.itemSize), [m, ...inputShape], { seed });
      bits = allocateBits(model, sens, { avgBits, sizeKB });
      sensitivity = sens.map((s, i) => ({ layer: s.path, params: s.params, trace: s.trace, bits: (bits as number[])[i]! }));
    }
    const result = ptq(model, calib, shape, { method, wBits: bits, aBits, actObserver: values.observer as ObserverKind, weightObserver: values['weight-observer'] as ObserverKind, iters, seed });
    const testSlice = testSet.subset(0, Math.min(evalN, testSet.length));
    const floatAcc = evalN > 0 ? evaluate(model, testSlice).accuracy : null;
    let quantAcc: number | null = null;
    if (evalN > 0) {
      const restore = simulate(model, result);
      quantAcc = evaluate(model, testSlice).accuracy;
      restore();
    }
    const written: { file: string; bytes: number }[] = [];
    const onnxOut = values.out?.endsWith('.onnx') ? values.out : values['onnx-out'];
    if (values.out?.endsWith('.sgq')) written.push({ file: values.out, bytes: saveDeployed(deployPtq(model, result, inputShape), values.out) });
    if (onnxOut) {
      const bytes = exportOnnx(model, inputShape, { ptq: result });
      writeFileSync(onnxOut, bytes);
      written.push({ file: onnxOut, bytes: bytes.length });
    }
    const layers = quantizableLayers(model).map((l, i) => {
      const lq = result.layers[i]!;
      return { layer: lq.path, kind: l.constructor.name, params: l.weight.size, wBits: lq.wBits, aBits: lq.aBits, actStep: lq.act.step, actRange: `${lq.act.lo}..${lq.act.hi}` };
    });
    const report = {
      model: positionals[0], method, wBits: bits, aBits, calibItems: n, evalItems: testSlice.length,
      floatTestAccuracy: floatAcc, testAccuracy: quantAcc, packedBytes: ptqBytes(model, result), written, layers, sensitivity,
    };
    if (values.json) printJson(report);
    else {
      if (sensitivity.length) {
        console.log('mixed precision (Hutchinson Hessian traces):');
        printTable(sensitivity);
        console.log('');
      }
      printTable(layers);
      if (floatAcc !== null) console.log(`\ntest accuracy on ${testSlice.length} items: float ${(floatAcc * 100).toFixed(2)}%, quantized ${(quantAcc! * 100).toFixed(2)}%`);
      console.log(`packed size ${report.packedBytes} bytes; wrote ${written.map((w) => `${w.file} (${w.bytes} bytes)`).join(', ')}`);
    }
    model.dispose();
    return 0;
  },
};
