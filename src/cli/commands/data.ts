import { DATASET_NAMES, loadDataset, type Split } from '../../data/index.js';
import { UsageError, printJson, printTable } from '../command.js';
import { DATA_DIR_OPTION, defineCommand, JSON_OPTION, type CommandSpec } from '../options.js';

export const dataSpec: CommandSpec = {
  name: 'data',
  summary: 'inspect a dataset: size, item shape, class counts, channel statistics',
  positionals: [{ name: 'NAME', help: `dataset: ${DATASET_NAMES.join(', ')}` }],
  options: [
    { name: 'split', type: 'choice', choices: ['train', 'test', 'all'], default: 'train', help: 'which part to inspect' },
    DATA_DIR_OPTION,
    { name: 'seed', type: 'int', min: 0, default: 0, help: 'seed of the synthetic sets' },
    JSON_OPTION,
  ],
  examples: ['slimgrad data mnist --data-dir ../shared/data/mnist-t10k --split test'],
};

/** `slimgrad data <name>`: loads a dataset and prints its size, shape, class counts and statistics. */
export const data = defineCommand(dataSpec, async (o) => {
  const [name] = o.positionals;
  if (!name) throw new UsageError(`give one dataset name (${DATASET_NAMES.join(', ')})`);
  const split = o.string('split') as Split;
  const start = performance.now();
  let dataset;
  try {
    dataset = await loadDataset(name, { split, dataDir: o.string('data-dir'), seed: o.int('seed')! });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  const loadMs = performance.now() - start;
  const counts = Array.from(dataset.classCounts());
  const { mean, std } = dataset.channelStats();
  printTable(counts.map((count, label) => ({ class: label, count, fraction: count / Math.max(1, dataset.length) })));
  console.log(`${dataset.name}: ${dataset.length} items of [${dataset.itemShape.join(', ')}], ${dataset.numClasses} classes, loaded in ${loadMs.toFixed(0)} ms`);
  console.log(`channel mean [${mean.map((v) => v.toFixed(4)).join(', ')}], std [${std.map((v) => v.toFixed(4)).join(', ')}]`);
  if (o.bool('json')) {
    printJson({ dataset: dataset.name, split, items: dataset.length, itemShape: dataset.itemShape, numClasses: dataset.numClasses, classCounts: counts, mean, std, loadMs });
  }
  return 0;
});
