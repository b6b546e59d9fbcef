import { resolve } from 'node:path';
import { getBackend } from '../../backends/index.js';
import { loadSplits } from '../../data/splits.js';
import { loadModule, loadTrainingCheckpoint, readCheckpoint, saveModule, saveTrainingCheckpoint } from '../../io/checkpoint.js';
import { distillation } from '../../quant/distill.js';
import { checkOutputPath } from '../../io/write.js';
import { createModel, MODEL_NAMES } from '../../nn/models.js';
import type { Module } from '../../nn/module.js';
import { Adam, AdamW, LAMB, LARS, SGD, type Optimizer } from '../../optim/optimizer.js';
import { cosineLr, type Schedule } from '../../optim/schedule.js';
import { fit, type Progress, type TrainPosition } from '../../train/trainer.js';
import { ACT_MODES, Compression, parseActSpec } from '../../compress/index.js';
import { arena, ArenaLimitError, parseByteSize, setMemoryLimit } from '../../core/arena.js';
import { applyQuantPreset, quantPresets, quantTrainingLoss, SBNN_SPARSITY, withConstraints } from '../../quant/models.js';
import { withPruning } from '../../quant/prune.js';
import { printJson, UsageError } from '../command.js';
import { DATA_DIR_OPTION, defineCommand, FORCE_OPTION, JSON_OPTION, THREADS_OPTION, type CommandSpec } from '../options.js';
import { applyThreads, dataSplits, DATA_OPTION } from '../shared.js';

export const OPTIMIZERS = ['adam', 'adamw', 'sgd', 'lars', 'lamb'] as const;
export const SCHEDULES = ['cosine', 'constant'] as const;

export function makeOptimizer(name: string, params: ReturnType<Module['parameters']>, lr: number, weightDecay: number): Optimizer {
  switch (name) {
    case 'adam':
      return new Adam(params, { lr, weightDecay });
    case 'adamw':
      return new AdamW(params, { lr, weightDecay });
    case 'sgd':
      return new SGD(params, { lr, momentum: 0.9, weightDecay });
    case 'lars':
      return new LARS(params, { lr, momentum: 0.9, weightDecay });
    case 'lamb':
      return new LAMB(params, { lr, weightDecay });
    default:
      throw new UsageError(`unknown --optimizer '${name}' (available: ${OPTIMIZERS.join(', ')})`);
  }
}

function makeSchedule(name: string, lr: number, steps: number): Schedule | undefined {
  return name === 'cosine' ? cosineLr(lr, steps) : undefined;
}

/** The --quant value as stored with the model: `sbnn:S` / `bnn-sbnn:S` with --sparsity S. */
function sparseQuant(quant: string | undefined, sparsity: number | undefined): string | null {
  if (sparsity === undefined) return quant ?? null;
  if (quant !== 'sbnn' && quant !== 'bnn-sbnn') throw new UsageError(`--sparsity applies to --quant sbnn or bnn-sbnn, got ${quant ? `--quant ${quant}` : 'no --quant'}`);
  return `${quant}:${sparsity}`;
}

/** Builds the model a run (or a checkpoint's metadata) describes, for the data's item shape and classes. */
export function buildModel(model: string, quant: string | undefined, itemShape: readonly number[], classes: number, seed: number): Module {
  try {
    return quant ? applyQuantPreset(model, quant, seed, itemShape, classes) : createModel(model, itemShape, classes, seed);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const MiB = 1024 * 1024;

/** One line of progress, redrawn in place on a terminal. */
function progressLine(p: Progress): string {
  const width = 24, done = Math.round((p.batch / p.batches) * width);
  return `epoch ${p.epoch + 1}/${p.epochs} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} ${p.samplesPerSec.toFixed(0)} samples/s process ${(process.memoryUsage.rss() / MiB).toFixed(0)} MiB (tensors ${(p.liveBytes / MiB).toFixed(1)}, saved ${(p.savedBytes / MiB).toFixed(1)})`;
}

/** Runs training; an allocation over --memory-limit or past 4 GiB becomes one line naming the batch and mode. */
function runFit<T>(batchSize: number, mode: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ArenaLimitError)) throw e;
    const smaller = mode === 'int2' ? 'a smaller --batch-size' : `a smaller --batch-size or --act ${mode === 'off' || mode === 'fp16' || mode === 'int8' ? 'int4 or int2' : 'int2'} (compressed activations)`;
    throw new UsageError(`${e.message} at --batch-size ${batchSize} with --act ${mode}; ${smaller} needs less`);
  }
}

