/** Messages between the page (client.ts) and the training worker (worker.ts). */
import type { TrainResult, TrainSpec } from './tasks.js';

/** Files the user dropped: MNIST IDX images and labels (raw or gzipped), split into train/test by count. */
export interface DroppedMnist {
  images: Blob;
  labels: Blob;
  /** Items used for training; the rest (up to testItems) for testing. */
  trainItems: number;
  testItems: number;
}

export interface Commands {
  /** Loads the kernels and starts `threads` threads (default: all cores when cross-origin isolated). */
  init: { args: { threads?: number }; result: { backend: string; variant: string | undefined; threads: number; sharedMemory: boolean; quantKernels: boolean; crossOriginIsolated: boolean } };
  /** Restarts the kernel threads with `n` in all; resolves to the threads running. */
  threads: { args: { n: number }; result: number };
  /** Trains (progress events as it goes) and keeps the model for convert/download. */
  train: { args: { spec: TrainSpec; mnist?: DroppedMnist }; result: TrainResult & { parameters: number; trainItems: number; testItems: number; classes: string[] } };
  /** Saved-for-backward bytes of one step per mode. */
  saved: { args: { model: TrainSpec['model']; modes: string[]; batch: number; seed: number }; result: Record<string, number> };
  /** Converts the trained model to the packed runtime; its SGQM bytes and test accuracy there. */
  convert: { args: Record<string, never>; result: { sgqBytes: number; floatBytes: number; packedAccuracy: number; agreement: number } };
  /** Predictions of an SGQM model (bytes) on synthetic test items. */
  predict: { args: { sgq: Uint8Array; spec: Pick<TrainSpec, 'trainItems' | 'testItems' | 'seed'> }; result: number[] };
  /** Class scores of a 28x28 image under the converted model. */
  classify: { args: { pixels: Float32Array }; result: number[] };
  /** The trained model as safetensors, or the converted one as SGQM. */
  download: { args: { what: 'safetensors' | 'sgq' }; result: Blob };
}

export type Command = keyof Commands;

export type Request = { [C in Command]: { id: number; cmd: C; args: Commands[C]['args'] } }[Command];

export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string }
  | { event: 'progress'; epoch: number; batch: number; batches: number; loss: number; savedBytes: number; samplesPerSec: number }
  | { event: 'epoch'; epoch: number; epochs: number; testAccuracy: number | null; trainLoss: number };
