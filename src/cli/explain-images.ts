/**
 * `slimgrad explain --data mnist [--image I] [--patch P | --superpixels N] [--masker blur|mean|zero] [--method M] [--budget N]
 *   [--epochs E] [--train-images N] [--model-dir DIR] [--mnist-dir DIR] [--seed S] [--plot FILE.svg] [--json]`
 *
 * Explains test image I's true-class logit for LeNet-5 and for its binary-weight twin packed by
 * quant's convert (run by the deploy runtime as a black box), with patch (or SLIC superpixel) players and a masker;
 * prints the players' values of both (as a grid for patches), their deletion AUC (and gradient x input's for the float model), and
 * with --plot writes both heat maps side by side.
 */
import { writeFileSync } from 'node:fs';
import {
  BudgetError, METHODS, MASKERS, superpixels, deletionCurve, deployedOutput, gradientTimesInput, imageExplainer, imageHeatmap, moduleOutput, pearson,
  type Masker, type Method,
} from '../explain/index.js';
import { printJson, UsageError } from './command.js';
import { DEFAULT_MNIST_DIR, MNIST_SHAPE, prepareMnistModels } from './image-setup.js';
import { chooseBackend, type Flags } from './tabular-setup.js';

export async function explainMnist(flags: Flags, method: Method, budget: number, seed: number, epochs: number, plot: string | undefined, json: boolean): Promise<number> {
  const index = flags.int('image', 0, 0);
  const patch = flags.int('patch', 7);
  const segmentCount = flags.int('superpixels', 0, 0);
  const masker = (flags.string('masker') ?? 'blur') as Masker;
  if (!MASKERS.includes(masker)) throw new UsageError(`explain: --masker must be one of ${MASKERS.join(', ')}, got '${masker}'`);
  if (patch > 28) throw new UsageError(`explain: --patch must be at most 28 (MNIST images are 28x28), got ${patch}`);
  const trainImages = flags.int('train-images', 8000);
  const modelDir = flags.string('model-dir');
  const dir = flags.string('mnist-dir') ?? DEFAULT_MNIST_DIR;
  const backend = chooseBackend(flags);
  flags.checkUnused();
  if (!METHODS.includes(method)) throw new UsageError(`explain: unknown --method '${method}' (${METHODS.join(', ')})`);
  const log = json ? () => {} : (line: string) => console.log(line);
  log(`backend: ${backend}`);
  const models = await prepareMnistModels('explain', dir, epochs, trainImages, seed, modelDir, log);
  if (index >= models.test.length) throw new UsageError(`explain: --image ${index} is past the ${models.test.length} test images`);
  log(`test accuracy: LeNet-5 ${(100 * models.floatAccuracy).toFixed(2)}%, binary-weight twin (packed) ${(100 * models.binaryAccuracy).toFixed(2)}%`);
  const size = models.test.itemSize;
  const image = models.test.x.subarray(index * size, (index + 1) * size);
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
    writeFileSync(plot, imageHeatmap(results.map((r) => ({ title: `${r.model}: ${method}`, image, map: r.map })), { height: 28, width: 28 }));
    log(`plot: ${plot}`);
  }
  printJson({
    data: 'mnist', image: index, label: cls, method, budget, patch, masker, floatAccuracy: models.floatAccuracy, binaryAccuracy: models.binaryAccuracy,
    mapCorrelation: correlation, models: results.map(({ map: _map, ...r }) => r),
  });
  return 0;
}
