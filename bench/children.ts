/**
 * Independent bench runs (one training run each) in fresh processes of the bench entry, a few at
 * a time: campaigns of long runs use every core without threads sharing one arena.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs `slimgrad bench <args>` in a fresh process (same Node flags: tsx) and parses the JSON
 * object on its last stdout line; `what` names the run in the error when it fails.
 */
export function inBenchChild<R>(args: string[], what: string): Promise<R> {
  const entry = fileURLToPath(new URL('./main.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`${what} failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`));
      else resolve(JSON.parse(last) as R);
    });
  });
}

/** `run` over `specs`, at most `jobs` at a time; results in the order of `specs`. */
export async function mapConcurrent<S, R>(specs: S[], jobs: number, run: (spec: S) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      results[i] = await run(specs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, specs.length) }, worker));
  return results;
}
