import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { Flatten, Linear, Sequential } from '../../src/nn/layers.js';
import { bwnLenet5, convert } from '../../src/quant/index.js';
import {
  FunctionGame, METHODS, methodSupported, absError, boxBlur, deletionCurve, deployedOutput, exactShapley, gradientTimesInput, imageExplainer, imagePatches,
  maskerImage, moduleOutput, superpixels, type BatchedModel,
} from '../../src/explain/index.js';

test('patches tile the image: 16 of 7x7 on 28x28; cut patches at the edges of 5x5 with side 2', () => {
  const p = imagePatches({ channels: 1, height: 28, width: 28 }, 7);
  assert.equal(p.groups.length, 16);
  assert.ok(p.groups.every((g) => g.end - g.start === 49));
  assert.deepEqual([...p.pixels].sort((a, b) => a - b), Array.from({ length: 784 }, (_, i) => i));
  // Patch (1, 2) holds rows 7..13, columns 14..20.
  const g = p.groups[6]!;
  assert.equal(g.name, 'patch(1,2)');
  assert.deepEqual([...p.pixels.subarray(g.start, g.start + 3)], [7 * 28 + 14, 7 * 28 + 15, 7 * 28 + 16]);
  const odd = imagePatches({ channels: 2, height: 5, width: 5 }, 2);
  assert.deepEqual(odd.groups.map((q) => q.end - q.start), [8, 8, 4, 8, 8, 4, 4, 4, 2]); // two channels each
  assert.throws(() => imagePatches({ channels: 1, height: 28, width: 28 }, 0), /patch side must be an integer in 1\.\.28/);
});

test('maskers: zero, mean image, box blur (checked by hand on a 3x3 image)', () => {
  const shape = { channels: 1, height: 3, width: 3 };
  const img = Float64Array.from([0, 0, 9, 0, 0, 0, 0, 0, 0]);
  const blur = boxBlur(img, shape, 3);
  assert.equal(blur[0], 0); // corner window 2x2 misses the 9
  assert.equal(blur[1], 9 / 6); // top edge window 2x3
  assert.equal(blur[4], 1); // centre window 3x3
  assert.deepEqual(Array.from(maskerImage(img, shape, { masker: 'zero' })), new Array(9).fill(0));
  assert.deepEqual(Array.from(maskerImage(img, shape, { masker: 'mean', meanImage: new Float32Array(9).fill(0.5) })), new Array(9).fill(0.5));
  assert.throws(() => maskerImage(img, shape, { masker: 'mean' }), /masker 'mean' needs meanImage/);
  assert.throws(() => maskerImage(img, shape, { masker: 'sepia' as never }), /unknown masker 'sepia'/);
  assert.throws(() => boxBlur(img, shape, 2), /blur size must be a positive odd integer/);
});

const shape = { channels: 1, height: 8, width: 8 };
const rng = new Rng(3);
const weights = Float64Array.from({ length: 64 }, () => rng.normal());
const linearPixels: BatchedModel = (batch, rows) => Float64Array.from({ length: rows }, (_, r) => {
  let s = 0.5;
  for (let i = 0; i < 64; i++) s += weights[i]! * batch[r * 64 + i]!;
  return s;
});
const image = Float64Array.from({ length: 64 }, () => rng.uniform());

test('linear model on pixels: every method gives sum over the patch of w (x - masker), for every masker', () => {
  for (const masker of ['zero', 'blur', 'mean'] as const) {
    const setup = imageExplainer(linearPixels, image, shape, { patch: 4, masker, meanImage: new Float64Array(64).fill(0.3) });
    const m = masker === 'zero' ? new Float64Array(64) : masker === 'mean' ? new Float64Array(64).fill(0.3) : boxBlur(image, shape, 9);
    // Oracle in pixel space: patch (py, px) holds rows 4py..4py+3, columns 4px..4px+3.
    const truth = [0, 1, 2, 3].map((p) => {
      let s = 0;
      for (let y = 4 * Math.floor(p / 2); y < 4 * Math.floor(p / 2) + 4; y++) for (let x = 4 * (p % 2); x < 4 * (p % 2) + 4; x++) s += weights[y * 8 + x]! * (image[y * 8 + x]! - m[y * 8 + x]!);
      return s;
    });
    for (const method of METHODS.filter((mt) => methodSupported(setup.explainer.model, mt))) {
      const e = setup.explainer.explain(setup.x, { method, budget: 8, seed: 1 });
      assert.ok(absError(e.values, truth) < 1e-9, `${masker} ${method}: ${Array.from(e.values)} vs ${truth}`);
    }
    const map = setup.toMap(truth);
    assert.equal(map[0], truth[0]);
    assert.equal(map[7 * 8 + 7], truth[3]);
  }
});

