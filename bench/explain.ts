/**
 * `slimgrad bench explain [--json] [--rows N] [--budgets 8,16,...] [--datasets adult,bank,mnist-patches] [--epochs E]
 *   [--seed S] [--seeds K] [--data-dir DIR] [--model-dir DIR] [--backend wasm|reference] [--rounds R]
 *   [--images N] [--image-models lenet5,bwn-lenet5-packed] [--patch P] [--image-seeds S] [--image-budgets 8] [--image-epochs E] [--train-images N] [--masker blur|mean|zero] [--mnist-dir DIR]`
 *   (--model-dir caches the trained models between runs; --rounds: interleaved timing rounds, default 2;
 *   --seeds: estimator seeds S..S+K−1 whose errors are averaged, default 1; the model is trained with seed S)
 *
 * SHEAR protocol (spec §2.2) on Adult and Bank: train the softplus MLP with the engine, explain the
 * class-1 logit of the first N test rows against the test-mean reference, with every method at every
 * budget (coalition evaluations per feature) on the same model and rows, scored against exact
 * Shapley values. Throughput includes SHEAR's cooperator selection (best of two identical runs).
 *
 * `mnist-patches`: LeNet-5 and its binary-weight twin (packed, run by the deploy runtime as a black
 * box) trained briefly on MNIST t10k; the true class's logit of the first N test images explained
 * with 16 patch players (7x7) and a masker; exact values (2^16 coalitions) per image, every method at
 * each image budget over S seeds, scored by error and deletion AUC, next to gradient x input.
 */
import { join } from 'node:path';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { chooseBackend, DEFAULT_TABULAR_DIR, Flags, loadTabularData, meanRow, prepareModel } from '../src/cli/tabular-setup.js';
import { MNIST_SHAPE, DEFAULT_MNIST_DIR, prepareMnistModels } from '../src/cli/image-setup.js';
import {
  BudgetError, Explainer, METHODS, MASKERS, methodSupported, absError, deletionCurve, deployedOutput, evaluateMethod, exactValues, gradientTimesInput, imageExplainer,
  moduleOutput, pearson, rankAccuracy, type BatchedModel, type Masker, type Method, type MethodScore,
} from '../src/explain/index.js';
import { explainableMlp, type HvpMethod } from '../src/explain/tabular-mlp.js';

