// Every command explains itself: --help and `help <command>` print help generated from the same
// option table the parser uses, and every option a command reads is in that table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCommands } from '../../src/cli/main.js';

const commands = await loadCommands();
import { parseOptions, type CommandSpec } from '../../src/cli/options.js';
import { MODEL_NAMES } from '../../src/nn/models.js';
import { cli } from './helpers.js';

test('help walk: every command prints, with exit 0, every parsed option with its type, default and an example', async () => {
  for (const c of commands) {
    const r = await cli(c.name, '--help');
    assert.equal(r.code, 0, `${c.name} --help: ${r.stderr}`);
    assert.equal((await cli('help', c.name)).stdout, r.stdout, `help ${c.name}`);
    assert.equal((await cli(c.name, '-h')).stdout, r.stdout, `${c.name} -h`);
    for (const o of c.spec.options) {
      const line = r.stdout.split('\n').findIndex((l) => l.trimStart().startsWith(`--${o.name}`));
      assert.ok(line >= 0, `${c.name} --help does not list --${o.name}`);
      const text = r.stdout.split('\n').slice(line, line + 2).join(' ');
      for (const choice of o.choices ?? []) assert.ok(text.includes(choice), `${c.name} --${o.name}: choice ${choice} missing`);
      if (o.type === 'int') assert.match(text, /integer/, `${c.name} --${o.name}: type`);
      if (o.default !== undefined && o.default !== false) assert.ok(text.includes(`default ${o.default}`), `${c.name} --${o.name}: default ${o.default} missing in: ${text}`);
    }
    assert.match(r.stdout, /\nexamples?:\n {2}slimgrad /, `${c.name}: no example`);
  }
});

test('every option a command reads is declared in its table (so it is parsed and in the help)', async () => {
  const dir = 'src/cli/commands';
  for (const file of readdirSync(dir)) {
    const source = readFileSync(join(dir, file), 'utf8');
    const specs = Object.values(await import(`../../${dir}/${file}`)).filter((v): v is CommandSpec => typeof v === 'object' && v !== null && 'options' in v && 'examples' in v);
    const declared = new Set(specs.flatMap((s) => s.options.map((o) => o.name)));
    const read = [...source.matchAll(/\b(?:o|flags)\.(?:string|int|number|bool|list|given)\('([a-z-]+)'\)/g)].map((m) => m[1]!);
    for (const name of read) assert.ok(declared.has(name), `${file} reads --${name}, which its option table does not declare`);
  }
  // Reading an undeclared option is refused at run time too.
  const spec = commands.find((c) => c.name === 'train')!.spec;
  assert.throws(() => parseOptions(spec, []).string('no-such-flag'), /not in the command's table/);
});

test('slimgrad --help lists every command; train --help lists every model (cnn included); --version', async () => {
  const top = await cli('--help');
  assert.equal(top.code, 0);
  for (const c of commands) assert.match(top.stdout, new RegExp(`\\n  ${c.name} `));
  const train = await cli('train', '--help');
  for (const m of MODEL_NAMES) assert.ok(train.stdout.includes(m), `train --help misses model ${m}`);
  const v = await cli('--version');
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), `slimgrad ${JSON.parse(readFileSync('package.json', 'utf8')).version}`);
  const none = await cli();
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage: slimgrad <command>/);
});

test('a closed stdout pipe (slimgrad ... | head) ends the process quietly, exit 0, no EPIPE stack', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'data', 'synthetic', '--split', 'test'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before the first write
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((done) => child.on('close', done));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|at /);
});
