/**
 * One training-throughput case of `slimgrad bench engine` (part b): a model trained with plain SGD
 * on fixed random data for a few seconds, on slimgrad or tfjs. Run by bench/engine.ts in a child
 * process (SLIMGRAD_BENCH_CASE holds the case; the row goes back over IPC) so that the peak RSS
 * is that of the case alone.
 */
import { backward } from '../src/autograd/backward.js';
import { scope } from '../src/core/scope.js';
import { fromValues, type Tensor } from '../src/core/tensor.js';
import { createModel } from '../src/nn/models.js';
import { crossEntropy } from '../src/ops/nnops.js';
import { SGD } from '../src/optim/optimizer.js';
import { useFastestBackend } from '../src/backends/index.js';
import { Rng } from '../src/util/rng.js';

export const TRAIN_MODELS = ['mlp', 'cnn', 'resnet20'] as const;
/** The models `bench engine` trains; `bench browser` also times LeNet-5 with the same steps. */
export type TrainModel = (typeof TRAIN_MODELS)[number] | 'lenet';

export interface TrainCase {
  model: TrainModel;
  engine: 'slimgrad' | 'tfjs-cpu' | 'tfjs-wasm';
  threads: number;
  /** Seconds of timed steps (after one warm-up step; at least one timed step). */
  seconds: number;
}

export interface TrainRow extends Omit<TrainCase, 'seconds' | 'engine'> {
  engine: TrainCase['engine'] | 'pytorch';
  batch: number;
  samplesPerSec: number | null;
  peakRssBytes: number | null;
  /**
   * CPU time of the whole process per step (all threads: the caller, kernel workers, GC), in ms;
   * null where not measured (PyTorch). With 2 threads, CPU time over wall time shows how much of a
   * second core the step used.
   */
  cpuMsPerStep: number | null;
  /** Why the case could not run (e.g. a kernel tfjs lacks), else null. */
  error: string | null;
}

/** Input shape [C, H, W], batch size and slimgrad model name of each benchmark model. */
export const TRAIN_SPECS: Record<TrainModel, { shape: [number, number, number]; batch: number; slimgrad: string }> = {
  mlp: { shape: [1, 28, 28], batch: 64, slimgrad: 'mlp' },
  cnn: { shape: [1, 28, 28], batch: 64, slimgrad: 'cnn' },
  resnet20: { shape: [3, 32, 32], batch: 64, slimgrad: 'resnet20' },
  lenet: { shape: [1, 28, 28], batch: 64, slimgrad: 'lenet' },
};
const CLASSES = 10;
const LR = 0.01;

