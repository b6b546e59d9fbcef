/**
 * PyTorch CPU as a peer of `slimgrad bench engine`: each case (a GEMM size or a training model, at
 * a thread count) runs bench/engine_pytorch.py in its own /usr/bin/python3 process, with the
 * thread count pinned for PyTorch's pool (torch.set_num_threads), OpenMP and OpenBLAS
 * (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS), and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed so
 * OpenBLAS picks its kernels for this CPU itself.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./engine_pytorch.py', import.meta.url));

/** Libraries the PyTorch processes reported (engine_pytorch.py `libraries`). */
export interface PytorchLibraries {
  torch: string;
  blas: string[] | null;
  onednn: string | null;
  onednnConvolutions: boolean;
}

export type PytorchCase = { kind: 'gemm'; size: number; threads: number; seconds: number } | { kind: 'train'; model: string; batch: number; threads: number; seconds: number };

export interface PytorchResult {
  gflops?: number;
  samplesPerSec?: number;
  peakRssBytes: number | null;
  libraries: PytorchLibraries | null;
  error: string | null;
}

/** The result of every case when PyTorch cannot be imported here. */
export const NOT_INSTALLED: PytorchResult = { peakRssBytes: null, libraries: null, error: 'PyTorch not installed' };

/** Whether `python3 -c 'import torch'` works here. */
export function pytorchAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
  return r.status === 0;
}

function childEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** Runs one case; a failure (crash, timeout, unparsable output) comes back as `error`. */
export function runPytorchCase(c: PytorchCase, timeoutSec: number): PytorchResult {
  const r = spawnSync(PYTHON, [SCRIPT, JSON.stringify(c)], { env: childEnv(c.threads), encoding: 'utf8', timeout: timeoutSec * 1000 });
  const fail = (error: string): PytorchResult => ({ peakRssBytes: null, libraries: null, error });
  if (r.error) return fail(`could not run ${PYTHON}: ${r.error.message}`);
  if (r.signal) return fail(`timed out after ${timeoutSec} s`);
  if (r.status !== 0) return fail(`exited with code ${r.status}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
  try {
    return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<PytorchResult, 'error'>), error: null };
  } catch {
    return fail(`unparsable output: ${r.stdout.slice(0, 200)}`);
  }
}
