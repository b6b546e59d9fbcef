import { readFileSync } from 'node:fs';
import { loadModule, readCheckpoint } from '../../io/checkpoint.js';
import { saveDeployed } from '../../io/quant.js';
import { importOnnx } from '../../io/onnx/import.js';
import { exportOnnx } from '../../io/onnx/export.js';
import { createModel } from '../../nn/models.js';
import type { Module } from '../../nn/module.js';
import { evaluate } from '../../train/trainer.js';
import { deployPtq, ptq, ptqBytes, PTQ_METHODS, quantizableLayers, simulate, type PtqMethod } from '../../quant/ptq/ptq.js';
import { OBSERVERS, type ObserverKind } from '../../quant/ptq/observers.js';
import { candidateAllocations, hessianTraces, selectBits, type BitChoice } from '../../quant/ptq/mixed.js';
import { printJson, printTable, UsageError } from '../command.js';
import { checkOutputPath, writeFileAtomic } from '../../io/write.js';
import { defineCommand, FORCE_OPTION, JSON_OPTION, type CommandSpec } from '../options.js';
import { dataSplits } from '../shared.js';

/**
 * The architecture of a .safetensors MODEL (--arch, else what `train --save` recorded), checked
 * against its metadata before any data is read; null for ONNX (the file holds its graph).
 */
function checkpointArch(path: string, meta: Record<string, string>, arch: string | undefined): string | null {
  if (path.endsWith('.onnx')) return null;
  if (!path.endsWith('.safetensors')) throw new UsageError(`MODEL must be a .onnx or .safetensors file, got '${path}'`);
  if (meta['quant']) throw new UsageError(`${path} was trained with --quant ${meta['quant']} (quantization-aware): deploy it with \`slimgrad convert --checkpoint ${path}\`; quantize takes float checkpoints`);
  const name = arch ?? meta['model'];
  if (!name) throw new UsageError(`${path} does not name its model: pass --arch (the model it was trained as, e.g. lenet or resnet20)`);
  return name;
}

function loadModel(path: string, arch: string | null, itemShape: readonly number[], classes: number): { model: Module; inputShape: number[] } {
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
  const model = createModel(arch!, itemShape, classes);
  loadModule(model, path);
  return { model, inputShape: [...itemShape] };
}

/**
 * `slimgrad quantize MODEL.onnx|MODEL.safetensors --method rtn|adaround|aquant --w-bits B --a-bits B
 * --calib-items N --out FILE.sgq|FILE.onnx`: post-training quantization of a trained float model
 * on unlabeled calibration items, optionally with Hessian-guided mixed precision (--avg-bits or
 * --size-budget); writes the deployed int8 model (.sgq) and/or a QDQ ONNX file.
 */
export const quantizeSpec: CommandSpec = {
  name: 'quantize',
  summary: 'post-training quantization of a trained float model (ONNX or safetensors) into a deployed .sgq and/or a QDQ ONNX file',
  description: 'Calibrates on unlabeled training items; --avg-bits or --size-budget choose bits per layer: candidates from Hutchinson Hessian traces, ranked by cross-entropy on held-out labeled training items; a mix replaces uniform bits only when clearly better on further items.',
  positionals: [{ name: 'MODEL', help: 'MODEL.onnx (e.g. exported by PyTorch) or MODEL.safetensors (a float checkpoint from `slimgrad train --save`)' }],
  options: [
    { name: 'method', type: 'choice', choices: PTQ_METHODS, default: 'rtn', help: 'round to nearest, AdaRound (learned weight rounding) or AQuant (AdaRound + learned activation borders)' },
    { name: 'w-bits', type: 'int', min: 2, max: 8, default: 8, help: 'weight bits (per output channel)' },
    { name: 'a-bits', type: 'int', min: 2, max: 8, default: 8, help: 'activation bits (per tensor)' },
    { name: 'calib-items', type: 'int', min: 1, default: 256, help: 'unlabeled training items to calibrate on' },
    { name: 'eval-items', type: 'int', min: 0, default: 2000, help: 'test items scored before and after (0: skip)' },
    { name: 'observer', type: 'choice', choices: OBSERVERS, default: 'mse', help: 'activation range observer' },
    { name: 'weight-observer', type: 'choice', choices: OBSERVERS, default: 'mse', help: 'weight range observer' },
    { name: 'iters', type: 'int', min: 1, default: 400, help: 'AdaRound/AQuant iterations per layer' },
    { name: 'avg-bits', type: 'number', above: 0, help: 'mixed precision: average weight bits' },
    { name: 'size-budget', type: 'number', above: 0, help: 'mixed precision: weight size budget in KB' },
    { name: 'arch', type: 'string', help: 'architecture of a .safetensors checkpoint that does not record it (e.g. lenet, resnet20)' },
    { name: 'data', type: 'string', help: 'dataset for calibration (train split) and scoring (test split); default: the one a train --save checkpoint records, else mnist' },
    { name: 'data-dir', type: 'file', help: 'folder of the dataset files; default: the one a train --save checkpoint records (unless --data is given)' },
    { name: 'seed', type: 'int', min: 0, default: 1, help: 'seed of the calibration and the synthetic sets' },
    { name: 'out', type: 'file', help: 'output: FILE.sgq (deployed int8 model) or FILE.onnx (QDQ graph)' },
    { name: 'onnx-out', type: 'file', help: 'also write the QDQ ONNX graph here' },
    FORCE_OPTION,
    JSON_OPTION,
  ],
  examples: [
    'slimgrad quantize test/fixtures/onnx/torch_cnn.onnx --method adaround --w-bits 4 --a-bits 8 --data mnist --data-dir ../shared/data/mnist-t10k --out torch_cnn.sgq --onnx-out torch_cnn.qdq.onnx',
    'slimgrad quantize lenet.safetensors --method adaround --w-bits 4 --out lenet.w4.sgq',
  ],
};

