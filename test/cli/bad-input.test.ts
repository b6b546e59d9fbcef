// A user's mistakes get one clear line naming the flag, file or value at fault, the right exit code
// (2: usage, 1: a file or data problem), and never a JavaScript stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTabular, parseCsv } from '../../src/data/tabular.js';
import { cli, cliFresh, type CliResult } from './helpers.js';

function check(what: string, r: CliResult, code: number, words: RegExp[]): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  for (const w of words) assert.match(r.stderr, w, `${what}`);
  assert.doesNotMatch(r.stderr + r.stdout, /\n {4}at /, `${what}: stack trace printed`);
  assert.ok(r.stderr.trim().split('\n').length <= 2, `${what}: more than a short message: ${r.stderr}`);
}

test('bad-input table: each mistake gets its own message and exit code, no stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-bad-'));
  try {
    const existing = join(dir, 'model.safetensors');
    writeFileSync(existing, 'not a model');
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const csv = join(dir, 'stray.csv');
    writeFileSync(csv, 'age,city,y\n31,a,yes\n45,b,no\nabc,a,yes\n52,b,no\n38,a,yes\n');
    const badSgq = join(dir, 'bad.sgq');
    const ok = await cli('convert', '--model', 'lenet', '--quant', 'bwn', '--untrained', '--out', badSgq);
    assert.equal(ok.code, 0, ok.stderr);
    const bytes = readFileSync(badSgq);
    bytes[bytes.length - 100]! ^= 0x10;
    writeFileSync(badSgq, bytes);

    const table: [args: string[], code: number, words: RegExp[]][] = [
      [['train', '--batch-size', '0'], 2, [/--batch-size must be >= 1, got 0/]],
      [['train', '--lr', '-1'], 2, [/--lr must be > 0, got -1/]],
      [['train', '--epochs', 'abc'], 2, [/--epochs must be an integer, got 'abc'/]],
      [['train', '--lrr', '0.1'], 2, [/unknown option --lrr \(did you mean --lr\?\)/]],
      [['train', '--optimizer', 'adan'], 2, [/--optimizer must be one of adam, adamw, sgd, lars, lamb, got 'adan' \(did you mean adam\?\)/]],
      [['train', '--act', 'auto:9'], 2, [/train --act: bad mode "auto:9" \(auto:B takes average bits 1..8/]],
      [['train', '--act', 'gact'], 2, [/train --act: unknown mode "gact"/]],
      [['train', '--model', 'resnet'], 2, [/--model must be one of .*cnn/]],
      [['train', '--epochs'], 2, [/--epochs needs a value/]],
      [['train', '--data', 'nosuch'], 2, [/unknown dataset 'nosuch'/]],
      [['train', '--data', 'mnist'], 2, [/give the directory/, /--data-dir/]],
      [['train', '--data', 'mnist', '--data-dir', join(dir, 'missing')], 1, [/missing: cannot read the MNIST directory: no such directory/]],
      [['train', '--save', existing], 1, [/--save .*model\.safetensors: already exists \(pass --force/]],
      [['train', '--save', sub], 1, [/--save .*sub: is a directory/]],
      [['train', '--save', join(dir, 'nodir', 'x.safetensors')], 1, [/directory .*nodir does not exist/]],
      [['train', '--patience', '2'], 2, [/--patience needs a validation split/]],
      [['train', '--val-split', '1'], 2, [/--val-split must be < 1, got 1/]],
      [['train', '--checkpoint-every', '5'], 2, [/--checkpoint-every needs --save/]],
      [['train', '--resume', join(dir, 'none.safetensors')], 1, [/cannot read model file .*none\.safetensors: no such file or directory/]],
      [['train', '--resume', existing, '--lr', '0.1'], 2, [/--lr is taken from the checkpoint/]],
      [['train', '--model', 'lenet', '--quant', 'bnn', '--data', 'synthetic', '--limit', '8', '--epochs', '1', 'extra'], 2, [/unexpected argument 'extra'/]],
      [['convert', '--quant', 'bnn'], 2, [/--out PATH is required/]],
      [['convert', '--out', join(dir, 'x.sgq'), '--checkpoint', existing], 1, [/model\.safetensors: not a valid safetensors file/]],
      [['convert', '--out', join(dir, 'y.sgq'), '--model', 'mlp', '--quant', 'xnor', '--untrained'], 2, [/unknown preset 'xnor' for model 'mlp'/]],
      [['infer'], 2, [/expects exactly one model file/]],
      [['infer', badSgq, '--data', 'synthetic'], 1, [/bad\.sgq: checksum: stored CRC-32 [0-9a-f]{8} but the contents give/]],
      [['infer', join(dir, 'absent.sgq')], 1, [/cannot read deployed model .*absent\.sgq: no such file or directory/]],
      [['eval'], 2, [/expects one checkpoint file/]],
      [['eval', badSgq], 2, [/bad\.sgq is a deployed model: run it with `slimgrad infer/]],
      [['infer', existing], 2, [/model\.safetensors is a checkpoint: evaluate it with `slimgrad eval/]],
      [['eval', existing], 1, [/not a valid safetensors file/]],
      [['data', 'nosuch'], 2, [/unknown dataset 'nosuch'/]],
      [['data', 'synthetic', '--split', 'val'], 2, [/--split must be one of train, test, all, got 'val'/]],
      [['explain', '--data', csv], 2, [/--label NAME is required/]],
      [['explain', '--data', csv, '--label', 'y'], 1, [/stray\.csv: .*column 'age', line 4: 'abc' is not a number/, /categorical/]],
      [['explain', '--method', 'shear'], 2, [/--data VALUE is required/]],
      [['trian'], 2, [/unknown command 'trian' \(did you mean train\?\)/]],
    ];
    for (const [args, code, words] of table) check(args.join(' '), await cli(...args), code, words);
    // bench runs its suites in a child process: its message is checked on a fresh process's stderr.
    check('bench quantt', cliFresh(['bench', 'quantt']), 2, [/unknown suite 'quantt' \(did you mean quant\?\)/]);
    check('bench qat --stepz', cliFresh(['bench', 'qat', '--stepz', '3']), 2, [/slimgrad bench qat: Unknown option '--stepz'/]);
    check('bench act --data absent', cliFresh(['bench', 'act', '--lamb-only', '--data', join(dir, 'absent')]), 1, [/absent: cannot read the MNIST directory/]);
    check('bench act --lamb-beta2 1', cliFresh(['bench', 'act', '--lamb-only', '--lamb-beta2', '1']), 2, [/--lamb-beta2 must be a number in \[0, 1\), got '1'/]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stray word in a numeric CSV column is reported at its real line (blank lines, quoted newlines)', () => {
  const text = 'n,note,y\n1,"two\nlines",a\n\n2,x,b\n3,y,a\nfour,z,b\n5,w,a\n';
  assert.throws(() => encodeTabular(parseCsv(text), { label: 'y' }), /column 'n', line 7: 'four' is not a number, but 4 of the column's 5 cells are/);
  assert.equal(encodeTabular(parseCsv(text), { label: 'y', categorical: ['n'] }).groups[0]!.kind, 'categorical');
});

test('a CSV column declared categorical may mix numbers and words', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-csv-'));
  try {
    const csv = join(dir, 'mixed.csv');
    writeFileSync(csv, ['code,x,y', ...Array.from({ length: 40 }, (_, i) => `${i % 3 === 0 ? 'A7' : i % 5},${i},${i % 2 ? 'yes' : 'no'}`)].join('\n') + '\n');
    check('undeclared', await cli('explain', '--data', csv, '--label', 'y', '--rows', '2', '--epochs', '1', '--json'), 1, [/column 'code', line 2: 'A7' is not a number/]);
    const r = await cli('explain', '--data', csv, '--label', 'y', '--categorical', 'code', '--rows', '2', '--epochs', '1', '--budget', '2', '--json');
    assert.equal(r.code, 0, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('environment variables: one-line messages from the CLI; importing the library never throws over them', async () => {
  for (const [env, words] of [
    [{ SLIMGRAD_THREADS: '0' }, /SLIMGRAD_THREADS must be a positive integer, got '0'/],
    [{ SLIMGRAD_THREADS: 'abc' }, /SLIMGRAD_THREADS must be a positive integer, got 'abc'/],
    [{ SLIMGRAD_BACKEND: 'nosuch' }, /SLIMGRAD_BACKEND must be one of .*reference.*, got 'nosuch'/],
  ] as [Record<string, string>, RegExp][]) {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let r: CliResult;
    try {
      r = await cli('summary', '--model', 'mlp');
    } finally {
      for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
    }
    check(JSON.stringify(env), r, 2, [words]);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const imported = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', "const s = await import('./src/index.ts'); console.log(typeof s.createModel, s.getThreads() >= 1)"], {
    encoding: 'utf8', env: { ...process.env, SLIMGRAD_THREADS: '0' },
  });
  assert.equal(imported.status, 0, imported.stderr);
  assert.equal(imported.stdout.trim(), 'function true');
  assert.doesNotMatch(imported.stderr, /\n {4}at /);
});
