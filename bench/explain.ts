/**
 * `slimgrad bench explain [--json] [--rows N] [--budgets 8,16,...] [--datasets adult,bank] [--epochs E]
 *   [--seed S] [--data-dir DIR] [--model-dir DIR] [--backend wasm|reference]`
 *   (--model-dir caches the trained models between runs)
 *
 * SHEAR protocol (spec §2.2) on Adult and Bank: train the softplus MLP with the engine, explain the
 * class-1 logit of the first N test rows against the test-mean reference, with every method at every
 * budget (coalition evaluations per feature) on the same model and rows, scored against exact
 * Shapley values. Throughput includes SHEAR's cooperator selection (best of two identical runs).
 */
import { join } from 'node:path';
import { printJson, printTable } from '../src/cli/command.js';
import { chooseBackend, DEFAULT_TABULAR_DIR, Flags, loadTabularData, meanRow, prepareModel } from '../src/cli/tabular-setup.js';
import { Explainer, METHODS, evaluateMethod, exactValues, type Method, type MethodScore } from '../src/explain/index.js';
import { explainableMlp, type HvpMethod } from '../src/explain/tabular-mlp.js';

export async function run(args: string[]): Promise<number> {
  const flags = new Flags(args, 'bench explain', ['json']);
  const json = flags.bool('json');
  const rowsWanted = flags.int('rows', 50);
  const epochs = flags.int('epochs', 20);
  const seed = flags.int('seed', 0, 0);
  const budgets = (flags.list('budgets') ?? ['8', '16', '32', '64', '128']).map(Number);
  const datasets = flags.list('datasets') ?? ['adult', 'bank'];
  const dataDir = flags.string('data-dir') ?? DEFAULT_TABULAR_DIR;
  const modelDir = flags.string('model-dir');
  const backend = chooseBackend(flags);
  flags.checkUnused();
  // Every sampling method (SHEAR's Hessian-vector products by double backward), plus SHEAR with
  // gradient-difference HVPs ('shear-gd') and with black-box finite-difference selection ('shear-fd').
  const variants: [string, Method, 'auto' | 'finite-difference', HvpMethod][] = [
    ...METHODS.filter((m) => m !== 'exact').map((m): [string, Method, 'auto', HvpMethod] => [m, m, 'auto', 'auto']),
    ['shear-gd', 'shear', 'auto', 'gradient-difference'],
    ['shear-fd', 'shear', 'finite-difference', 'auto'],
  ];
  const rows: (MethodScore & { dataset: string })[] = [];
  const summary: Record<string, unknown>[] = [];
  for (const name of datasets) {
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
      for (const [label, method, crossContribution, hvp] of variants) {
        const opts = { method, budget, seed, crossContribution };
        const chosen = hvp === 'gradient-difference' ? gradientDifference : explainer;
        // Two identical (seeded) runs; the faster one's throughput counts, so neither JIT warm-up nor
        // a burst of load from other processes is billed to a method.
        const first = evaluateMethod(chosen, xs, n, exact.values, opts);
        const second = evaluateMethod(chosen, xs, n, exact.values, opts);
        const score = {
          ...second, method: label,
          instancesPerSec: Math.max(first.instancesPerSec, second.instancesPerSec),
          medianInstancesPerSec: Math.max(first.medianInstancesPerSec, second.medianInstancesPerSec),
        };
        rows.push({ dataset: name, ...score });
        table.push({
          method: label, budget, absError: score.absError, rankAcc: score.rankAccuracy, 'inst/s': score.instancesPerSec, 'inst/s(median)': score.medianInstancesPerSec,
          'evals/row': score.evaluationsPerRow, note: score.error ? 'budget too small' : (score.crossContribution ?? ''),
        });
      }
    }
    printTable(table);
  }
  printTable(summary);
  if (json) printJson({
    explainedRows: summary.map((s) => ({ dataset: s['dataset'], rows: s['explainedRows'] })),
    models: summary,
    rows: rows.map((r) => ({
      dataset: r.dataset, method: r.method, budget: r.budget,
      absError: r.absError, rankAccuracy: r.rankAccuracy, instancesPerSec: r.instancesPerSec, instancesPerSecMedian: r.medianInstancesPerSec,
      evaluationsPerRow: r.evaluationsPerRow, ...(r.crossContribution ? { crossContribution: r.crossContribution } : {}),
      ...(r.error ? { error: r.error } : {}),
    })),
  });
  return 0;
}
