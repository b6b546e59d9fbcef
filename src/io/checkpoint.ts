/** Saving and loading a module's state dict as a .safetensors file (Node file I/O). */
import { readFileSync } from 'node:fs';
import type { Module } from '../nn/module.js';
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from './safetensors.js';
import { writeFileAtomic, type OutputOptions } from './write.js';

/**
 * Entries of a training checkpoint that are not the model's (optimizer state, see src/train/resume.ts)
 * carry this prefix; loadModule skips them, so a checkpoint loads into a model for eval or convert.
 */
export const TRAINING_STATE_PREFIX = 'optimizer/';

/**
 * Writes `m`'s state dict (with a checksum) to `path` through a temporary file; returns the bytes
 * written. `options.overwrite: false` refuses to replace an existing file.
 *
 * @example
 * saveModule(model, 'lenet.safetensors', { model: 'lenet' });
 */
export function saveModule(m: Module, path: string, metadata: Record<string, string> = {}, options: OutputOptions = {}): number {
  return writeFileAtomic(path, encodeSafetensors(m.stateDict(), metadata), options);
}

/** Reads a checkpoint written by slimgrad (checksum required); errors name the file and the field. */
export function readCheckpoint(path: string): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read model file ${path}: ${fsReason(e)}`);
  }
  return decodeSafetensors(bytes, path, { requireChecksum: true });
}

/**
 * Loads a file written by `saveModule` into `m` (names and shapes must match exactly; training
 * state in the file is skipped) and returns its metadata.
 *
 * @example
 * const meta = loadModule(createModel('lenet', [1, 28, 28], 10), 'lenet.safetensors');
 */
export function loadModule(m: Module, path: string): Record<string, string> {
  const { tensors, metadata } = readCheckpoint(path);
  for (const k of [...tensors.keys()]) if (k.startsWith(TRAINING_STATE_PREFIX)) tensors.delete(k);
  try {
    m.loadStateDict(tensors);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return metadata;
}

/** A file-system error in words a user acts on ("permission denied", "no such file or directory"). */
export function fsReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
      return 'no such file or directory';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return err.message;
  }
}
