import { loadDeployed, loadQuantKernelsFromBuild } from '../../io/quant.js';
import { checkOutputPath, writeFileAtomic } from '../../io/write.js';
import { runPacked } from '../../quant/packed.js';
import { isNested, withBits } from '../../quant/runtime.js';
import { printJson, UsageError } from '../command.js';
import { DATA_DIR_OPTION, defineCommand, FORCE_OPTION, JSON_OPTION, THREADS_OPTION, type CommandSpec } from '../options.js';
import { applyThreads, dataSplits } from '../shared.js';

export const inferSpec: CommandSpec = {
  name: 'infer',
  summary: 'run a packed model (from `slimgrad convert`) on a test split: accuracy and latency',
  positionals: [{ name: 'FILE.sgq', help: 'deployed model written by `slimgrad convert`' }],
  options: [
    { name: 'data', type: 'string', default: 'mnist', help: 'dataset whose test split to run: mnist, synthetic, cifar10 or FILE.npz' },
    DATA_DIR_OPTION,
    { name: 'seed', type: 'int', min: 0, default: 1, help: 'seed of the synthetic sets (as given to train)' },
    { name: 'limit', type: 'int', min: 1, help: 'run only the first N test items' },
    { name: 'batch-size', type: 'int', min: 1, default: 100, help: 'items per kernel call' },
    { name: 'bits', type: 'int', min: 2, max: 8, help: 'nested-precision model (train --quant nested): read its weights at N bits (2..8; default: the width it was converted at)' },
    { name: 'predictions', type: 'file', help: 'write the predicted class of each item, one per line' },
    FORCE_OPTION,
    THREADS_OPTION,
    JSON_OPTION,
  ],
  examples: ['slimgrad infer bnn.sgq --data mnist --data-dir ../shared/data/mnist-t10k', 'slimgrad infer nested.sgq --bits 4 --data mnist --data-dir ../shared/data/mnist-t10k'],
};

/**
 * `slimgrad infer model.sgq --data mnist`: runs a deployed (packed) model on the test split with
 * the wasm kernels when built (else the TypeScript kernels) and reports accuracy and latency.
 */
export const infer = defineCommand(inferSpec, async (o) => {
  applyThreads(o);
  const [file] = o.positionals;
  if (!file) throw new UsageError('expects exactly one model file (FILE.sgq)');
  const predictionsFile = o.string('predictions');
  if (predictionsFile) checkOutputPath(predictionsFile, { overwrite: o.bool('force'), what: '--predictions' });
  if (file.endsWith('.safetensors')) throw new UsageError(`${file} is a checkpoint: evaluate it with \`slimgrad eval ${file}\`, or pack it with \`slimgrad convert --checkpoint ${file} --out FILE.sgq\``);
  const loaded = loadDeployed(file), bits = o.int('bits');
  if (bits !== undefined && !isNested(loaded)) throw new UsageError(`--bits ${bits}: ${file} is not a nested-precision model (only models trained with --quant nested choose their width at load time)`);
  const model = bits === undefined ? loaded : withBits(loaded, bits);
  const kernels = (await loadQuantKernelsFromBuild()) ? 'wasm' : 'typescript';
  const data = o.string('data')!;
  const { test: testSet } = await dataSplits(data, o.string('data-dir'), o.int('seed')!, o.int('limit'));
  if (testSet.itemShape.join() !== model.inputShape.join()) {
    throw new UsageError(`${file} expects items of shape [${model.inputShape}], --data ${data} has [${testSet.itemShape}]`);
  }
  const n = testSet.length, batch = o.int('batch-size')!;
  const predicted = new Int32Array(n);
  let correct = 0, ms = 0;
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const x = testSet.values(start, start + count);
    const t0 = performance.now();
    const out = runPacked(model, x, [count, ...testSet.itemShape]);
    ms += performance.now() - t0;
    const classes = out.shape[1]!;
    for (let i = 0; i < count; i++) {
      const row = out.data.subarray(i * classes, (i + 1) * classes);
      let best = 0;
      for (let j = 1; j < classes; j++) if (row[j]! > row[best]!) best = j;
      predicted[start + i] = best;
      if (best === testSet.y[start + i]) correct++;
    }
  }
  if (predictionsFile) writeFileAtomic(predictionsFile, new TextEncoder().encode(predicted.join('\n') + '\n'), { overwrite: o.bool('force'), what: '--predictions' });
  const result = { file, data, items: n, kernels, ...(bits !== undefined ? { bits } : {}), testAccuracy: correct / n, msPerItem: ms / n };
  if (o.bool('json')) printJson(result);
  else console.log(`${file}: accuracy ${(100 * result.testAccuracy).toFixed(2)}% on ${n} ${data} test items, ${result.msPerItem.toFixed(3)} ms/item (${kernels} kernels)`);
  return 0;
});
