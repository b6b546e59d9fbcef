import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { explain } from '../../src/cli/commands/explain.js';
import { UsageError } from '../../src/cli/command.js';
import { Rng } from '../../src/util/rng.js';
import { runJson } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'slimgrad-explain-'));
const csv = join(dir, 'toy.csv');
{
  const rng = new Rng(3);
  const lines = ['a,b,color,const,target'];
  for (let i = 0; i < 300; i++) {
    const a = rng.normal(), b = rng.normal(), color = ['red', 'green', 'blue'][rng.int(3)]!;
    lines.push(`${a.toFixed(3)},${b.toFixed(3)},${i % 17 === 0 ? '?' : color},k,${a + (color === 'red' ? 1 : 0) > 0.5 ? 'hi' : 'lo'}`);
  }
  writeFileSync(csv, lines.join('\n'));
}

test('slimgrad explain on a CSV: trains, saves, reloads the same model, scores against exact values, JSON last line', async () => {
  const model = join(dir, 'toy.safetensors');
  const args = ['--data', csv, '--label', 'target', '--method', 'shear', '--budget', '4', '--rows', '4', '--epochs', '3', '--model', model, '--json'];
  const first = await runJson(explain, args);
  assert.equal(first.code, 0);
  assert.ok(existsSync(model));
  assert.deepEqual(first.json['players'], ['a', 'b', 'color']);
  assert.equal(first.json['rows'], 4);
  assert.ok(first.json['absError'] >= 0 && first.json['rankAccuracy'] >= 0 && first.json['rankAccuracy'] <= 1);
  assert.match(first.json['crossContribution'], /^hessian/);
  const second = await runJson(explain, args);
  assert.deepEqual(second.json['row0'], first.json['row0'], 'reloaded model explains identically');
  const fd = await runJson(explain, [...args, '--cross-contribution', 'finite-difference', '--background', '10']);
  assert.match(fd.json['crossContribution'], /^finite-difference/);
});

test('slimgrad explain --method shear-cv: third-order control variate on the MLP, same evaluations as antithetic', async () => {
  const model = join(dir, 'toy.safetensors');
  const base = ['--data', csv, '--label', 'target', '--budget', '8', '--rows', '4', '--epochs', '3', '--model', model, '--json'];
  const cv = await runJson(explain, [...base, '--method', 'shear-cv']);
  const anti = await runJson(explain, [...base, '--method', 'antithetic']);
  assert.equal(cv.code, 0);
  assert.equal(cv.json['crossContribution'], 'third-order (analytic third derivatives of the MLP, at the midpoint)');
  assert.equal(cv.json['evaluationsPerRow'], anti.json['evaluationsPerRow']);
  assert.ok(cv.json['absError'] >= 0 && cv.json['absError'] <= anti.json['absError'], `shear-cv ${cv.json['absError']} vs antithetic ${anti.json['absError']}`);
  await assert.rejects(explain.run(['--data', 'mnist', '--method', 'shear-cv']), (e: Error) => e instanceof UsageError && /shear-cv needs a smooth model with third derivatives/.test(e.message));
});

test('slimgrad explain: bad options are usage errors', async () => {
  await assert.rejects(explain.run([]), (e: Error) => e instanceof UsageError && /--data .* is required/.test(e.message));
  await assert.rejects(explain.run(['--data', csv]), /--label NAME is required for a CSV file/);
  await assert.rejects(explain.run(['--data', csv, '--label', 'target', '--method', 'magic']), /--method must be one of .*, got 'magic'/);
  await assert.rejects(explain.run(['--data', csv, '--label', 'target', '--budget', '0']), /--budget must be >= 1, got 0/);
  await assert.rejects(explain.run(['--data', csv, '--label', 'target', '--bogus', '1']), /unknown option --bogus/);
  await assert.rejects(explain.run(['--data', join(dir, 'nope.csv'), '--label', 'y']), /neither a preset .* nor an existing file/);
  await assert.rejects(explain.run(['--data', csv, '--label', 'nope', '--epochs', '1']), /unknown label column 'nope'/);
  await assert.rejects(explain.run(['--data', csv, '--label', 'target', '--method', 'antithetic', '--budget', '1', '--epochs', '1', '--rows', '2', '--no-exact']), (e: Error) => e instanceof UsageError && /antithetic: budget 1 per feature/.test(e.message));
});

