/** Saving and loading a module's state dict as a .safetensors file (Node file I/O). */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Module } from '../nn/module.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

export function saveModule(m: Module, path: string, metadata: Record<string, string> = {}): number {
  const bytes = encodeSafetensors(m.stateDict(), metadata);
  writeFileSync(path, bytes);
  return bytes.length;
}

/** Loads a file written by `saveModule` into `m` (names and shapes must match exactly). */
export function loadModule(m: Module, path: string): Record<string, string> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read model file ${path}: ${(e as Error).message}`);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  try {
    m.loadStateDict(tensors);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return metadata;
}
