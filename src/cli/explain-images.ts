/**
 * `slimgrad explain --data mnist [--image I] [--patch P | --superpixels N] [--masker blur|mean|zero] [--method M] [--budget N]
 *   [--epochs E] [--train-images N] [--model-dir DIR] [--mnist-dir DIR] [--seed S] [--plot FILE.svg] [--json]`
 *
 * Explains test image I's true-class logit for LeNet-5 and for its binary-weight twin packed by
 * quant's convert (run by the deploy runtime as a black box), with patch (or SLIC superpixel) players and a masker;
 * prints the players' values of both (as a grid for patches), their deletion AUC (and gradient x input's for the float model), and
 * with --plot writes both heat maps side by side.
 */
import { writeFileAtomic } from '../io/write.js';
import {
  BudgetError, superpixels, deletionCurve, deployedOutput, gradientTimesInput, imageExplainer, imageHeatmap, moduleOutput, pearson,
  type Masker, type Method,
} from '../explain/index.js';
import { printJson, UsageError } from './command.js';
import { MNIST_SHAPE, prepareMnistModels } from './image-setup.js';
import type { ParsedOptions } from './options.js';
import { chooseBackend } from './tabular-setup.js';

/** `explain --data mnist`: `flags` are the explain command's parsed options (the mnist ones are in its table). */
export async function explainMnist(flags: ParsedOptions, method: Method, budget: number, seed: number, epochs: number, plot: string | undefined, json: boolean): Promise<number> {
  const index = flags.int('image')!;
  const patch = flags.int('patch')!;
  const segmentCount = flags.int('superpixels')!;
  const masker = flags.string('masker') as Masker;
  const trainImages = flags.int('train-images')!;
  const modelDir = flags.string('model-dir');
  const dir = flags.string('mnist-dir')!;
  // LeNet-5 (ReLU) and its packed twin (a black box) have no third derivatives.
  if (method === 'shear-cv') throw new UsageError('explain: --method shear-cv needs a smooth model with third derivatives (the tabular MLP); for mnist use shear-antithetic or antithetic');
  const backend = chooseBackend(flags);
  const log = json ? () => {} : (line: string) => console.log(line);
  log(`backend: ${backend}`);
  const models = await prepareMnistModels('explain', dir, epochs, trainImages, seed, modelDir, log);
  if (index >= models.test.length) throw new UsageError(`explain: --image ${index} is past the ${models.test.length} test images`);
  log(`test accuracy: LeNet-5 ${(100 * models.floatAccuracy).toFixed(2)}%, binary-weight twin (packed) ${(100 * models.binaryAccuracy).toFixed(2)}%`);
  const image = models.test.values(index, index + 1);
  const cls = models.test.y[index]!;
  const segments = segmentCount > 0 ? superpixels(image, MNIST_SHAPE, segmentCount) : undefined;
  const results = [];
  for (const [name, model] of [['LeNet-5', moduleOutput(models.float, MNIST_SHAPE, cls)], ['binary LeNet-5 (packed)', deployedOutput(models.deployed, cls)]] as const) {
    const setup = imageExplainer(model, image, MNIST_SHAPE, { patch, masker, meanImage: models.meanImage, ...(segments ? { segments } : {}) });
    let e;
    try {
      e = setup.explainer.explain(setup.x, { method, budget, seed });
    } catch (err) {
      if (err instanceof BudgetError) throw new UsageError(`explain: ${err.message}`);
      throw err;
    }
    const game = () => setup.explainer.game(setup.x);
    const gxi = name === 'LeNet-5' ? gradientTimesInput(models.float, image, setup, cls) : null;
    const result = {
      model: name, values: Array.from(e.values), evaluations: e.evaluations, seconds: e.seconds,
      deletionAuc: deletionCurve(game(), e.values).deletionAuc, ...(gxi ? { gradientTimesInputDeletionAuc: deletionCurve(game(), gxi).deletionAuc } : {}),
      map: setup.toMap(e.values),
    };
    results.push(result);
    log(`\n${name}, image ${index} (label ${cls}): ${method} at ${budget} evaluations/player, ${e.values.length} ${segments ? 'superpixels' : 'patches'} (${e.evaluations} evaluations, ${e.seconds.toFixed(2)}s), ${masker} masker; deletion AUC ${result.deletionAuc.toFixed(3)}${gxi ? ` (gradient x input: ${result.gradientTimesInputDeletionAuc!.toFixed(3)})` : ''}`);
    const { rows, cols } = setup.players.grid ?? { rows: 1, cols: e.values.length };
    for (let r = 0; r < rows; r++) log(`  ${Array.from(e.values.subarray(r * cols, (r + 1) * cols), (v) => (v >= 0 ? '+' : '') + v.toFixed(3)).map((s) => s.padStart(8)).join(' ')}`);
  }
  const correlation = pearson(results[0]!.values, results[1]!.values);
  log(`\ncorrelation of the two patch maps: ${correlation.toFixed(3)}`);
  if (plot) {
    writeFileAtomic(plot, new TextEncoder().encode(imageHeatmap(results.map((r) => ({ title: `${r.model}: ${method}`, image, map: r.map })), { height: 28, width: 28 })), { overwrite: flags.bool('force'), what: '--plot' });
    log(`plot: ${plot}`);
  }
  printJson({
    data: 'mnist', image: index, label: cls, method, budget, patch, masker, floatAccuracy: models.floatAccuracy, binaryAccuracy: models.binaryAccuracy,
    mapCorrelation: correlation, models: results.map(({ map: _map, ...r }) => r),
  });
  return 0;
}
