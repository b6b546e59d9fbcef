#!/usr/bin/env node
// Runs the compiled CLI (npm install builds it via the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('slimgrad: not built yet; run `npm install` (or `npm run build`) in the package folder first');
  process.exit(1);
}
const { runProcess } = await import(entry.href);
process.exitCode = await runProcess(process.argv.slice(2));