export async function run(args: string[]): Promise<number> {
  const flags = new Flags(args, 'bench explain', ['json']);
  const json = flags.bool('json');
  const rowsWanted = flags.int('rows', 50);
  const epochs = flags.int('epochs', 20);
  const seed = flags.int('seed', 0, 0);
  const budgets = (flags.list('budgets') ?? ['8', '16', '32', '64', '128']).map(Number);
  const datasets = flags.list('datasets') ?? ['adult', 'bank', 'mnist-patches'];
  const dataDir = flags.string('data-dir') ?? DEFAULT_TABULAR_DIR;
  const modelDir = flags.string('model-dir');
  const timingRounds = flags.int('rounds', 2);
  const errorSeeds = flags.int('seeds', 1);
  const image = {
    models: flags.list('image-models') ?? ['lenet5', 'bwn-lenet5-packed'], patch: flags.int('patch', 7), count: flags.int('images', 2), seeds: flags.int('image-seeds', 10), epochs: flags.int('image-epochs', 1), trainImages: flags.int('train-images', 8000),
    budgets: (flags.list('image-budgets') ?? ['8']).map(Number), masker: (flags.string('masker') ?? 'blur') as Masker, dir: flags.string('mnist-dir') ?? DEFAULT_MNIST_DIR,
  };
  const unknownModel = image.models.find((m) => m !== 'lenet5' && m !== 'bwn-lenet5-packed');
  if (unknownModel) throw new UsageError(`bench explain: --image-models takes lenet5 and/or bwn-lenet5-packed, got '${unknownModel}'`);
  if (!MASKERS.includes(image.masker)) throw new UsageError(`bench explain: --masker must be one of ${MASKERS.join(', ')}, got '${image.masker}'`);
  const backend = chooseBackend(flags);
  flags.checkUnused();
  // Every sampling method (SHEAR's Hessian-vector products by double backward; shear-antithetic's by
  // gradient differences, its fast path), plus SHEAR with gradient-difference HVPs ('shear-gd') and
  // with black-box finite-difference selection ('shear-fd').
  const variants: [string, Method, 'auto' | 'finite-difference', HvpMethod][] = [
    ...METHODS.filter((m) => m !== 'exact').map((m): [string, Method, 'auto', HvpMethod] => [m, m, 'auto', m === 'shear-antithetic' ? 'gradient-difference' : 'auto']),
    ['shear-gd', 'shear', 'auto', 'gradient-difference'],
    ['shear-fd', 'shear', 'finite-difference', 'auto'],
  ];
  const rows: (MethodScore & { dataset: string; absErrorSeedStd: number })[] = [];
  const summary: Record<string, unknown>[] = [];
  const imageRows: Record<string, unknown>[] = [];
  for (const name of datasets) {
    if (name === 'mnist-patches') {
      imageRows.push(...await benchImages(image, seed, modelDir, json, summary));
      continue;
    }
    const dataset = loadTabularData('bench explain', name, undefined, undefined, dataDir);
    const width = dataset.columns.length;
    const model = prepareModel(dataset, epochs, seed, modelDir && join(modelDir, `explain-${name}-e${epochs}-s${seed}.safetensors`));
    const n = Math.min(rowsWanted, dataset.test.rows);
    const xs = dataset.test.x.subarray(0, n * width);
    const setup = { reference: meanRow(dataset.test, width), groups: dataset.groups };
    const explainer = new Explainer(explainableMlp(model.mlp), setup);
    const gradientDifference = new Explainer(explainableMlp(model.mlp, 'gradient-difference'), setup);
    const exact = exactValues(explainer, xs, n);
    let meanAbs = 0;
    for (const v of exact.values) meanAbs += Math.abs(v);
    const info = {
      dataset: name, backend, players: dataset.groups.length, columns: width, trainRows: dataset.train.rows, explainedRows: n,
      epochs, trainSeconds: +model.trainSeconds.toFixed(1), testAccuracy: +model.testAccuracy.toFixed(4),
      exactSeconds: +exact.seconds.toFixed(1), meanSumAbsPhi: +(meanAbs / n).toFixed(4),
    };
    summary.push(info);
    if (!json) console.log(`\n${name} (${backend} kernels): ${info.players} players (${width} columns), MLP test accuracy ${info.testAccuracy} after ${epochs} epochs (${info.trainSeconds}s); explaining the first ${n} test rows; exact values in ${info.exactSeconds}s; mean Σ|φ| ${info.meanSumAbsPhi}`);
    const table: Record<string, unknown>[] = [];
    for (const budget of budgets) {
      // `timingRounds` identical (seeded) rounds over all variants, interleaved so that a burst of
      // load from other processes hits every method alike; the fastest round's throughput counts
      // (no JIT warm-up billed either).
      const rounds = Array.from({ length: timingRounds }, () => variants.map(([, method, crossContribution, hvp]) =>
        evaluateMethod(hvp === 'gradient-difference' ? gradientDifference : explainer, xs, n, exact.values, { method, budget, seed, crossContribution })));
      variants.forEach(([label, method, crossContribution, hvp], v) => {
        const runs = rounds.map((r) => r[v]!);
        // Errors over `errorSeeds` estimator seeds (the timed rounds use `seed`; the others are untimed).
        const bySeed = [runs.at(-1)!, ...Array.from({ length: errorSeeds - 1 }, (_, s) =>
          evaluateMethod(hvp === 'gradient-difference' ? gradientDifference : explainer, xs, n, exact.values, { method, budget, seed: seed + 1 + s, crossContribution }))];
        const meanOf = (key: 'absError' | 'rankAccuracy') => bySeed.reduce((a, r) => a + r[key], 0) / errorSeeds;
        const absError = meanOf('absError');
        const score = {
          ...runs.at(-1)!, method: label, absError, rankAccuracy: meanOf('rankAccuracy'),
          absErrorSeedStd: Math.sqrt(bySeed.reduce((a, r) => a + (r.absError - absError) ** 2, 0) / Math.max(1, errorSeeds - 1)),
          instancesPerSec: Math.max(...runs.map((r) => r.instancesPerSec)),
          medianInstancesPerSec: Math.max(...runs.map((r) => r.medianInstancesPerSec)),
        };
        rows.push({ dataset: name, ...score });
        table.push({
          method: label, budget, absError: score.absError, rankAcc: score.rankAccuracy, 'inst/s': score.instancesPerSec, 'inst/s(median)': score.medianInstancesPerSec,
          'evals/row': score.evaluationsPerRow, note: score.error ? 'budget too small' : (score.crossContribution ?? ''),
        });
      });
    }
    printTable(table);
  }
  printTable(summary);
  if (json) printJson({
    explainedRows: summary.map((s) => ({ dataset: s['dataset'], rows: s['explainedRows'] })),
    models: summary,
    rows: rows.map((r) => ({
      dataset: r.dataset, method: r.method, budget: r.budget,
      absError: r.absError, ...(errorSeeds > 1 ? { seeds: errorSeeds, absErrorSeedStd: r.absErrorSeedStd } : {}), rankAccuracy: r.rankAccuracy, instancesPerSec: r.instancesPerSec, instancesPerSecMedian: r.medianInstancesPerSec,
      evaluationsPerRow: r.evaluationsPerRow, ...(r.crossContribution ? { crossContribution: r.crossContribution } : {}),
      ...(r.error ? { error: r.error } : {}),
    })).concat(imageRows as never[]),
  });
  return 0;
}