/** Fixed random inputs (NCHW) and labels. */
function randomBatch(model: TrainModel): { x: Float32Array; y: Int32Array } {
  const { shape, batch } = TRAIN_SPECS[model];
  const rng = new Rng(42);
  const x = new Float32Array(batch * shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = rng.int(CLASSES);
  return { x, y };
}

/** Seconds per call of `step` after one warm-up call, over at least `seconds` (>= 1 timed call). */
export async function timeSteps(step: () => void | Promise<void>, seconds: number): Promise<number> {
  await step();
  let reps = 0;
  const t0 = performance.now();
  while (reps < 1 || performance.now() - t0 < seconds * 1000) {
    await step();
    reps++;
  }
  return (performance.now() - t0) / 1000 / reps;
}

/** One SGD step of slimgrad's `model` on a fixed random batch (the backend selected by the caller). */
export function slimgradStep(model: TrainModel): () => void {
  const { shape, batch, slimgrad } = TRAIN_SPECS[model];
  const net = createModel(slimgrad, shape, CLASSES, 0);
  net.train();
  const opt = new SGD(net.parameters(), { lr: LR });
  const data = randomBatch(model);
  const x: Tensor = fromValues(data.x, [batch, ...shape]);
  const y: Tensor = fromValues(data.y, [batch], 'int32');
  return () =>
    scope(() => {
      const loss = crossEntropy(net.call(x), y);
      backward(loss);
      opt.step();
      opt.zeroGrad();
    });
}

type Tf = typeof import('@tensorflow/tfjs');

/** The same architectures in tfjs layers (NHWC). */
function tfjsModel(tf: Tf, model: TrainModel): import('@tensorflow/tfjs').LayersModel {
  const [c, h, w] = TRAIN_SPECS[model].shape;
  const input = tf.input({ shape: [h, w, c] });
  let t: import('@tensorflow/tfjs').SymbolicTensor;
  const relu = (x: typeof t) => tf.layers.reLU().apply(x) as typeof t;
  const conv = (x: typeof t, filters: number, kernelSize: number, strides = 1, padding: 'same' | 'valid' = 'same', useBias = true) =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding, useBias }).apply(x) as typeof t;
  const bn = (x: typeof t) => tf.layers.batchNormalization().apply(x) as typeof t;
  if (model === 'mlp') {
    t = tf.layers.flatten().apply(input) as typeof t;
    t = relu(tf.layers.dense({ units: 512 }).apply(t) as typeof t);
    t = relu(tf.layers.dense({ units: 512 }).apply(t) as typeof t);
  } else if (model === 'lenet') {
    t = tf.layers.maxPooling2d({ poolSize: 2 }).apply(relu(conv(input, 6, 5, 1, 'same'))) as typeof t;
    t = tf.layers.maxPooling2d({ poolSize: 2 }).apply(relu(conv(t, 16, 5, 1, 'valid'))) as typeof t;
    t = tf.layers.flatten().apply(t) as typeof t;
    t = relu(tf.layers.dense({ units: 120 }).apply(t) as typeof t);
    t = relu(tf.layers.dense({ units: 84 }).apply(t) as typeof t);
  } else if (model === 'cnn') {
    t = tf.layers.maxPooling2d({ poolSize: 2 }).apply(relu(conv(input, 32, 3, 1, 'valid'))) as typeof t;
    t = tf.layers.maxPooling2d({ poolSize: 2 }).apply(relu(conv(t, 64, 3, 1, 'valid'))) as typeof t;
    t = tf.layers.flatten().apply(t) as typeof t;
    t = relu(tf.layers.dense({ units: 128 }).apply(t) as typeof t);
  } else {
    t = relu(bn(conv(input, 16, 3, 1, 'same', false)));
    let channels = 16;
    for (const [width, stride] of [[16, 1], [32, 2], [64, 2]] as const) {
      for (let i = 0; i < 3; i++) {
        const s = i === 0 ? stride : 1;
        const body = bn(conv(relu(bn(conv(t, width, 3, s, 'same', false))), width, 3, 1, 'same', false));
        const shortcut = s !== 1 || channels !== width ? bn(conv(t, width, 1, s, 'same', false)) : t;
        t = relu(tf.layers.add().apply([body, shortcut]) as typeof t);
        channels = width;
      }
    }
    t = tf.layers.globalAveragePooling2d({}).apply(t) as typeof t;
  }
  const logits = tf.layers.dense({ units: CLASSES }).apply(t) as typeof t;
  return tf.model({ inputs: input, outputs: logits });
}

/** The same step in tfjs (NHWC); in a page, the wasm backend's binaries must sit next to the script. */
export async function tfjsStep(model: TrainModel, backend: 'cpu' | 'wasm'): Promise<() => void> {
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend '${backend}' failed to initialize`);
  await tf.ready();
  const { shape: [c, h, w], batch } = TRAIN_SPECS[model];
  const data = randomBatch(model);
  const x = tf.tidy(() => tf.tensor4d(data.x, [batch, c, h, w]).transpose([0, 2, 3, 1]));
  const y = tf.oneHot(tf.tensor1d(data.y, 'int32'), CLASSES);
  const net = tfjsModel(tf, model);
  const opt = tf.train.sgd(LR);
  return () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, net.apply(x, { training: true }) as import('@tensorflow/tfjs').Tensor) as import('@tensorflow/tfjs').Scalar, true);
    loss!.dataSync();
    loss!.dispose();
  };
}

/** Runs one case in this process and returns its row. */
export async function runTrainCase(c: TrainCase): Promise<TrainRow> {
  const base = { model: c.model, engine: c.engine, threads: c.threads, batch: TRAIN_SPECS[c.model].batch };
  try {
    let step: () => void;
    if (c.engine === 'slimgrad') {
      useFastestBackend();
      step = slimgradStep(c.model);
    } else {
      step = await tfjsStep(c.model, c.engine === 'tfjs-cpu' ? 'cpu' : 'wasm');
    }
    await step(); // warm-up outside the CPU window (timeSteps warms up once more)
    const cpu0 = process.cpuUsage();
    let steps = 0;
    const sec = await timeSteps(() => {
      steps++;
      return step();
    }, c.seconds);
    const cpu = process.cpuUsage(cpu0);
    return { ...base, samplesPerSec: base.batch / sec, peakRssBytes: process.resourceUsage().maxRSS * 1024, cpuMsPerStep: (cpu.user + cpu.system) / 1000 / steps, error: null };
  } catch (e) {
    return { ...base, samplesPerSec: null, peakRssBytes: null, cpuMsPerStep: null, error: (e as Error).message.split('\n')[0]! };
  }
}

// Bundled into `bench browser`'s page too, where there is no process.
const requested = typeof process !== 'undefined' ? process.env.SLIMGRAD_BENCH_CASE : undefined;
if (requested && process.send) {
  const row = await runTrainCase(JSON.parse(requested) as TrainCase);
  process.send(row, () => process.exit(0));
}
