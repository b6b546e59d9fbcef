/** Saving and loading a module's state dict as a .safetensors file (Node file I/O). */
import { readFileSync } from 'node:fs';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { Tensor } from '../core/tensor.js';
import { Rng } from '../util/rng.js';
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from './safetensors.js';
import { writeFileAtomic, type OutputOptions } from './write.js';
import { decodeModuleInto, encodeModule, OPTIMIZER_STEPS_KEY, RNG_KEY, TRAINING_STATE_PREFIX } from './state.js';

export { TRAINING_STATE_PREFIX };

/**
 * Writes `m`'s state dict (with a checksum) to `path` through a temporary file; returns the bytes
 * written. `options.overwrite: false` refuses to replace an existing file.
 *
 * @example
 * saveModule(model, 'lenet.safetensors', { model: 'lenet' });
 */
export function saveModule(m: Module, path: string, metadata: Record<string, string> = {}, options: OutputOptions = {}): number {
  return writeFileAtomic(path, encodeModule(m, metadata), options);
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read model file ${path}: ${fsReason(e)}`);
  }
}

/** Reads a checkpoint written by slimgrad (checksum required); errors name the file and the field. */
export function readCheckpoint(path: string): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  return decodeSafetensors(readBytes(path), path, { requireChecksum: true });
}

/**
 * Loads a file written by `saveModule` into `m` (names and shapes must match exactly; training
 * state in the file is skipped) and returns its metadata.
 *
 * @example
 * const meta = loadModule(createModel('lenet', [1, 28, 28], 10), 'lenet.safetensors');
 */
export function loadModule(m: Module, path: string): Record<string, string> {
  return decodeModuleInto(m, readBytes(path), path);
}

/** Positions of the random streams modules draw from while training (Dropout masks), by module path. */
function rngPositions(m: Module): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [path, mod] of m.namedModules()) {
    const rng = (mod as { rng?: unknown }).rng;
    if (rng instanceof Rng) out[path] = rng.position;
  }
  return out;
}

/**
 * Writes a training checkpoint: the model's state dict, the optimizer's state (step count and
 * moments/momentum, under `optimizer/`), the positions of the modules' random streams (Dropout
 * masks) and string metadata (the caller's run description and position), atomically. loadModule reads it as a plain model file.
 *
 * @example
 * saveTrainingCheckpoint('run.safetensors', model, opt, { position: JSON.stringify(report.position) });
 */
export function saveTrainingCheckpoint(path: string, m: Module, optimizer: Optimizer, metadata: Record<string, string>, options: OutputOptions = {}): number {
  const { steps, tensors } = optimizer.stateDict();
  const all = new Map<string, Tensor>(m.stateDict());
  for (const [k, t] of tensors) all.set(`${TRAINING_STATE_PREFIX}${k}`, t);
  return writeFileAtomic(path, encodeSafetensors(all, { ...metadata, [OPTIMIZER_STEPS_KEY]: String(steps), [RNG_KEY]: JSON.stringify(rngPositions(m)) }), options);
}

/**
 * Restores a training checkpoint into `m` and `optimizer` (built as for the original run) and
 * returns its metadata; a file without optimizer state is refused.
 *
 * @example
 * const meta = loadTrainingCheckpoint('run.safetensors', model, opt);
 * fit(model, train, test, { ...options, optimizer: opt, resume: JSON.parse(meta.position) });
 */
export function loadTrainingCheckpoint(path: string, m: Module, optimizer: Optimizer): Record<string, string> {
  const { tensors, metadata } = readCheckpoint(path);
  const { [OPTIMIZER_STEPS_KEY]: steps, [RNG_KEY]: rngs, ...rest } = metadata;
  if (steps === undefined) throw new Error(`${path}: no training state in this file (write one with train --checkpoint-every N)`);
  const opt = new Map<string, StoredTensor>();
  for (const [k, t] of [...tensors]) {
    if (!k.startsWith(TRAINING_STATE_PREFIX)) continue;
    opt.set(k.slice(TRAINING_STATE_PREFIX.length), t);
    tensors.delete(k);
  }
  try {
    m.loadStateDict(tensors);
    optimizer.loadStateDict({ steps: Number(steps), tensors: opt });
    const positions = JSON.parse(rngs ?? '{}') as Record<string, number>;
    const mine = rngPositions(m);
    for (const [p, mod] of m.namedModules()) {
      if (!(p in mine)) continue;
      if (!(p in positions)) throw new Error(`no random-stream position for module '${p}' in the file`);
      ((mod as unknown as { rng: Rng }).rng).seek(positions[p]!);
    }
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return rest;
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