test('the packed model through the deploy runtime explains like the engine module it came from', () => {
  const net = bwnLenet5(4); // binary-weight LeNet-5: packed to 1-bit weights by convert
  net.eval();
  const digit = Float64Array.from({ length: 784 }, (_, i) => ((i % 28) > 8 && (i % 28) < 18 && i > 200 && i < 600 ? 0.9 : 0));
  const mnist = { channels: 1, height: 28, width: 28 };
  const opts = { patch: 14, masker: 'blur' as const };
  const engine = imageExplainer(moduleOutput(net, mnist, 3), digit, mnist, opts);
  const packed = imageExplainer(deployedOutput(convert(net, [1, 28, 28]), 3), digit, mnist, opts);
  const a = engine.explainer.explain(engine.x, { method: 'exact' }).values;
  const b = packed.explainer.explain(packed.x, { method: 'exact' }).values;
  assert.ok(absError(a, b) < 1e-3 * (1 + absError(a, new Float64Array(4))), `engine ${Array.from(a)} vs packed ${Array.from(b)}`);
  assert.ok(a.some((v) => Math.abs(v) > 1e-4), 'a non-trivial explanation');
});

test('gradient x input is exact for a linear module (and the per-patch sum is taken in pixel order)', () => {
  const net = new Sequential(Flatten(), new Linear(64, 3, { rng: new Rng(9) }));
  const setup = imageExplainer(moduleOutput(net, shape, 2), image, shape, { patch: 4, masker: 'blur' });
  const exact = setup.explainer.explain(setup.x, { method: 'exact' }).values;
  const gxi = gradientTimesInput(net, image, setup, 2);
  assert.ok(absError(gxi, exact) < 1e-4, `${Array.from(gxi)} vs ${Array.from(exact)}`);
});

test('deletion and insertion curves: exact values order an additive game best; a reversed order is worse', () => {
  const a = [3, -1, 0.5, 2];
  const game = new FunctionGame(4, (mk) => mk.reduce((s, b, i) => s + b * a[i]!, 0));
  const phi = exactShapley(game);
  const best = deletionCurve(game, phi);
  assert.deepEqual(best.order, [0, 3, 2, 1]);
  // Removing 3, then 2, 0.5, -1 from the full value 4.5 (normalised by 4.5).
  assert.deepEqual(Array.from(best.deletion, (v) => +(v * 4.5).toFixed(12)), [4.5, 1.5, -0.5, -1, 0]);
  assert.equal(best.insertion[4], 1);
  const worst = deletionCurve(game, phi.map((v) => -v));
  assert.ok(best.deletionAuc < worst.deletionAuc && best.insertionAuc > worst.insertionAuc);
  assert.throws(() => deletionCurve(game, [1]), /estimate has 1 values, game has 4 players/);
});

test('superpixels follow edges; segment players explain a linear model exactly', () => {
  const sh = { channels: 1, height: 6, width: 8 };
  const halves = Float64Array.from({ length: 48 }, (_, i) => ((i % 8) < 3 ? 0 : 1)); // edge between columns 2 and 3
  const labels = superpixels(halves, sh, 2);
  for (let i = 0; i < 48; i++) assert.equal(labels[i], (i % 8) < 3 ? labels[0] : labels[3], `pixel ${i}`);
  assert.notEqual(labels[0], labels[3]);
  assert.throws(() => superpixels(halves, sh, 0), /superpixel count must be a positive integer/);
  // Segments as players: 3 irregular regions on the 8x8 linear model.
  const seg = Int32Array.from({ length: 64 }, (_, i) => (i % 3 === 0 ? 5 : i < 20 ? 2 : 9));
  const setup = imageExplainer(linearPixels, image, shape, { segments: seg, masker: 'zero' });
  assert.deepEqual(setup.explainer.explain(setup.x, { method: 'exact' }).players, ['segment 2', 'segment 5', 'segment 9']);
  const truth = [2, 5, 9].map((l) => { let s = 0; for (let i = 0; i < 64; i++) if (seg[i] === l) s += weights[i]! * image[i]!; return s; });
  const e = setup.explainer.explain(setup.x, { method: 'shear-antithetic', budget: 8 });
  assert.ok(absError(e.values, truth) < 1e-9, `${Array.from(e.values)} vs ${truth}`);
  assert.throws(() => imageExplainer(linearPixels, image, shape, { segments: seg.subarray(1) }), /63 segment labels for a 8 x 8 image/);
});