/** Flags that define a run: on --resume they come from the checkpoint and may not be given. */
const RUN_FLAGS = ['model', 'data', 'seed', 'quant', 'sparsity', 'prune', 'prune-channels', 'teacher', 'distill-weight', 'act', 'optimizer', 'lr', 'weight-decay', 'schedule', 'batch-size', 'limit', 'val-split'] as const;

export const trainSpec: CommandSpec = {
  name: 'train',
  summary: 'train a model on a dataset, report test accuracy and memory, optionally save it',
  description: 'With --checkpoint-every N the --save file also holds the optimizer state and the run\'s position, written every N steps; --resume FILE continues such a run bit for bit.',
  options: [
    { name: 'model', type: 'choice', choices: MODEL_NAMES, default: 'lenet', help: 'architecture' },
    DATA_OPTION,
    DATA_DIR_OPTION,
    { name: 'epochs', type: 'int', min: 1, default: 3, help: 'passes over the training data' },
    { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'items per optimizer step' },
    { name: 'lr', type: 'number', above: 0, default: 1e-3, help: 'learning rate' },
    { name: 'optimizer', type: 'choice', choices: OPTIMIZERS, default: 'adam', help: 'optimizer (sgd and lars use momentum 0.9; lars/lamb: large-batch layer-wise trust ratios)' },
    { name: 'weight-decay', type: 'number', min: 0, default: 0, help: 'L2 weight decay (decoupled for adamw)' },
    { name: 'schedule', type: 'choice', choices: SCHEDULES, default: 'cosine', help: 'learning-rate schedule over all steps' },
    { name: 'seed', type: 'int', min: 0, default: 1, help: 'seed of the weights, the data order and the synthetic sets' },
    { name: 'limit', type: 'int', min: 1, help: 'use only the first N items of the train and of the test split (quick runs)' },
    { name: 'val-split', type: 'number', min: 0, max: 1, belowMax: true, default: 0, help: 'fraction of the train split held out (from its end) for per-epoch validation; the test split is untouched' },
    { name: 'patience', type: 'int', min: 1, help: 'stop when validation accuracy has not improved for N epochs (needs --val-split)' },
    { name: 'act', type: 'string', default: 'off', help: `activation compression of the values saved for backward: ${ACT_MODES.join(', ')}; auto:B (average bits B), comet:EB (relative error bound)` },
    { name: 'memory-limit', type: 'string', help: 'cap the tensor arena (bytes, or with a unit: 256MiB, 1GiB); an allocation past it stops training with one line naming the tensor' },
    { name: 'quant', type: 'choice', choices: quantPresets, help: 'train a quantized preset (binary/ternary/int8) of --model mlp, lenet or resnet20 (binary, irnet, fda, dirnet, sbnn, ttq, pternary, hq; bnn-irnet, bnn-dirnet, bnn-fda, bnn-sbnn: the Larq MNIST BNN with those binarizers)' },
    { name: 'sparsity', type: 'number', min: 0.5, max: 1, belowMax: true, help: `with --quant sbnn or bnn-sbnn: the fraction of binary weights at the majority code (default ${SBNN_SPARSITY}); stored with the model` },
    { name: 'prune', type: 'number', min: 0, max: 1, belowMax: true, help: 'magnitude-prune this fraction of all conv/dense weights (every layer but the first and last, spread by LAMP scores), gradually over 10-60 % of the steps (convert stores them sparse)' },
    { name: 'prune-channels', type: 'number', min: 0, max: 1, belowMax: true, help: 'remove this fraction of the output channels of each prunable conv/dense layer (smallest L1 norm, gradually); convert drops them from the deployed model' },
    { name: 'teacher', type: 'file', help: 'distil from this float checkpoint of --model (e.g. for --quant dirnet): cross-entropy plus aligned unit-norm block (or classifier-input) representations' },
    { name: 'distill-weight', type: 'number', min: 0, default: 1, help: 'weight of the --teacher representation terms' },
    { name: 'save', type: 'file', help: 'write the trained model (.safetensors); checked before training starts' },
    FORCE_OPTION,
    { name: 'checkpoint-every', type: 'int', min: 1, help: 'also write the resumable training state to --save every N steps' },
    { name: 'resume', type: 'file', help: 'continue the run saved in this checkpoint (from --checkpoint-every); run flags come from the file, --save gets the training state again' },
    { name: 'max-steps', type: 'int', min: 1, help: 'stop after N optimizer steps in all, as if interrupted (resume later)' },
    THREADS_OPTION,
    JSON_OPTION,
  ],
  examples: [
    'slimgrad train --model lenet --data mnist --data-dir ../shared/data/mnist-t10k --epochs 1 --save lenet.safetensors',
    'slimgrad train --model lenet --quant bnn --data mnist --data-dir ../shared/data/mnist-t10k --epochs 1 --save bnn.safetensors',
    'slimgrad train --model lenet --prune 0.9 --data mnist --data-dir ../shared/data/mnist-t10k --epochs 10 --save pruned.safetensors',
    'slimgrad train --data synthetic --epochs 4 --val-split 0.1 --patience 2 --save run.safetensors --checkpoint-every 100',
  ],
};

