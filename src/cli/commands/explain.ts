/**
 * `slimgrad explain --data adult|bank|FILE.csv [--label NAME] [--drop a,b] [--method M] [--budget N]
 *   [--rows R] [--background B] [--cross-contribution auto|hessian|finite-difference] [--epochs E]
 *   [--seed S] [--model FILE.safetensors] [--data-dir DIR] [--backend wasm|reference] [--no-exact] [--json]
 *   [--plot FILE.svg [--plot-kind bar|waterfall|beeswarm]]`
 * `slimgrad explain --data mnist ...`: image explanations (see cli/explain-images.ts).
 *
 * Trains (or loads, with --model) the softplus MLP, explains the class-1 logit of the first R test
 * rows, draws a per-feature bar chart for the first row, and reports aggregate metrics (error and
 * ranking accuracy against exact values when M ≤ 16, monotonicity, faithfulness, throughput).
 */
import { printJson, printTable, UsageError } from '../command.js';
import { explainMnist } from '../explain-images.js';
import { DEFAULT_MNIST_DIR } from '../image-setup.js';
import { defineCommand, FORCE_OPTION, JSON_OPTION, THREADS_OPTION, type CommandSpec } from '../options.js';
import { applyThreads } from '../shared.js';
import { chooseBackend, DEFAULT_TABULAR_DIR, loadTabularData, meanRow, prepareModel, TABULAR_PRESETS } from '../tabular-setup.js';
import { BudgetError, Explainer, MASKERS, METHODS, barPlot, beeswarmPlot, evaluateMethod, exactValues, waterfallPlot, type Method } from '../../explain/index.js';
import type { TabularDataset } from '../../data/tabular.js';
import { checkOutputPath, writeFileAtomic } from '../../io/write.js';
import { classOneLogits, explainableMlp } from '../../explain/tabular-mlp.js';

/** Largest player count for which the command computes exact values to score against. */
const EXACT_SCORING_LIMIT = 16;

const PLOT_KINDS = ['bar', 'waterfall', 'beeswarm'];

/** One number per player for beeswarm colours: the column value, or the active level's index of a one-hot block. */
function playerFeatureValues(dataset: TabularDataset, xs: Float64Array, rows: number): Float64Array {
  const width = dataset.columns.length, m = dataset.groups.length;
  const out = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) {
    dataset.groups.forEach((g, i) => {
      let best = g.start;
      for (let c = g.start; c < g.end; c++) if (xs[r * width + c]! > xs[r * width + best]!) best = c;
      out[r * m + i] = g.end - g.start === 1 ? xs[r * width + g.start]! : best - g.start;
    });
  }
  return out;
}

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
    { name: 'data', type: 'string', required: true, help: `a preset (${Object.keys(TABULAR_PRESETS).join(', ')}), a CSV file, or mnist (LeNet-5 and its packed binary-weight twin, image patches as players)` },
    { name: 'label', type: 'string', help: 'label column (required for a CSV file)' },
    { name: 'drop', type: 'list', help: 'columns to leave out' },
    { name: 'categorical', type: 'list', help: 'columns to treat as categorical even if they hold numbers' },
    { name: 'method', type: 'choice', choices: METHODS, default: 'shear', help: 'estimator' },
    { name: 'budget', type: 'int', min: 1, default: 8, help: 'model evaluations per feature' },
    { name: 'rows', type: 'int', min: 1, default: 50, help: 'test rows to explain and score' },
    { name: 'background', type: 'int', min: 0, default: 0, help: 'train rows averaged as the background (0: the test-mean reference row)' },
    { name: 'cross-contribution', type: 'choice', choices: ['auto', 'hessian', 'finite-difference'], default: 'auto', help: 'how cooperating features are found' },
    { name: 'epochs', type: 'int', min: 1, help: 'training epochs of the model (default 20 for the tabular MLP, 1 for mnist)' },
    { name: 'seed', type: 'int', min: 0, default: 0, help: 'seed of the MLP and the estimator' },
    { name: 'model', type: 'file', help: 'load the MLP from this file if it exists, else train and save it there' },
    { name: 'data-dir', type: 'file', default: DEFAULT_TABULAR_DIR, help: 'folder of the preset CSV files' },
    { name: 'backend', type: 'choice', choices: ['wasm', 'reference'], help: 'kernels (default: the fastest available)' },
    { name: 'no-exact', type: 'boolean', default: false, help: 'skip scoring against exact Shapley values' },
    { name: 'plot', type: 'file', help: 'write an SVG plot (tabular: --plot-kind; mnist: both heat maps side by side)' },
    { name: 'plot-kind', type: 'choice', choices: PLOT_KINDS, default: 'bar', help: 'tabular plot: bar or waterfall of row 0, beeswarm over the rows' },
    FORCE_OPTION,
    { name: 'image', type: 'int', min: 0, default: 0, help: 'mnist: index of the test image to explain' },
    { name: 'patch', type: 'int', min: 1, max: 28, default: 7, help: 'mnist: side of the square patch players' },
    { name: 'superpixels', type: 'int', min: 0, default: 0, help: 'mnist: use N SLIC superpixels as players instead of patches (0: patches)' },
    { name: 'masker', type: 'choice', choices: MASKERS, default: 'blur', help: 'mnist: what a left-out player is replaced by' },
    { name: 'train-images', type: 'int', min: 1, default: 8000, help: 'mnist: training images for LeNet-5' },
    { name: 'model-dir', type: 'file', help: 'mnist: load the models from this folder if present, else train and save them there' },
    { name: 'mnist-dir', type: 'file', default: DEFAULT_MNIST_DIR, help: 'mnist: folder of the IDX files' },
    THREADS_OPTION,
    JSON_OPTION,
  ],
  examples: ['slimgrad explain --data adult --method shear --budget 8 --rows 20 --plot adult.svg', 'slimgrad explain --data mnist --method shear-antithetic --budget 8 --plot digit.svg'],
};

export const explain = defineCommand(explainSpec, async (flags) => {
    applyThreads(flags);
    const data = flags.string('data')!;
    const method = flags.string('method') as Method;
    const budget = flags.int('budget')!;
    const rowsWanted = flags.int('rows')!;
    const isMnist = flags.string('data') === 'mnist';
    const epochs = flags.int('epochs') ?? (isMnist ? 1 : 20);
    const seed = flags.int('seed')!;
    const backgroundRows = flags.int('background')!;
    const cross = flags.string('cross-contribution')!;
    const json = flags.bool('json');
    const plot = flags.string('plot');
    if (plot) checkOutputPath(plot, { overwrite: flags.bool('force'), what: '--plot' });
    if (isMnist) return explainMnist(flags, method, budget, seed, epochs, plot, json);
    const plotKind = flags.string('plot-kind')!;
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

    if (plot) {
      const title = `${data}: ${method} at ${budget} evaluations/feature`;
      writeFileAtomic(plot, new TextEncoder().encode(plotKind === 'beeswarm'
        ? beeswarmPlot({ players: first.players, values: Float64Array.from(explainer.explainMany(xs, n, opts).flatMap((e) => Array.from(e.values))), features: playerFeatureValues(dataset, xs, n) }, { title: `${title}, ${n} rows` })
        : plotKind === 'waterfall' ? waterfallPlot({ players: first.players, values: first.values, base: base!, output: fx }, { title: `${title}, row 0` })
          : barPlot({ players: first.players, values: first.values }, { title: `${title}, row 0` })), { overwrite: flags.bool('force'), what: '--plot' });
      log(`plot: ${plotKind} written to ${plot}`);
    }

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
