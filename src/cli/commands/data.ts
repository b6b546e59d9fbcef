import { parseArgs } from 'node:util';
import { DATASET_NAMES, loadDataset, type Split } from '../../data/index.js';
import { UsageError, printJson, printTable, type Command } from '../command.js';

const SPLITS: readonly Split[] = ['train', 'test', 'all'];

/** `slimgrad data <name>`: loads a dataset and prints its size, shape, class counts and statistics. */
export const data: Command = {
  name: 'data',
  summary: `inspect a dataset: ${DATASET_NAMES.join(', ')} [--split train|test|all] [--data-dir DIR] [--seed N] [--json]`,
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          split: { type: 'string', default: 'train' },
          'data-dir': { type: 'string' },
          seed: { type: 'string', default: '0' },
          json: { type: 'boolean', default: false },
        },
      });
    } catch (e) {
      throw new UsageError(`data: ${(e as Error).message}`);
    }
    const { values, positionals } = parsed;
    const [name] = positionals;
    if (!name || positionals.length > 1) throw new UsageError(`data: give one dataset name (${DATASET_NAMES.join(', ')})`);
    const split = values.split as Split;
    if (!SPLITS.includes(split)) throw new UsageError(`data: --split must be one of ${SPLITS.join(', ')}, got '${values.split}'`);
    const seed = Number(values.seed);
    if (!Number.isInteger(seed)) throw new UsageError(`data: --seed must be an integer, got '${values.seed}'`);

    const start = performance.now();
    let dataset;
    try {
      dataset = await loadDataset(name, { split, dataDir: values['data-dir'], seed });
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`data: ${e.message}`);
      throw e;
    }
    const loadMs = performance.now() - start;
    const counts = Array.from(dataset.classCounts());
    const { mean, std } = dataset.channelStats();
    printTable(counts.map((count, label) => ({ class: label, count, fraction: count / Math.max(1, dataset.length) })));
    console.log(`${dataset.name}: ${dataset.length} items of [${dataset.itemShape.join(', ')}], ${dataset.numClasses} classes, loaded in ${loadMs.toFixed(0)} ms`);
    console.log(`channel mean [${mean.map((v) => v.toFixed(4)).join(', ')}], std [${std.map((v) => v.toFixed(4)).join(', ')}]`);
    if (values.json) {
      printJson({ dataset: dataset.name, split, items: dataset.length, itemShape: dataset.itemShape, numClasses: dataset.numClasses, classCounts: counts, mean, std, loadMs });
    }
    return 0;
  },
};