/** The run description stored in a training checkpoint's metadata. */
interface RunConfig {
  model: string;
  data: string;
  quant: string | null;
  /** Unstructured (--prune) and channel (--prune-channels) sparsity, null when off. */
  prune?: number | null;
  pruneChannels?: number | null;
  /** --teacher checkpoint and --distill-weight (null: no distillation). */
  teacher?: string | null;
  distillWeight?: number;
  act: string;
  optimizer: string;
  lr: number;
  weightDecay: number;
  schedule: string;
  seed: number;
  batchSize: number;
  epochs: number;
  limit: number | null;
  valSplit: number;
  /** --data-dir as given (the default when resuming). */
  dataDir: string | null;
  itemShape: number[];
  classes: number;
}

export const train = defineCommand(trainSpec, async (o) => {
  applyThreads(o);
  const resumeFile = o.string('resume');
  const save = o.string('save');
  const json = o.bool('json');
  let saved: { config: RunConfig; position: TrainPosition; actStep: number } | null = null;
  if (resumeFile) {
    const given = RUN_FLAGS.filter((f) => o.given(f));
    if (given.length) throw new UsageError(`--${given[0]} is taken from the checkpoint when resuming (--resume ${resumeFile}); leave it out`);
    const meta = readCheckpoint(resumeFile).metadata;
    if (!meta['slimgrad.run']) throw new UsageError(`--resume ${resumeFile}: no training state in this file (write one with --save FILE --checkpoint-every N)`);
    saved = JSON.parse(meta['slimgrad.run']) as { config: RunConfig; position: TrainPosition; actStep: number };
  }
  const cfg: Omit<RunConfig, 'itemShape' | 'classes'> = saved?.config ?? {
    model: o.string('model')!, data: o.string('data')!, quant: sparseQuant(o.string('quant'), o.number('sparsity')), prune: o.number('prune') ?? null, pruneChannels: o.number('prune-channels') ?? null, teacher: o.string('teacher') ?? null, distillWeight: o.number('distill-weight')!,
    act: o.string('act')!, optimizer: o.string('optimizer')!,
    lr: o.number('lr')!, weightDecay: o.number('weight-decay')!, schedule: o.string('schedule')!, seed: o.int('seed')!, batchSize: o.int('batch-size')!,
    epochs: o.int('epochs')!, limit: o.int('limit') ?? null, valSplit: o.number('val-split')!, dataDir: o.string('data-dir') ?? null,
  };
  if (saved && o.given('data-dir')) cfg.dataDir = o.string('data-dir')!;
  if (saved && o.given('epochs')) cfg.epochs = o.int('epochs')!;
  const patience = o.int('patience');
  if (patience !== undefined && !(cfg.valSplit > 0)) throw new UsageError('--patience needs a validation split (--val-split F, e.g. 0.1)');
  const every = o.int('checkpoint-every');
  if (every !== undefined && !save) throw new UsageError('--checkpoint-every needs --save FILE (the checkpoint is written there)');
  // Output paths first: a run must not be lost to a path that cannot be written.
  if (save) checkOutputPath(save, { overwrite: o.bool('force') || (resumeFile !== undefined && resolve(resumeFile) === resolve(save)), what: '--save' });

  const memoryLimit = o.string('memory-limit');
  if (memoryLimit !== undefined) {
    try {
      setMemoryLimit(parseByteSize(memoryLimit, '--memory-limit'));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const { train: trainSet, val, test: testSet } = await dataSplits(cfg.data, cfg.dataDir ?? undefined, cfg.seed, cfg.limit ?? undefined, cfg.valSplit);
  const model = buildModel(cfg.model, cfg.quant ?? undefined, trainSet.itemShape, trainSet.numClasses, cfg.seed);
  let distill: ReturnType<typeof distillation> | null = null;
  if (cfg.teacher) {
    const teacher = buildModel(cfg.model, undefined, trainSet.itemShape, trainSet.numClasses, cfg.seed);
    loadModule(teacher, cfg.teacher);
    try {
      distill = distillation(model, teacher, { weight: cfg.distillWeight ?? 1 });
    } catch (e) {
      throw new UsageError(`--teacher ${cfg.teacher}: ${(e as Error).message}`);
    }
  }
  let actSpec: ReturnType<typeof parseActSpec>;
  try {
    actSpec = parseActSpec(cfg.act, 'train --act');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const actMode = cfg.act;
  // One compression session for the whole run: its step counter keys the stochastic rounding.
  const act = new Compression({ ...actSpec, model, seed: cfg.seed });
  const optimizer = makeOptimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weightDecay);
  const steps = cfg.epochs * Math.ceil(trainSet.length / cfg.batchSize);
  // Binary/ternary presets clip their latent weights after every step (the kernel constraint);
  // scheduled quantizers (IR-Net, FDA) follow the run's progress.
  if (cfg.quant) withConstraints(optimizer, model, steps, saved?.position.steps ?? 0);
  // Pruning masks follow the same step count (applied after the constraints).
  const pruners = [[cfg.prune, false], [cfg.pruneChannels, true]].flatMap(([s, structured]) => {
    if (s === null || s === undefined) return [];
    try {
      return [withPruning(optimizer, model, steps, { sparsity: s as number, structured: structured as boolean }, saved?.position.steps ?? 0).pruner];
    } catch (e) {
      throw new UsageError(`--prune${structured ? '-channels' : ''}: ${(e as Error).message}`);
    }
  });
  if (saved) {
    loadTrainingCheckpoint(resumeFile!, model, optimizer);
    act.step = saved.actStep;
  }
  const config: RunConfig = { ...cfg, itemShape: [...trainSet.itemShape], classes: trainSet.numClasses };
  const metadata = (position?: TrainPosition): Record<string, string> => ({
    model: cfg.model, data: cfg.data, ...(cfg.quant ? { quant: cfg.quant } : {}),
    ...(cfg.prune != null ? { prune: String(cfg.prune) } : {}), ...(cfg.pruneChannels != null ? { pruneChannels: String(cfg.pruneChannels) } : {}), itemShape: JSON.stringify(config.itemShape), classes: String(config.classes), seed: String(cfg.seed),
    ...(cfg.dataDir ? { dataDir: cfg.dataDir } : {}),
    ...(position ? { 'slimgrad.run': JSON.stringify({ config, position, actStep: act.step }) } : {}),
  });
  const tty = process.stderr.isTTY && !json;
  const log = json ? () => {} : (line: string) => console.log(line);
  log(`training ${cfg.model}${cfg.quant ? ` (--quant ${cfg.quant})` : ''} (${model.parameterCount()} parameters) on ${cfg.data}: ${trainSet.length} train${val ? ` / ${val.length} validation` : ''} / ${testSet.length} test items, backend ${getBackend()}, activation compression ${actMode}`);
  if (saved) log(`resuming ${resumeFile} at epoch ${saved.position.epoch + 1}, batch ${saved.position.batch} (step ${saved.position.steps})`);
  const baseRssBytes = process.memoryUsage.rss(); // after import, data load and model build
  const report = runFit(cfg.batchSize, actMode, () => fit(model, trainSet, testSet, {
    epochs: cfg.epochs, batchSize: cfg.batchSize, optimizer, seed: cfg.seed,
    wrapForward: (fn) => act.run(fn),
    // Distillation adds its terms; nested-precision presets train every width at once (once-QAT).
    loss: distill?.loss ?? quantTrainingLoss(model),
    schedule: makeSchedule(cfg.schedule, cfg.lr, steps),
    val, patience,
    resume: saved?.position,
    maxSteps: o.int('max-steps'),
    checkpointEvery: every,
    onCheckpoint: (at) => saveTrainingCheckpoint(save!, model, optimizer, metadata(at), { overwrite: true, what: '--save' }),
    onProgress: tty ? (p) => process.stderr.write(`\r${progressLine(p)}\x1b[K`) : undefined,
    onEpoch: json ? undefined : (e) => {
      if (tty) process.stderr.write('\n');
      console.log(`epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, ${e.valAccuracy !== null ? `validation accuracy ${(e.valAccuracy * 100).toFixed(2)}%, ` : ''}test accuracy ${((e.testAccuracy ?? 0) * 100).toFixed(2)}%, ${e.seconds.toFixed(1)} s`);
    },
  }));
  // Memory as the user sees it: the process's peak resident set (what /usr/bin/time reports),
  // its resident set before the first step, and the arena's high-water next to the ledger.
  const peakRssBytes = process.resourceUsage().maxRSS * 1024, arenaHighWaterBytes = arena().highWaterBytes;
  if (save) {
    // A resumable run stays resumable: its final file holds the training state too.
    if (every || resumeFile) saveTrainingCheckpoint(save, model, optimizer, metadata(report.position), { overwrite: true, what: '--save' });
    else saveModule(model, save, metadata(), { overwrite: true, what: '--save' });
  }
  if (report.stopped) log(report.stopped === 'early-stopping' ? `stopped early: no validation improvement for ${patience} epochs` : `stopped after ${report.steps} steps (--max-steps)${every ? `; continue with --resume ${save}` : ''}`);
  const out = {
    model: cfg.model, data: cfg.data, act: actMode, quant: cfg.quant, epochs: cfg.epochs, batchSize: cfg.batchSize, lr: cfg.lr, optimizer: cfg.optimizer, seed: cfg.seed, backend: getBackend(),
    parameters: model.parameterCount(), trainItems: trainSet.length, valItems: val?.length ?? 0, testItems: testSet.length,
    testAccuracy: report.testAccuracy, testLoss: report.testLoss, trainLoss: report.trainLoss,
    valAccuracy: report.epochs.at(-1)?.valAccuracy ?? null, stopped: report.stopped,
    samplesPerSec: report.samplesPerSec, peakSavedBytes: report.peakSavedBytes, peakBytes: report.peakBytes,
    arenaHighWaterBytes, peakRssBytes, baseRssBytes, memoryLimitBytes: Number.isFinite(arena().limitBytes) ? arena().limitBytes : null,
    seconds: report.seconds, steps: report.steps, saved: save ?? null,
    ...(pruners.length ? { sparsity: Object.fromEntries(pruners.map((p) => [p.structured ? 'channels' : 'weights', p.achieved()])) } : {}),
    // auto:B: the allocation in force at the end (bits per controlled save, module path = layer).
    ...(act.allocation() ? { actAllocation: act.allocation() } : {}),
  };
  if (json) printJson(out);
  else {
    const tested = report.testAccuracy === null ? 'test accuracy - (not evaluated: stopped mid-epoch)' : `test accuracy ${(report.testAccuracy * 100).toFixed(2)}%`;
    console.log(`${tested}  train loss ${report.trainLoss.toFixed(4)}  ${report.samplesPerSec.toFixed(0)} samples/s`);
    console.log(`peak saved-for-backward ${(report.peakSavedBytes / MiB).toFixed(2)} MiB, peak tracked memory ${(report.peakBytes / MiB).toFixed(2)} MiB, arena high-water ${(arenaHighWaterBytes / MiB).toFixed(1)} MiB, process peak ${(peakRssBytes / MiB).toFixed(0)} MiB (${(baseRssBytes / MiB).toFixed(0)} MiB before training)${save ? `, saved model to ${save}` : ''}`);
  }
  model.dispose();
  optimizer.dispose();
  return 0;
});
