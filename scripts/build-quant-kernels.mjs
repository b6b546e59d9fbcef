// Compiles the quantized-inference kernels (kernels/quant/index.ts, AssemblyScript) to
// build/quant.wasm (SIMD, shared memory: Node and cross-origin-isolated browsers) and
// build/quant-unshared.wasm (SIMD, unshared memory), each also with relaxed SIMD (fused
// multiply-adds in the float GEMMs: quant-relaxed.wasm, quant-unshared-relaxed.wasm), all
// importing the arena's memory and never allocating. Engines without wasm SIMD use the TypeScript
// kernels (src/quant/kernels.ts).
// Same flags as scripts/build-kernels.mjs; kept separate so the two kernel sets build independently.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'kernels', 'quant', 'index.ts');
const outDir = join(root, 'build');
const common = ['-O3', '--noAssert', '--runtime', 'stub', '--importMemory', '--maximumMemory', '65536', '--enable', 'simd'];
const shared = ['--enable', 'threads', '--sharedMemory'];
const relaxed = ['--enable', 'relaxed-simd'];
const builds = [
  { file: 'quant.wasm', flags: shared },
  { file: 'quant-relaxed.wasm', flags: [...relaxed, ...shared] },
  { file: 'quant-unshared.wasm', flags: [] },
  { file: 'quant-unshared-relaxed.wasm', flags: relaxed },
];
const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -Infinity;
  }
};
// kernels/madd.ts is shared with the engine kernels.
const sources = [...readdirSync(dirname(source)).filter((f) => f.endsWith('.ts')).map((f) => join(dirname(source), f)), join(root, 'kernels', 'madd.ts')];
const newest = Math.max(...sources.map(mtime), mtime(fileURLToPath(import.meta.url)));
mkdirSync(outDir, { recursive: true });
for (const b of builds) {
  const out = join(outDir, b.file);
  if (!process.argv.includes('--force') && mtime(out) >= newest) continue;
  const { error, stderr } = await asc.main([source, ...common, ...b.flags, '--outFile', out], { stdout: process.stdout, stderr: process.stderr });
  if (error) {
    console.error(`build-quant-kernels: ${b.file} failed: ${error.message}\n${stderr.toString()}`);
    process.exit(1);
  }
  console.log(`build-quant-kernels: ${b.file} (${statSync(out).size} bytes)`);
}
