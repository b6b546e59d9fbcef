// Compiles the AssemblyScript kernels (kernels/index.ts) to build/*.wasm with the compiler API
// from node_modules. Five builds, all importing the arena's memory (src/core/arena.ts, at most
// 65536 pages) and never allocating (--runtime stub):
//   kernels-relaxed.wasm           SIMD + relaxed SIMD (fused multiply-add), shared memory
//   kernels.wasm                   SIMD, shared memory (threads)
//   kernels-scalar.wasm            no SIMD, shared memory: engines without wasm SIMD
//   kernels-unshared-relaxed.wasm  SIMD + relaxed SIMD, unshared memory
//   kernels-unshared.wasm          SIMD, unshared memory: browsers without cross-origin isolation
// The relaxed builds are picked where the engine validates relaxed SIMD (src/backends/wasm/loader.ts).
// Skips the work when every output is newer than every kernel source and this script.
// `--force` rebuilds anyway; `--wat` also writes the text format next to each module.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'kernels');
const outDir = join(root, 'build');
const common = ['-O3', '--noAssert', '--runtime', 'stub', '--importMemory', '--maximumMemory', '65536'];
const shared = ['--enable', 'threads', '--sharedMemory'];
const relaxed = ['--enable', 'simd', '--enable', 'relaxed-simd'];
const builds = [
  { file: 'kernels-relaxed.wasm', flags: [...relaxed, ...shared] },
  { file: 'kernels.wasm', flags: ['--enable', 'simd', ...shared] },
  { file: 'kernels-scalar.wasm', flags: shared },
  { file: 'kernels-unshared-relaxed.wasm', flags: relaxed },
  { file: 'kernels-unshared.wasm', flags: ['--enable', 'simd'] },
];

const force = process.argv.includes('--force');
const wat = process.argv.includes('--wat');

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -Infinity;
  }
}

const inputs = [fileURLToPath(import.meta.url), ...readdirSync(sourceDir).filter((f) => f.endsWith('.ts')).map((f) => join(sourceDir, f))];
const newestInput = Math.max(...inputs.map(mtime));
const stale = builds.filter((b) => force || mtime(join(outDir, b.file)) < newestInput);
// The quant kernels below have their own staleness check: an up-to-date engine build skips only the loop.
if (stale.length === 0) console.log('build-kernels: up to date');

mkdirSync(outDir, { recursive: true });
for (const b of stale) {
  const out = join(outDir, b.file);
  const argv = [join(sourceDir, 'index.ts'), ...common, ...b.flags, '--outFile', out];
  if (wat) argv.push('--textFile', out.replace(/\.wasm$/, '.wat'));
  const started = performance.now();
  const { error, stderr } = await asc.main(argv, { stdout: process.stdout, stderr: process.stderr });
  if (error) {
    console.error(`build-kernels: ${b.file} failed: ${error.message}\n${stderr.toString()}`);
    process.exit(1);
  }
  console.log(`build-kernels: ${b.file} (${statSync(out).size} bytes, ${Math.round(performance.now() - started)} ms)`);
}

// Quantized-inference kernels (kernels/quant/) build to their own modules.
await import('./build-quant-kernels.mjs');