test('slimgrad explain --plot writes bar, waterfall and beeswarm SVGs of the explained rows', async () => {
  const { parseSvg, findAll } = await import('../explain/svg-check.js');
  const { readFileSync } = await import('node:fs');
  const model = join(dir, 'toy-plot.safetensors');
  const base = ['--data', csv, '--label', 'target', '--method', 'shear-antithetic', '--budget', '4', '--rows', '5', '--epochs', '2', '--model', model, '--no-exact', '--json'];
  const counts: Record<string, number> = {};
  for (const [kind, element, cls] of [['bar', 'rect', 'bar'], ['waterfall', 'polygon', 'step'], ['beeswarm', 'circle', 'dot']] as const) {
    const file = join(dir, `${kind}.svg`);
    const { json } = await runJson(explain, [...base, '--plot', file, '--plot-kind', kind]);
    const svg = parseSvg(readFileSync(file, 'utf8'));
    counts[kind] = findAll(svg, element, cls).length;
    if (kind === 'bar') assert.deepEqual(findAll(svg, 'rect', 'bar').map((b) => Number(b.attrs['data-value'])).sort(), [...json['row0'].values].sort());
    if (kind === 'waterfall') {
      // Steps run from the base (v of the reference) to the model's logit, an estimation-gap step included if needed.
      const total = findAll(svg, 'polygon', 'step').reduce((a, p) => a + Number(p.attrs['data-value']), 0);
      assert.ok(Math.abs(json['row0'].base + total - json['row0'].logit) < 1e-6, `base ${json['row0'].base} + ${total} vs logit ${json['row0'].logit}`);
      counts[kind] = Math.min(counts[kind]!, 3);
    }
  }
  assert.deepEqual(counts, { bar: 3, waterfall: 3, beeswarm: 5 * 3 });
  await assert.rejects(explain.run([...base, '--plot', join(dir, 'x.svg'), '--plot-kind', 'pie']), /--plot-kind must be one of bar, waterfall, beeswarm, got 'pie'/);
});

const mnistDir = join('..', 'shared', 'data', 'mnist-t10k');
test('slimgrad explain --data mnist: LeNet-5 and its packed binary twin, patch maps and a heat-map pair', { skip: !existsSync(mnistDir) && 'no MNIST files' }, async () => {
  const { parseSvg, findAll } = await import('../explain/svg-check.js');
  const { readFileSync } = await import('node:fs');
  const plot = join(dir, 'maps.svg');
  const { code, json } = await runJson(explain, ['--data', 'mnist', '--mnist-dir', mnistDir, '--train-images', '300', '--patch', '14', '--method', 'antithetic', '--budget', '4', '--plot', plot, '--json']);
  assert.equal(code, 0);
  assert.deepEqual(json['models'].map((m: { model: string }) => m.model), ['LeNet-5', 'binary LeNet-5 (packed)']);
  for (const m of json['models']) assert.equal(m.values.length, 4);
  assert.ok(json['models'].every((m: { deletionAuc: number }) => Number.isFinite(m.deletionAuc)));
  const panels = findAll(parseSvg(readFileSync(plot, 'utf8')), 'g', 'panel');
  assert.equal(panels.length, 2);
  assert.ok(findAll(panels[0]!, 'rect', 'cell').length >= 28, 'one overlay run per patch row at least');
  await assert.rejects(explain.run(['--data', 'mnist', '--mnist-dir', mnistDir, '--masker', 'sepia']), /--masker must be one of zero, mean, blur, got 'sepia'/);
});
