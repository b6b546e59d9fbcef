/** A module's state dict as safetensors bytes and back: the file-free half of io/checkpoint.ts. */
import type { Module } from '../nn/module.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

/**
 * Entries of a training checkpoint that are not the model's (optimizer state) carry this prefix;
 * loading a model skips them, so a training checkpoint loads into a model for eval or convert.
 */
export const TRAINING_STATE_PREFIX = 'optimizer/';

/** Metadata keys of a training checkpoint's optimizer step count and module random streams. */
export const OPTIMIZER_STEPS_KEY = 'slimgrad.optimizer-steps';
export const RNG_KEY = 'slimgrad.rng';

/**
 * `m`'s state dict as safetensors bytes with slimgrad's checksum (what `saveModule` writes).
 *
 * @example
 * const blob = new Blob([encodeModule(model, { model: 'lenet' })]);
 */
export function encodeModule(m: Module, metadata: Record<string, string> = {}): Uint8Array<ArrayBuffer> {
  return encodeSafetensors(m.stateDict(), metadata) as Uint8Array<ArrayBuffer>;
}

/**
 * Loads safetensors bytes written by slimgrad (checksum required) into `m` (names and shapes must
 * match exactly; training state is skipped) and returns the file's metadata. Errors name `source`.
 *
 * @example
 * decodeModuleInto(createModel('lenet', [1, 28, 28], 10), bytes, 'lenet.safetensors');
 */
export function decodeModuleInto(m: Module, bytes: Uint8Array | ArrayBuffer, source = 'model bytes'): Record<string, string> {
  const { tensors, metadata: { [OPTIMIZER_STEPS_KEY]: _, [RNG_KEY]: __, ...metadata } } = decodeSafetensors(bytes, source, { requireChecksum: true });
  for (const k of [...tensors.keys()]) if (k.startsWith(TRAINING_STATE_PREFIX)) tensors.delete(k);
  try {
    m.loadStateDict(tensors);
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message}`);
  }
  return metadata;
}