interface ImageBenchOptions { models: string[]; patch: number; count: number; seeds: number; epochs: number; trainImages: number; budgets: number[]; masker: Masker; dir: string }

/**
 * The `mnist-patches` rows: per model (float LeNet-5 through the engine, the packed binary twin
 * through the deploy runtime), exact values of the first `count` test images, then every method at
 * each budget with `seeds` seeds per image (throughput: explanations per second, selection included),
 * deletion AUC of every map (and of gradient x input for the float model).
 */
async function benchImages(o: ImageBenchOptions, seed: number, modelDir: string | undefined, json: boolean, summary: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const log = json ? () => {} : (line: string) => console.log(line);
  const models = await prepareMnistModels('bench explain', o.dir, o.epochs, o.trainImages, seed, modelDir, log);
  const count = Math.min(o.count, models.test.length);
  const twins = ([
    ['lenet5', (cls) => moduleOutput(models.float, MNIST_SHAPE, cls)],
    ['bwn-lenet5-packed', (cls) => deployedOutput(models.deployed, cls)],
  ] as [string, (cls: number) => BatchedModel][]).filter(([name]) => o.models.includes(name));
  const rows: Record<string, unknown>[] = [];
  const exactMaps = new Map<string, Float64Array[]>();
  const info: Record<string, unknown> = {
    dataset: 'mnist-patches', players: Math.ceil(28 / o.patch) ** 2, patch: o.patch, masker: o.masker, explainedRows: count, trainImages: Math.min(o.trainImages, 8000), epochs: o.epochs,
    floatAccuracy: +models.floatAccuracy.toFixed(4), binaryAccuracy: +models.binaryAccuracy.toFixed(4), trainSeconds: +models.trainSeconds.toFixed(1),
  };
  for (const [modelName, outputOf] of twins) {
    const acc: Record<string, { err: number; rank: number; auc: number; seconds: number; n: number; evals: number; error?: string }> = {};
    const add = (key: string, err: number, rank: number, auc: number, seconds: number, evals: number) => {
      const a = (acc[key] ??= { err: 0, rank: 0, auc: 0, seconds: 0, n: 0, evals: 0 });
      a.err += err; a.rank += rank; a.auc += auc; a.seconds += seconds; a.n++; a.evals += evals;
    };
    let exactSeconds = 0;
    const maps: Float64Array[] = [];
    for (let r = 0; r < count; r++) {
      const img = models.test.values(r, r + 1);
      const cls = models.test.y[r]!;
      const setup = imageExplainer(outputOf(cls), img, MNIST_SHAPE, { patch: o.patch, masker: o.masker, meanImage: models.meanImage });
      const exact = setup.explainer.explain(setup.x, { method: 'exact' });
      exactSeconds += exact.seconds;
      maps.push(exact.values);
      const game = () => setup.explainer.game(setup.x);
      add('exact|0', 0, 1, deletionCurve(game(), exact.values).deletionAuc, exact.seconds, exact.evaluations);
      if (modelName === 'lenet5') {
        const start = performance.now();
        const gxi = gradientTimesInput(models.float, img, setup, cls);
        add('gradient-x-input|0', absError(gxi, exact.values), rankAccuracy(gxi, exact.values), deletionCurve(game(), gxi).deletionAuc, (performance.now() - start) / 1000, 0);
      }
      for (const budget of o.budgets) {
        for (const method of METHODS.filter((m) => m !== 'exact' && methodSupported(setup.explainer.model, m))) {
          for (let s = 0; s < o.seeds; s++) {
            try {
              const e = setup.explainer.explain(setup.x, { method, budget, seed: seed + s, stream: r });
              add(`${method}|${budget}`, absError(e.values, exact.values), rankAccuracy(e.values, exact.values), deletionCurve(game(), e.values).deletionAuc, e.seconds, e.evaluations);
            } catch (err) {
              if (!(err instanceof BudgetError)) throw err;
              (acc[`${method}|${budget}`] ??= { err: NaN, rank: NaN, auc: NaN, seconds: NaN, n: 1, evals: NaN }).error = err.message;
            }
          }
        }
      }
    }
    exactMaps.set(modelName, maps);
    info[`${modelName}ExactSeconds`] = +(exactSeconds / count).toFixed(1);
    const table: Record<string, unknown>[] = [];
    for (const [key, a] of Object.entries(acc)) {
      const [method, budget] = key.split('|');
      const row = {
        dataset: 'mnist-patches', model: modelName, method, budget: Number(budget), absError: a.err / a.n, rankAccuracy: a.rank / a.n,
        instancesPerSec: a.n / a.seconds, deletionAuc: a.auc / a.n, evaluationsPerRow: a.evals / a.n, ...(a.error ? { error: a.error } : {}),
      };
      rows.push(row);
      table.push({ model: modelName, method, budget: row.budget, absError: row.absError, rankAcc: row.rankAccuracy, 'inst/s': row.instancesPerSec, deletionAuc: row.deletionAuc, 'evals/row': row.evaluationsPerRow });
    }
    if (!json) console.log(`\nmnist-patches, ${modelName}: ${count} test image(s), ${info['players']} patches of ${o.patch}x${o.patch}, ${o.masker} masker; exact values ${info[`${modelName}ExactSeconds`]}s per image; ${o.seeds} seeds per method`);
    printTable(table);
  }
  // What the packed binary model looks at compared with its float twin: correlation of the exact maps.
  const f = exactMaps.get('lenet5'), b = exactMaps.get('bwn-lenet5-packed');
  if (f && b) info['floatBinaryMapCorrelation'] = +(f.reduce((s, m, i) => s + pearson(m, b[i]!), 0) / f.length).toFixed(4);
  summary.push(info);
  return rows;
}
