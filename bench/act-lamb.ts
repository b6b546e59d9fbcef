/**
 * `slimgrad bench act --lamb`: the large-batch campaign of issue 12. LeNet-5 on MNIST (first 8,000
 * train / last 2,000 test items), the same epochs and cosine schedule for both runs: Adam at batch
 * 64 on fp32 activations against LAMB at batch 1024 with `int2` activation compression; and the
 * bytes one batch-1024 step saves for backward with and without compression (ledger).
 *
 * LAMB's learning rate (`--lamb-lr`, default 0.08) was chosen on a held-out tenth of the training
 * split (`slimgrad train --model lenet --data mnist --optimizer lamb --batch-size 1024 --act int2
 * --epochs 5 --val-split 0.1`, seed 1: validation accuracy 0.925 / 0.951 / 0.926 / 0.955 / 0.613 at
 * 0.02 / 0.04 / 0.06 / 0.08 / 0.12), not on the test split; Adam keeps `slimgrad train`'s 0.001.
 * LAMB's β2 (`--lamb-beta2`, default 0.95; the paper's 0.999 averages the squared gradients over
 * the whole run of 40 steps) was chosen the same way, on seeds 1-9 (BENCHMARKS.md).
 */
import { useFastestBackend } from '../src/backends/index.js';
import { Compression } from '../src/compress/act.js';
import { parseActSpec } from '../src/compress/policy.js';
import { measureStep } from '../src/compress/planner.js';
import { fromValues } from '../src/core/tensor.js';
import { loadMnist } from '../src/data/files.js';
import { lenet5 } from '../src/nn/models.js';
import { crossEntropy } from '../src/ops/index.js';
import { Adam, LAMB } from '../src/optim/optimizer.js';
import { cosineLr } from '../src/optim/schedule.js';
import { fit } from '../src/train/trainer.js';

export interface LambOptions {
  seeds: number;
  epochs: number;
  lambLr: number;
  lambBeta2: number;
  dataDir: string;
}

export const LAMB_DEFAULTS: Omit<LambOptions, 'dataDir'> = { seeds: 3, epochs: 5, lambLr: 0.08, lambBeta2: 0.95 };

/** One training run of the campaign. */
export interface LambRow {
  model: 'lenet';
  optimizer: 'adam' | 'lamb';
  batch: number;
  lr: number;
  /** The second-moment decay (Adam: its default 0.999). */
  beta2: number;
  mode: string;
  seed: number;
  epochs: number;
  testAccuracy: number;
  /** Largest saved-for-backward total of the run's steps (ledger). */
  peakSavedBytes: number;
}

/** Saved-for-backward bytes of one step at `batch` per compression mode. */
export interface LambMemoryRow {
  model: 'lenet';
  batch: number;
  mode: string;
  savedBytes: number;
}

const RUNS = [
  { optimizer: 'adam', batch: 64, mode: 'off' },
  { optimizer: 'lamb', batch: 1024, mode: 'int2' },
] as const;
const ADAM_LR = 0.001;
const ADAM_BETA2 = 0.999;

export async function lambRows(o: LambOptions): Promise<{ runs: LambRow[]; memory: LambMemoryRow[] }> {
  useFastestBackend();
  const [train, test] = await Promise.all([loadMnist(o.dataDir, { split: 'train' }), loadMnist(o.dataDir, { split: 'test' })]);
  const runs: LambRow[] = [];
  for (let seed = 1; seed <= o.seeds; seed++) {
    for (const r of RUNS) {
      const model = lenet5(10, seed);
      const lr = r.optimizer === 'lamb' ? o.lambLr : ADAM_LR, beta2 = r.optimizer === 'lamb' ? o.lambBeta2 : ADAM_BETA2;
      const act = new Compression({ ...parseActSpec(r.mode, 'bench act --lamb'), model, seed });
      const report = fit(model, train, test, {
        epochs: o.epochs, batchSize: r.batch, seed,
        optimizer: r.optimizer === 'lamb' ? new LAMB(model.parameters(), { lr, beta2 }) : new Adam(model.parameters(), { lr, beta2 }),
        schedule: cosineLr(lr, o.epochs * Math.ceil(train.length / r.batch)),
        wrapForward: (fn) => act.run(fn),
      });
      runs.push({ model: 'lenet', ...r, lr, beta2, seed, epochs: o.epochs, testAccuracy: report.testAccuracy ?? NaN, peakSavedBytes: report.peakSavedBytes });
      model.dispose();
    }
  }
  // One batch-1024 step per mode, to show what compression makes fit.
  const batch = RUNS[1].batch;
  const model = lenet5(10, 1);
  const x = fromValues(train.values(0, batch), [batch, ...train.itemShape]);
  const y = fromValues(train.y.subarray(0, batch), [batch], 'int32');
  const memory: LambMemoryRow[] = [];
  for (const mode of ['off', 'int2']) {
    const session = new Compression({ ...parseActSpec(mode, 'bench act --lamb'), model, seed: 1 });
    memory.push({ model: 'lenet', batch, mode, savedBytes: measureStep(() => crossEntropy(model.call(x), y), batch, session).savedBytes });
  }
  x.dispose();
  y.dispose();
  model.dispose();
  return { runs, memory };
}

/** Issue 12's LAMB targets from the campaign's rows. */
export function lambTargets(runs: LambRow[], memory: LambMemoryRow[]): { target: string; value: number | null; holds: boolean | null }[] {
  const mean = (opt: LambRow['optimizer']) => {
    const acc = runs.filter((r) => r.optimizer === opt).map((r) => r.testAccuracy);
    return acc.length ? acc.reduce((a, b) => a + b, 0) / acc.length : undefined;
  };
  const adam = mean('adam'), lamb = mean('lamb');
  const saved = (mode: string) => memory.find((m) => m.mode === mode)?.savedBytes;
  const off = saved('off'), int2 = saved('int2');
  const gap = adam !== undefined && lamb !== undefined ? 100 * (adam - lamb) : undefined;
  const ratio = off && int2 ? off / int2 : undefined;
  return [
    { target: 'lenet LAMB b1024 int2 within 1.5 pt of Adam b64 (mean test accuracy, pt below)', value: gap ?? null, holds: gap === undefined ? null : gap <= 1.5 },
    { target: 'lenet b1024 step: fp32 saved bytes >= 5x int2\'s', value: ratio ?? null, holds: ratio === undefined ? null : ratio >= 5 },
  ];
}
