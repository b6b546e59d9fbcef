import { parseArgs } from 'node:util';
import { loadDeployed, loadQuantKernelsFromBuild } from '../../io/quant.js';
import { runPacked } from '../../quant/packed.js';
import { printJson, UsageError, type Command } from '../command.js';
import { loadData } from './train.js';

/**
 * `slimgrad infer model.sgq --data mnist`: runs a deployed (packed) model on the test split with
 * the wasm kernels when built (else the TypeScript kernels) and reports accuracy and latency.
 */
export const infer: Command = {
  name: 'infer',
  summary: 'run a packed model (from `slimgrad convert`) on a test set: FILE.sgq [--data mnist] [--limit N] [--batch-size N] [--json]',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        data: { type: 'string', default: 'mnist' },
        'data-dir': { type: 'string' },
        limit: { type: 'string' },
        'batch-size': { type: 'string', default: '100' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new UsageError('expects exactly one model file (FILE.sgq)');
    const batch = Number(values['batch-size']);
    if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch-size must be a positive integer, got '${values['batch-size']}'`);
    const model = loadDeployed(file);
    const kernels = (await loadQuantKernelsFromBuild()) ? 'wasm' : 'typescript';
    const [, testSet] = await loadData(values.data!, values['data-dir'], 1);
    if (testSet.itemShape.join() !== model.inputShape.join()) {
      throw new UsageError(`${file} expects items of shape [${model.inputShape}], --data ${values.data} has [${testSet.itemShape}]`);
    }
    const limit = values.limit === undefined ? testSet.length : Math.min(testSet.length, Number(values.limit));
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer, got '${values.limit}'`);
    let correct = 0, ms = 0;
    for (let start = 0; start < limit; start += batch) {
      const n = Math.min(batch, limit - start);
      const x = testSet.x.subarray(start * testSet.itemSize, (start + n) * testSet.itemSize);
      const t0 = performance.now();
      const out = runPacked(model, x, [n, ...testSet.itemShape]);
      ms += performance.now() - t0;
      const classes = out.shape[1]!;
      for (let i = 0; i < n; i++) {
        const row = out.data.subarray(i * classes, (i + 1) * classes);
        if (row.indexOf(Math.max(...row)) === testSet.y[start + i]) correct++;
      }
    }
    const result = { file, data: values.data, items: limit, kernels, testAccuracy: correct / limit, msPerItem: ms / limit };
    if (values.json) printJson(result);
    else console.log(`${file}: accuracy ${(100 * result.testAccuracy).toFixed(2)}% on ${limit} ${values.data} test items, ${result.msPerItem.toFixed(3)} ms/item (${kernels} kernels)`);
    return 0;
  },
};
