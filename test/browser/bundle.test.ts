// The browser entry bundles for browsers with no Node built-in, and the package points browsers at it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';
import { build, type Plugin } from 'esbuild';

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Bundles `entry` for browsers (minified); the Node built-ins its module graph imports and the size. */
async function bundle(entry: string): Promise<{ builtins: string[]; bytes: number }> {
  const builtins: string[] = [];
  const recordBuiltins: Plugin = {
    name: 'record-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (!NODE_BUILTINS.has(args.path) && !args.path.startsWith('node:')) return undefined;
        builtins.push(`${args.path} (from ${args.importer.replace(process.cwd() + '/', '')})`);
        return { path: args.path, external: true };
      });
    },
  };
  const result = await build({
    entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', minify: true, write: false, logLevel: 'silent', plugins: [recordBuiltins],
  });
  return { builtins, bytes: result.outputFiles[0]!.contents.length };
}

test('src/browser.ts bundles for browsers with no Node built-in', async (t) => {
  const { builtins, bytes } = await bundle('src/browser.ts');
  assert.deepEqual(builtins, [], `Node built-ins reached from the browser entry:\n${builtins.join('\n')}`);
  t.diagnostic(`browser entry, minified ESM: ${(bytes / 1024).toFixed(1)} KiB`);
  assert.ok(bytes > 100_000, `suspiciously small bundle (${bytes} bytes): did the entry lose its exports?`);
});

test('the check finds the Node built-ins of the Node entry (it can fail)', async () => {
  const { builtins } = await bundle('src/index.ts');
  for (const b of ['node:fs', 'node:zlib', 'node:net']) assert.ok(builtins.some((x) => x.startsWith(`${b} `)), `${b} not reported: ${builtins.join(', ')}`);
});

test("the README's browser example bundles against the browser entry (every name it uses exists)", async () => {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## In the browser'));
  const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example?.includes("from 'slimgrad/browser'"), 'no browser example in the README');
  const result = await build({
    stdin: { contents: example!, loader: 'ts', resolveDir: process.cwd() }, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent',
    alias: { 'slimgrad/browser': './src/browser.ts' },
  });
  assert.equal(result.errors.length, 0);
});

test('package.json sends browsers and slimgrad/browser to the browser entry', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  assert.equal(pkg.exports['.'].browser, './dist/src/browser.js');
  assert.equal(pkg.exports['.'].default, './dist/src/index.js');
  assert.equal(pkg.exports['./browser'].default, './dist/src/browser.js');
});
