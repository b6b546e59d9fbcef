/**
 * `slimgrad bench data [--json] [--data-dir DIR]`: throughput of the data layer: synthetic
 * generation, MNIST IDX loading (gunzip + parse + scale), .npz parsing (deflate), and DataLoader
 * batches as typed arrays and as tensors, with and without augmentation.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { printJson, printTable } from '../src/cli/command.js';
// The test writers of the formats (independent of the readers) build the archive to parse.
import { encodeNpy, encodeZip } from '../test/data/fixtures.js';
import { DataLoader, loadMnist, normalize, parseNpz, randomCrop, randomHorizontalFlip, syntheticShapes, type Dataset } from '../src/data/index.js';

interface Row {
  case: string;
  items: number;
  ms: number;
  itemsPerSecond: number;
}

/** Best of `repeats` timed runs (the first run also warms up the JIT and module loading). */
async function time(label: string, items: number, repeats: number, fn: () => unknown): Promise<Row> {
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return { case: label, items, ms: best, itemsPerSecond: (items / best) * 1000 };
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false }, 'data-dir': { type: 'string', default: '../shared/data/mnist-t10k' } } });
  const rows: Row[] = [];

  let grey!: Dataset, rgb!: Dataset;
  rows.push(await time('synthetic 28x28x1 generate', 10000, 3, () => void (grey = syntheticShapes({ n: 10000 }))));
  rows.push(await time('synthetic 32x32x3 generate', 10000, 3, () => void (rgb = syntheticShapes({ n: 10000, size: 32, channels: 3 }))));

  const dir = values['data-dir']!;
  if (existsSync(dir)) rows.push(await time(`mnist t10k load (${dir})`, 10000, 3, () => loadMnist(dir, { split: 'all' })));

  const pixels = Array.from(grey.x); // 8-bit pixels already
  const npz = encodeZip([{ name: 'x.npy', data: encodeNpy('|u1', [grey.length, 28, 28], pixels), deflate: true }]);
  rows.push(await time(`npz parse (deflate, ${(npz.length / 1e6).toFixed(1)} MB)`, 10000, 3, () => void parseNpz(npz, 'bench.npz', (b) => inflateRawSync(b))));

  const drain = (loader: DataLoader, tensors: boolean) => () => {
    if (!tensors) for (const _ of loader.arrays(0));
    else for (const { x, y } of loader.epoch(0)) { x.dispose(); y.dispose(); }
  };
  const { mean, std } = rgb.channelStats();
  const augment = [randomCrop(4), randomHorizontalFlip(), normalize(mean, std)];
  for (const tensors of [false, true]) {
    const kind = tensors ? 'tensors' : 'arrays';
    rows.push(await time(`loader 28x28x1 b64 ${kind}`, grey.length, 3, drain(new DataLoader(grey, { batchSize: 64 }), tensors)));
    rows.push(await time(`loader 32x32x3 b64 ${kind}`, rgb.length, 3, drain(new DataLoader(rgb, { batchSize: 64 }), tensors)));
    rows.push(await time(`loader 32x32x3 b64 ${kind} crop+flip+norm`, rgb.length, 3, drain(new DataLoader(rgb, { batchSize: 64, transforms: augment }), tensors)));
  }

  printTable(rows.map((r) => ({ ...r, itemsPerSecond: Math.round(r.itemsPerSecond) })));
  if (values.json) printJson({ suite: 'data', rows });
  return 0;
}