/**
 * `slimgrad quantize MODEL.onnx|MODEL.safetensors --method rtn|adaround|aquant --w-bits B --a-bits B
 * --calib-items N --out FILE.sgq|FILE.onnx`: post-training quantization of a trained float model
 * on unlabeled calibration items, optionally with Hessian-guided mixed precision (--avg-bits or
 * --size-budget); writes the deployed int8 model (.sgq) and/or a QDQ ONNX file.
 */
export const quantize = defineCommand(quantizeSpec, async (o) => {
    if (o.positionals.length !== 1) throw new UsageError('expects one MODEL file (.onnx or .safetensors)');
    const method = o.string('method') as PtqMethod;
    const wBits = o.int('w-bits')!, aBits = o.int('a-bits')!;
    const calibN = o.int('calib-items')!, evalN = o.int('eval-items')!;
    const iters = o.int('iters')!, seed = o.int('seed')!;
    const out = o.string('out'), onnxOutFlag = o.string('onnx-out'), overwrite = o.bool('force');
    if (!out && !onnxOutFlag) throw new UsageError('--out FILE.sgq|FILE.onnx (or --onnx-out FILE.onnx) is required');
    if (out && !/\.(sgq|onnx)$/.test(out)) throw new UsageError(`--out must end in .sgq (deployed model) or .onnx (QDQ graph), got '${out}'`);
    for (const [path, what] of [[out, '--out'], [onnxOutFlag, '--onnx-out']] as const) if (path) checkOutputPath(path, { overwrite, what });
    const avgBits = o.number('avg-bits'), sizeKB = o.number('size-budget');
    const values = { out, 'onnx-out': onnxOutFlag, json: o.bool('json'), arch: o.string('arch'), observer: o.string('observer')!, 'weight-observer': o.string('weight-observer')! };
    const positionals = o.positionals;

    // `train --save` records the model (and a QAT preset), the dataset and its folder in the checkpoint, as convert and eval read them.
    const file = positionals[0]!;
    const meta: Record<string, string> = file.endsWith('.safetensors') ? readCheckpoint(file).metadata : {};
    const arch = checkpointArch(file, meta, values.arch);
    const data = o.string('data') ?? meta['data'] ?? 'mnist';
    const { train: trainSet, test: testSet } = await dataSplits(data, o.string('data-dir') ?? (o.given('data') ? undefined : meta['dataDir']), seed);
    if (meta['itemShape'] && ((JSON.parse(meta['itemShape']) as number[]).join() !== trainSet.itemShape.join() || Number(meta['classes']) !== trainSet.numClasses)) {
      throw new UsageError(`${file} was trained on items ${meta['itemShape']} with ${meta['classes']} classes; --data ${data} has [${trainSet.itemShape}] with ${trainSet.numClasses}`);
    }
    const { model, inputShape } = loadModel(file, arch, trainSet.itemShape, trainSet.numClasses);
    if (inputShape.join() !== trainSet.itemShape.join()) throw new Error(`${positionals[0]}: model input [${inputShape}] does not match the data items [${trainSet.itemShape}]`);
    const n = Math.min(calibN, trainSet.length);
    const calib = trainSet.values(0, n), shape = [n, ...inputShape];

    let bits: number | number[] = wBits;
    let sensitivity: { layer: string; params: number; trace: number; bits: number }[] = [];
    let allocations: Record<string, string | number | null>[] = [];
    let scoredOn = '';
    let selection: BitChoice['confirmation'] = null;
    if (avgBits !== undefined || sizeKB !== undefined) {
      const m = Math.min(n, 64);
      const sens = hessianTraces(model, calib.subarray(0, m * trainSet.itemSize), [m, ...inputShape], { seed });
      // Scored on the next training items when there are enough (AdaRound fits the calibration items).
      const rest = Math.min(n, trainSet.length - n);
      const heldOut = rest >= 32 ? { data: trainSet.values(n, n + rest), shape: [rest, ...inputShape], labels: trainSet.y.subarray(n, n + rest) } : { data: calib, shape, labels: trainSet.y.subarray(0, n) };
      scoredOn = rest >= 32 ? `the first ${rest >> 1} of ${rest} held-out training items` : 'the first half of the calibration items';
      const choice = selectBits(model, calib, shape, candidateAllocations(model, sens, { avgBits, sizeKB }), aBits, { method, iters, seed, heldOut });
      bits = choice.bits;
      sensitivity = sens.map((s, i) => ({ layer: s.path, params: s.params, trace: s.trace, bits: choice.bits[i]! }));
      allocations = choice.scores.map((c) => ({ bits: c.bits.join('/'), [choice.criterion]: c.loss, [`${choice.criterion}_${method}`]: c.lossMethod ?? null }));
      selection = choice.confirmation;
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
    if (values.out?.endsWith('.sgq')) written.push({ file: values.out, bytes: saveDeployed(deployPtq(model, result, inputShape), values.out, { overwrite, what: '--out' }) });
    if (onnxOut) {
      const bytes = exportOnnx(model, inputShape, { ptq: result });
      writeFileAtomic(onnxOut, bytes, { overwrite, what: onnxOut === values.out ? '--out' : '--onnx-out' });
      written.push({ file: onnxOut, bytes: bytes.length });
    }
    const layers = quantizableLayers(model).map((l, i) => {
      const lq = result.layers[i]!;
      return { layer: lq.path, kind: l.constructor.name, params: l.weight.size, wBits: lq.wBits, aBits: lq.aBits, actStep: lq.act.step, actRange: `${lq.act.lo}..${lq.act.hi}` };
    });
    const report = {
      model: positionals[0], data, method, wBits: bits, aBits, calibItems: n, evalItems: testSlice.length,
      floatTestAccuracy: floatAcc, testAccuracy: quantAcc, packedBytes: ptqBytes(model, result), written, layers, sensitivity, allocations, selection,
    };
    if (values.json) printJson(report);
    else {
      if (sensitivity.length) {
        console.log('mixed precision (Hutchinson Hessian traces):');
        printTable(sensitivity);
        console.log(`\ncandidate allocations (cross-entropy on ${scoredOn}, round-to-nearest${method === 'rtn' ? '' : ` and ${method} for the finalists`}):`);
        printTable(allocations);
        const c = selection;
        if (c) console.log(`best mix ${c.bits.join('/')} vs best uniform on ${c.items} other items: mean cross-entropy difference + 2 SE = ${c.upper.toPrecision(3)}, correct only for the mix ${c.onlyMixed}, only for uniform ${c.onlyUniform}: ${c.passed ? 'mix chosen' : 'uniform kept'}`);
        console.log('');
      }
      printTable(layers);
      if (floatAcc !== null) console.log(`\ntest accuracy on ${testSlice.length} items: float ${(floatAcc * 100).toFixed(2)}%, quantized ${(quantAcc! * 100).toFixed(2)}%`);
      console.log(`packed size ${report.packedBytes} bytes; wrote ${written.map((w) => `${w.file} (${w.bytes} bytes)`).join(', ')}`);
    }
    model.dispose();
    return 0;
});
