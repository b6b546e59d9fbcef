// The browser demo: builds examples/browser/ (esbuild, the browser entry bundled in) into
// build/browser/ with copies of the wasm kernels next to the bundle, and serves it with the
// COOP/COEP headers that make the page cross-origin isolated (Web Worker threads on shared
// memory). Paths under /plain/ are served without them (a page that is not isolated: one thread).
//   npm run demo                 build and serve on http://localhost:8080 (PORT=... to change)
//   node scripts/browser.mjs --build   build only
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The wasm builds the page loads (made by `npm run build:kernels`). */
const WASM = [
  'kernels-relaxed.wasm', 'kernels.wasm', 'kernels-scalar.wasm', 'kernels-unshared-relaxed.wasm', 'kernels-unshared.wasm',
  'quant-relaxed.wasm', 'quant.wasm', 'quant-unshared-relaxed.wasm', 'quant-unshared.wasm',
];

/**
 * Bundles the page (app.js), its worker (worker.js) and extra entries into `outdir`, copies the
 * kernels and index.html there; returns the output sizes in bytes.
 */
export async function buildBrowser({ outdir = join(root, 'build', 'browser'), extraEntries = {} } = {}) {
  mkdirSync(outdir, { recursive: true });
  for (const f of WASM) {
    const from = join(root, 'build', f);
    try {
      copyFileSync(from, join(outdir, f));
    } catch {
      throw new Error(`${from} is missing: run npm run build:kernels first`);
    }
  }
  copyFileSync(join(root, 'examples', 'browser', 'index.html'), join(outdir, 'index.html'));
  const result = await build({
    entryPoints: { app: join(root, 'examples/browser/app.ts'), worker: join(root, 'examples/browser/worker.ts'), ...extraEntries },
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, outdir, metafile: true, logLevel: 'error',
  });
  return Object.fromEntries(Object.entries(result.metafile.outputs).map(([f, o]) => [f.split('/').pop(), o.bytes]));
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.png': 'image/png', '.json': 'application/json' };

/**
 * A static server for `dir` on `port` (0: any free port); resolves to the server once listening.
 * Same-origin only; COOP/COEP on every path except those under /plain/.
 */
export function serve(dir, port = 0) {
  const server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const isolated = !path.startsWith('/plain/');
    if (!isolated) path = path.slice('/plain'.length);
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(dir, path));
    if (!file.startsWith(resolve(dir) + sep)) return void res.writeHead(403).end();
    let body;
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      body = readFileSync(file);
    } catch {
      return void res.writeHead(404).end('not found');
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
      ...(isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {}),
    });
    res.end(body);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done(server));
  });
}

/** The system Chromium the tests and `bench browser` drive (SLIMGRAD_CHROMIUM overrides). */
export const CHROMIUM = process.env.SLIMGRAD_CHROMIUM || '/usr/bin/chromium';

/**
 * Headless Chromium through playwright-core (no browser download): flags that keep it off the
 * network (the machine may have none: without them it hangs on connection attempts); playwright
 * gives it a fresh profile directory.
 */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const sizes = await buildBrowser();
  for (const [f, bytes] of Object.entries(sizes)) console.log(`build/browser/${f}: ${(bytes / 1024).toFixed(1)} KiB`);
  if (!process.argv.includes('--build')) {
    const server = await serve(join(root, 'build', 'browser'), Number(process.env.PORT ?? 8080));
    const { port } = server.address();
    console.log(`slimgrad demo: http://localhost:${port}/ (cross-origin isolated; http://localhost:${port}/plain/ without isolation)`);
  }
}
