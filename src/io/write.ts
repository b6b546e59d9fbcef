/**
 * Safe output files for models and checkpoints (Node): the path is checked before any work starts,
 * an existing file is kept unless overwriting is asked for, and bytes go to a temporary file in the
 * same directory that is renamed over the target, so a crash never leaves a half-written file.
 *
 * @example
 * checkOutputPath('model.safetensors', { overwrite: false, what: '--save' }); // before training
 * writeFileAtomic('model.safetensors', bytes, { overwrite: false });
 */
import { accessSync, closeSync, constants, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface OutputOptions {
  /** Replace an existing file (default true, as writeFileSync; the CLI passes its --force). */
  overwrite?: boolean;
  /** What the path is, for messages (e.g. '--save'); default 'output'. */
  what?: string;
}

/** Thrown when an output path cannot be written; the message names the path and the reason. */
export class OutputPathError extends Error {
  override readonly name = 'OutputPathError';
}

/** Throws OutputPathError unless `path` can be written as a file now. */
export function checkOutputPath(path: string, options: OutputOptions = {}): void {
  const { overwrite = true, what = 'output' } = options;
  const fail = (why: string): never => {
    throw new OutputPathError(`${what} ${path}: ${why}`);
  };
  const existing = statOrNull(path);
  if (existing?.isDirectory()) fail('is a directory; give a file name');
  if (existing && !overwrite) fail('already exists (pass --force to overwrite it)');
  const dir = dirname(resolve(path));
  const parent = statOrNull(dir);
  if (!parent) fail(`directory ${dirname(path)} does not exist`);
  if (!parent!.isDirectory()) fail(`${dirname(path)} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    fail(`permission denied: directory ${dirname(path)} is not writable`);
  }
}

/** Writes `bytes` to `path` through a temporary file and a rename; returns the bytes written. */
export function writeFileAtomic(path: string, bytes: Uint8Array, options: OutputOptions = {}): number {
  checkOutputPath(path, options);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new OutputPathError(`${options.what ?? 'output'} ${path}: ${err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.code === 'ENOSPC' ? 'no space left on the device' : err.message}`);
  }
  return bytes.length;
}

function statOrNull(path: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}
