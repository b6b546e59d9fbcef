import { getBackend } from '../../backends/index.js';
import { loadModule, readCheckpoint } from '../../io/checkpoint.js';
import { classificationReport, predict } from '../../train/trainer.js';
import { printJson, printTable, UsageError } from '../command.js';
import { DATA_DIR_OPTION, defineCommand, JSON_OPTION, THREADS_OPTION, type CommandSpec } from '../options.js';
import { applyThreads, dataSplits } from '../shared.js';
import { buildModel } from './train.js';

export const evalSpec: CommandSpec = {
  name: 'eval',
  summary: 'evaluate a float checkpoint (from train --save) on a test split: loss, accuracy, confusion matrix, per-class precision/recall',
  description: 'The model, dataset (and its --data-dir) and seed come from the checkpoint\'s metadata; --data overrides the dataset (same item shape).',
  positionals: [{ name: 'FILE.safetensors', help: 'checkpoint written by `slimgrad train --save`' }],
  options: [
    { name: 'data', type: 'string', help: 'dataset (default: the one the model was trained on)' },
    DATA_DIR_OPTION,
    { name: 'limit', type: 'int', min: 1, help: 'evaluate only the first N test items' },
    { name: 'batch-size', type: 'int', min: 1, default: 256, help: 'items per forward pass' },
    THREADS_OPTION,
    JSON_OPTION,
  ],
  examples: ['slimgrad eval lenet.safetensors --data-dir ../shared/data/mnist-t10k'],
};

/** `slimgrad eval model.safetensors`: test-split metrics of a checkpoint written by `slimgrad train --save`. */
export const evaluateCommand = defineCommand(evalSpec, async (o) => {
  applyThreads(o);
  const [file] = o.positionals;
  if (!file) throw new UsageError('expects one checkpoint file (FILE.safetensors from `slimgrad train --save`)');
  if (file.endsWith('.sgq')) throw new UsageError(`${file} is a deployed model: run it with \`slimgrad infer ${file}\` (eval takes the .safetensors checkpoint from train --save)`);
  const meta = readCheckpoint(file).metadata;
  if (!meta['model'] || !meta['itemShape'] || !meta['classes']) throw new UsageError(`${file} does not say which model it holds (written by an older slimgrad, or not by train --save)`);
  const data = o.string('data') ?? meta['data']!;
  const run = meta['slimgrad.run'] ? (JSON.parse(meta['slimgrad.run']) as { config: { seed: number } }) : null;
  const seed = run?.config.seed ?? Number(meta['seed'] ?? 1);
  const { test } = await dataSplits(data, o.string('data-dir') ?? (o.given('data') ? undefined : meta['dataDir']), seed, o.int('limit'));
  const itemShape = JSON.parse(meta['itemShape']) as number[], classes = Number(meta['classes']);
  if (test.itemShape.join() !== itemShape.join() || test.numClasses !== classes) {
    throw new UsageError(`${file} was trained on items [${itemShape}] with ${classes} classes; --data ${data} has [${test.itemShape}] with ${test.numClasses}`);
  }
  const model = buildModel(meta['model'], meta['quant'], itemShape, classes, 0);
  loadModule(model, file);
  const t0 = performance.now();
  const { predictions, loss } = predict(model, test, o.int('batch-size'));
  const seconds = (performance.now() - t0) / 1000;
  const r = classificationReport(predictions, test.y, classes);
  const result = { file, model: meta['model'], quant: meta['quant'] ?? null, data, items: test.length, backend: getBackend(), loss, accuracy: r.accuracy, precision: r.precision, recall: r.recall, confusion: r.confusion, seconds };
  if (o.bool('json')) printJson(result);
  else {
    console.log(`${file}: ${meta['model']}${meta['quant'] ? ` --quant ${meta['quant']}` : ''} on ${test.length} ${data} test items: accuracy ${(100 * r.accuracy).toFixed(2)}%, loss ${loss.toFixed(4)} (${seconds.toFixed(1)} s)\n`);
    printTable(r.confusion.map((row, i) => ({
      class: i, ...Object.fromEntries(row.map((v, j) => [`p${j}`, v])), precision: r.precision[i]!.toFixed(4), recall: r.recall[i]!.toFixed(4),
    })));
    console.log('\nrows: true class; p<k>: items predicted as class k');
  }
  model.dispose();
  return 0;
});
