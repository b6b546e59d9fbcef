/**
 * `slimgrad explain --data adult|bank|FILE.csv [--label NAME] [--drop a,b] [--method M] [--budget N]
 *   [--rows R] [--background B] [--cross-contribution auto|hessian|finite-difference] [--epochs E]
 *   [--seed S] [--model FILE.safetensors] [--data-dir DIR] [--backend wasm|reference] [--no-exact] [--json]`
 *
 * Trains (or loads, with --model) the softplus MLP, explains the class-1 logit of the first R test
 * rows, draws a per-feature bar chart for the first row, and reports aggregate metrics (error and
 * ranking accuracy against exact values when M ≤ 16, monotonicity, faithfulness, throughput).
 */
import { printJson, printTable, UsageError } from '../command.js';
import { defineCommand, JSON_OPTION, THREADS_OPTION, type CommandSpec } from '../options.js';
import { applyThreads } from '../shared.js';
import { chooseBackend, DEFAULT_TABULAR_DIR, loadTabularData, meanRow, prepareModel, TABULAR_PRESETS } from '../tabular-setup.js';
import { BudgetError, Explainer, METHODS, evaluateMethod, exactValues, type Method } from '../../explain/index.js';
import { classOneLogits, explainableMlp } from '../../explain/tabular-mlp.js';

/** Largest player count for which the command computes exact values to score against. */
const EXACT_SCORING_LIMIT = 16;

/** One text bar per player, longest |φ| first. */
function barChart(players: string[], values: Float64Array, width = 40): string[] {
  const order = players.map((_, i) => i).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!));
  const largest = Math.max(...Array.from(values, Math.abs), 1e-300);
  const nameWidth = Math.max(...players.map((p) => p.length));
  return order.map((i) => {
    const v = values[i]!;
    const bar = '█'.repeat(Math.round((Math.abs(v) / largest) * width));
    return `${players[i]!.padStart(nameWidth)} ${v >= 0 ? '+' : '-'}${Math.abs(v).toFixed(4).padStart(8)} ${v >= 0 ? bar : bar.replace(/█/g, '░')}`;
  });
}

export const explainSpec: CommandSpec = {
  name: 'explain',
  summary: 'Shapley explanations of a tabular MLP (trained here, or loaded with --model): bar chart of row 0 and accuracy of the method',
  options: [
    { name: 'data', type: 'string', required: true, help: `a preset (${Object.keys(TABULAR_PRESETS).join(', ')}) or a CSV file` },
    { name: 'label', type: 'string', help: 'label column (required for a CSV file)' },
    { name: 'drop', type: 'list', help: 'columns to leave out' },
    { name: 'categorical', type: 'list', help: 'columns to treat as categorical even if they hold numbers' },
    { name: 'method', type: 'choice', choices: METHODS, default: 'shear', help: 'estimator' },
    { name: 'budget', type: 'int', min: 1, default: 8, help: 'model evaluations per feature' },
    { name: 'rows', type: 'int', min: 1, default: 50, help: 'test rows to explain and score' },
    { name: 'background', type: 'int', min: 0, default: 0, help: 'train rows averaged as the background (0: the test-mean reference row)' },
    { name: 'cross-contribution', type: 'choice', choices: ['auto', 'hessian', 'finite-difference'], default: 'auto', help: 'how cooperating features are found' },
    { name: 'epochs', type: 'int', min: 1, default: 20, help: 'training epochs of the MLP' },
    { name: 'seed', type: 'int', min: 0, default: 0, help: 'seed of the MLP and the estimator' },
    { name: 'model', type: 'file', help: 'load the MLP from this file if it exists, else train and save it there' },
    { name: 'data-dir', type: 'file', default: DEFAULT_TABULAR_DIR, help: 'folder of the preset CSV files' },
    { name: 'backend', type: 'choice', choices: ['wasm', 'reference'], help: 'kernels (default: the fastest available)' },
    { name: 'no-exact', type: 'boolean', default: false, help: 'skip scoring against exact Shapley values' },
    THREADS_OPTION,
    JSON_OPTION,
  ],
  examples: ['slimgrad explain --data adult --method shear --budget 8 --rows 20'],
};

