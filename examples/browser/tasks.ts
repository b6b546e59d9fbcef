/**
 * What the page's worker computes, written once against the platform-neutral API so that Node runs
 * the very same code for comparison (test/browser/page.test.ts, `slimgrad bench browser`).
 */
import {
  Adam, Compression, createModel, Dataset, decodeModuleInto, encodeModule, fit, measureStep, parseActSpec, quant,
  syntheticShapes, crossEntropy, fromValues, type Module, type Progress, type EpochReport,
} from '../../src/portable.js';

/** Models the page offers: MLP, LeNet-5, the Larq MNIST BNN. */
export const PAGE_MODELS = ['mlp', 'lenet', 'bnn'] as const;
export type PageModel = (typeof PAGE_MODELS)[number];

export interface TrainSpec {
  model: PageModel;
  /** Activation compression mode (`train --act`): off, int8, int4, int2, ... */
  act: string;
  epochs: number;
  batchSize: number;
  seed: number;
  lr: number;
  /** Items of the synthetic set used for training and for testing (ignored with `data`). */
  trainItems: number;
  testItems: number;
}

/** The synthetic train and test splits of a spec (the same items in Node and in the page). */
export function syntheticSplits(spec: Pick<TrainSpec, 'trainItems' | 'testItems' | 'seed'>): [Dataset, Dataset] {
  return syntheticShapes({ n: spec.trainItems + spec.testItems, seed: spec.seed }).split(spec.trainItems);
}

/** The model of a spec for items of `itemShape`. */
export function buildModel(name: PageModel, itemShape: readonly number[], classes: number, seed: number): Module {
  return name === 'bnn' ? quant.applyQuantPreset('lenet', 'bnn', seed, itemShape, classes) : createModel(name, itemShape, classes, seed);
}

export interface TrainResult {
  testAccuracy: number;
  trainLoss: number;
  samplesPerSec: number;
  peakSavedBytes: number;
  seconds: number;
  /** SHA-256 of the trained weights as safetensors bytes (equal hashes: bit-identical weights). */
  weightsSha256: string;
}

/** Hex SHA-256 (WebCrypto: the same call in Node and in the page). */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Trains a model as `slimgrad train` does (Adam, one compression session for the run, kernel
 * constraints for the BNN) and returns the model with its report.
 */
export async function trainModel(
  spec: TrainSpec,
  data: [Dataset, Dataset],
  hooks: { onProgress?: (p: Progress) => void; onEpoch?: (e: EpochReport) => void } = {},
): Promise<{ model: Module; result: TrainResult }> {
  const [train, test] = data;
  const model = buildModel(spec.model, train.itemShape, train.numClasses, spec.seed);
  const act = new Compression({ ...parseActSpec(spec.act, 'act'), model, seed: spec.seed });
  let optimizer = new Adam(model.parameters(), { lr: spec.lr });
  if (spec.model === 'bnn') optimizer = quant.withConstraints(optimizer, model);
  const report = fit(model, train, test, {
    epochs: spec.epochs, batchSize: spec.batchSize, optimizer, seed: spec.seed,
    wrapForward: (fn) => act.run(fn), onProgress: hooks.onProgress, onEpoch: hooks.onEpoch,
  });
  optimizer.dispose();
  const result: TrainResult = {
    testAccuracy: report.testAccuracy ?? 0, trainLoss: report.trainLoss, samplesPerSec: report.samplesPerSec,
    peakSavedBytes: report.peakSavedBytes, seconds: report.seconds, weightsSha256: await sha256(encodeModule(model)),
  };
  return { model, result };
}

/**
 * Saved-for-backward bytes of one training step of `model` at `batch` items under each mode (the
 * ledger's count, exact): the number behind "int2 cuts saved memory by N x".
 */
export function savedBytesByMode(name: PageModel, modes: readonly string[], batch: number, seed: number): Record<string, number> {
  const [train] = syntheticSplits({ trainItems: batch, testItems: 0, seed });
  const model = buildModel(name, train.itemShape, train.numClasses, seed);
  const x = fromValues(train.values(0, batch), [batch, ...train.itemShape]);
  const y = fromValues(train.y.subarray(0, batch), [batch], 'int32');
  const out: Record<string, number> = {};
  for (const mode of modes) {
    const session = new Compression({ ...parseActSpec(mode, 'act'), model, seed });
    out[mode] = measureStep(() => crossEntropy(model.call(x), y), batch, session).savedBytes;
    for (const p of model.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }
  x.dispose();
  y.dispose();
  model.dispose();
  return out;
}

/** Predicted classes of a deployed model on items [from, to) of `data` (the packed runtime). */
export function predictDeployed(deployed: quant.DeployedModel, data: Dataset, from = 0, to = data.length, batch = 256): Int32Array {
  const out = new Int32Array(to - from);
  for (let i = from; i < to; i += batch) {
    const n = Math.min(batch, to - i);
    const { data: logits, shape } = quant.runDeployed(deployed, data.values(i, i + n), [n, ...data.itemShape]);
    const classes = shape[1]!;
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (logits[r * classes + c]! > logits[r * classes + best]!) best = c;
      out[i - from + r] = best;
    }
  }
  return out;
}

/** Class scores of one image (a drawn digit) under a deployed model. */
export function classifyImage(deployed: quant.DeployedModel, pixels: Float32Array): number[] {
  return [...quant.runDeployed(deployed, pixels, [1, ...deployed.inputShape]).data];
}

/** A model of `name` with the weights of `bytes` (safetensors written by encodeModule). */
export function modelFromBytes(name: PageModel, bytes: Uint8Array, itemShape: readonly number[], classes: number): Module {
  const model = buildModel(name, itemShape, classes, 0);
  decodeModuleInto(model, bytes, `${name}.safetensors`);
  return model;
}