export const explain = defineCommand(explainSpec, async (flags) => {
    applyThreads(flags);
    const data = flags.string('data')!;
    const method = flags.string('method') as Method;
    const budget = flags.int('budget')!;
    const rowsWanted = flags.int('rows')!;
    const epochs = flags.int('epochs')!;
    const seed = flags.int('seed')!;
    const backgroundRows = flags.int('background')!;
    const cross = flags.string('cross-contribution')!;
    const json = flags.bool('json');
    const noExact = flags.bool('no-exact');
    const dataset = loadTabularData('explain', data, flags.string('label'), flags.list('drop'), flags.string('data-dir'), flags.list('categorical'));
    const modelPath = flags.string('model');
    const backend = chooseBackend(flags);

    const log = json ? () => {} : (line: string) => console.log(line);
    const width = dataset.columns.length;
    log(`backend: ${backend}`);
    log(`data: ${data}, ${dataset.train.rows} train / ${dataset.test.rows} test rows, ${dataset.groups.length} players over ${width} columns; classes ${dataset.classes.join(' / ')} (class 1 = ${dataset.classes[1]})`);
    for (const d of dataset.dropped) log(`  dropped column '${d.name}' (${d.reason})`);
    for (const m of dataset.missing) log(`  ${m.cells} missing cells in '${m.name}' (${m.handling === 'level' ? 'own category' : 'imputed with the train mean'})`);
    const model = prepareModel(dataset, epochs, seed, modelPath, log);
    log(model.loadedFrom ? `model: loaded ${model.loadedFrom}` : `model: softplus MLP trained ${epochs} epochs in ${model.trainSeconds.toFixed(1)}s${modelPath ? `, saved to ${modelPath}` : ''}`);
    log(`model test accuracy: ${(100 * model.testAccuracy).toFixed(2)}%`);

    const reference = meanRow(dataset.test, width);
    const background = backgroundRows > 0 ? dataset.train.x.subarray(0, Math.min(backgroundRows, dataset.train.rows) * width) : undefined;
    const explainer = new Explainer(explainableMlp(model.mlp), background ? { background, groups: dataset.groups } : { reference, groups: dataset.groups });
    const n = Math.min(rowsWanted, dataset.test.rows);
    const xs = dataset.test.x.subarray(0, n * width);
    const opts = { method, budget, seed, crossContribution: cross as 'auto' | 'hessian' | 'finite-difference' };

    let first;
    try {
      first = explainer.explain(xs.subarray(0, width), opts);
    } catch (e) {
      if (e instanceof BudgetError) throw new UsageError(`explain: ${e.message}`);
      throw e;
    }
    const fx = classOneLogits(model.mlp, xs.subarray(0, width), 1)[0]!;
    const game = explainer.game(xs.subarray(0, width));
    const [base] = game.values(new Uint8Array(dataset.groups.length), 1);
    log(`\nrow 0 (label ${dataset.classes[dataset.test.y[0]!]}): class-1 logit ${fx.toFixed(4)}, ${background ? `background mean (${background.length / width} rows)` : 'reference'} ${base!.toFixed(4)}; ${method} at ${budget} evaluations/feature${first.crossContribution ? `, cooperators by ${first.crossContribution}` : ''}:`);
    if (!json) for (const line of barChart(first.players, first.values)) console.log(`  ${line}`);

    const scoreExact = !noExact && dataset.groups.length <= EXACT_SCORING_LIMIT;
    const exact = scoreExact ? exactValues(explainer, xs, n) : null;
    if (!scoreExact) log(`\n(no exact scoring: ${noExact ? '--no-exact' : `${dataset.groups.length} players > ${EXACT_SCORING_LIMIT}`})`);
    const score = evaluateMethod(explainer, xs, n, exact?.values ?? null, opts, true);
    if (score.error) throw new UsageError(`explain: ${score.error}`);
    const summary = {
      rows: n, absError: score.absError, rankAccuracy: score.rankAccuracy, monotonicity: score.monotonicity,
      faithfulness: score.faithfulness, instancesPerSec: score.instancesPerSec, evaluationsPerRow: score.evaluationsPerRow,
    };
    log(`\n${method} over the first ${n} test rows${exact ? ` (exact values in ${exact.seconds.toFixed(1)}s)` : ''}:`);
    printTable([summary]);
    printJson({
      data, method, budget, players: first.players, crossContribution: first.crossContribution ?? null,
      testAccuracy: model.testAccuracy, row0: { values: Array.from(first.values), logit: fx, base }, ...summary,
    });
    return 0;
});
