// SBNN (sparse binary weights): the quantizer against its closed form written out here, the Rice
// code of sparse sign bits against the packed rows it stands for (property), and an SBNN model
// converted, written, read back and run against its fake-quantized float forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromValues } from '../../src/core/tensor.js';
import { scope } from '../../src/core/scope.js';
import { grad } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/mode.js';
import { mul, sum } from '../../src/ops/index.js';
import { randomizeBatchNorms } from '../helpers.js';
import { Rng } from '../../src/util/rng.js';
import { riceDecodeBits, riceEncodeBits } from '../../src/quant/bitcode.js';
import { crc32 } from '../../src/util/crc32.js';
import {
  applyQuantPreset, convert, decodeDeployed, encodeDeployed, isQuantLayer, packSignRows, parseQuantPreset, payloadBytes, runDeployed, SparseBinaryWeight, QuantLinear, layerPlan,
} from '../../src/quant/index.js';

const rng = new Rng(13, 1);
const sgn = (x: number) => (x >= 0 ? 1 : -1);

test('sbnn_weight: τ·sign(w − θ) + φ, θ the s-quantile, s ramping 0.5 → sparsity; τ, φ the least-squares fit while s ramps, then learned; gradients in closed form', () => {
  const w = Array.from({ length: 4 * 25 }, () => rng.normal() * 0.7), gs = w.map(() => rng.normal());
  const sorted = [...w].sort((a, b) => a - b);
  // Least squares at sparsity s: α = mean of the weights below the s-quantile, β = mean of the rest.
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const fit = (s: number) => {
    const t = sorted[Math.floor(s * w.length)]!;
    return [mean(w.filter((v) => v < t)), mean(w.filter((v) => v >= t))] as const;
  };
  const [a0, b0] = fit(0.9);
  for (const [p, s] of [[0, 0.5], [0.25, 0.5 + 0.4 * (1 - 0.5 ** 3)], [0.5, 0.9], [1, 0.9]] as const) {
    for (const given of [null, { tau: 0.3, phi: 0.2 }, { tau: -0.4, phi: -0.1 }]) {
      const q = new SparseBinaryWeight({ sparsity: 0.9, ...given });
      q.setProgress(p);
      assert.ok(Math.abs(q.currentSparsity() - s) < 1e-12, `sparsity at progress ${p}`);
      const theta = sorted[Math.floor(s * w.length)]!;
      const r = scope(() => {
        const x = fromValues(w, [4, 25]);
        x.requiresGrad = true;
        const y = q.forward(x);
        const [gx, gt, gp] = grad(sum(mul(y, fromValues(gs, [4, 25]))), [x, q.tau, q.phi]);
        return { y: Array.from(y.values()), gx: Array.from(gx!.values()), gt: gt!.item(), gp: gp!.item(), pg: Array.from(q.pseudoGradient(x).values()) };
      });
      // During the ramp (progress < 0.5) the fit replaces any given value; after it, given values stay.
      const [a, b] = fit(s), ramping = p < 0.5;
      if (ramping && given) {
        // At sparsity 0.5 nothing ramps: given values are kept from the first step.
        const flat = new SparseBinaryWeight({ sparsity: 0.5, ...given });
        flat.setProgress(p);
        scope(() => void flat.forward(fromValues(w, [4, 25])));
        assert.deepEqual([flat.tau.item(), flat.phi.item()].map((v) => Math.round(v * 1e6)), [given.tau, given.phi].map((v) => Math.round(v * 1e6)));
      }
      const tau = (!ramping && given?.tau) || (b - a) / 2, phi = (!ramping && given?.phi) || (b + a) / 2;
      const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * (1 + Math.abs(b)), `${what}: ${a} vs ${b} (progress ${p}, ${JSON.stringify(given)})`);
      close(q.tau.item(), tau, 'τ');
      close(q.phi.item(), phi, 'φ');
      w.forEach((v, i) => {
        close(r.y[i]!, tau * sgn(v - theta) + phi, `forward[${i}]`);
        const d = Math.abs(v - theta) <= 1 ? tau : 0;
        close(r.pg[i]!, d, `pseudo-gradient[${i}]`);
        close(r.gx[i]!, gs[i]! * d, `gradient[${i}]`);
      });
      close(r.gt, w.reduce((acc, v, i) => acc + gs[i]! * sgn(v - theta), 0), '∂L/∂τ');
      close(r.gp, gs.reduce((acc, g) => acc + g, 0), '∂L/∂φ');
      const ones = w.filter((v) => v >= theta).length;
      assert.equal(ones, w.length - Math.floor(s * w.length), `code-1 weights at progress ${p}`);
      assert.deepEqual(q.deployment().levels!(fromValues(w, [4, 25])).map((v) => Math.round(v * 1e5) / 1e5), [phi - tau, phi + tau].map((v) => Math.round(v * 1e5) / 1e5));
    }
  }
  // At 90 % the majority code (α) lies near 0, the minority (β) far from it.
  assert.ok(Math.abs(a0) < 0.25 * Math.abs(b0), `α ${a0}, β ${b0}`);
  assert.throws(() => new SparseBinaryWeight({ sparsity: 0.9, tau: NaN }), /sbnn_weight: tau must be a finite number/);
  assert.throws(() => new SparseBinaryWeight({ sparsity: 0.3 }), /sbnn_weight: sparsity must be in \[0\.5, 1\)/);
  assert.deepEqual(parseQuantPreset('bnn-sbnn:0.5'), { preset: 'bnn-sbnn', sparsity: 0.5 });
  assert.throws(() => parseQuantPreset('sbnn:1.5'), /--quant sbnn:1\.5: the sparsity after 'sbnn:' must be a number in \[0\.5, 1\)/);
});

test('Rice code of sign bits: decodes to the packed rows it was made from; only used where smaller', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 150 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer(), (rows, k, p, seed) => {
      const r = new Rng(seed >>> 0, 2);
      const v = Array.from({ length: rows * k }, () => (r.uniform() < p ? -1 : 1));
      const packed = packSignRows(v, rows, k);
      const coded = riceEncodeBits(packed, rows, k);
      if (!coded) return;
      assert.ok(coded.stream.length < packed.length);
      assert.deepEqual(riceDecodeBits(coded.stream, rows, k, coded), packed);
    }),
    { numRuns: 150 },
  );
  // 10 % minority bits over 4,000 weights: well under the 125 packed words (entropy 0.47 bit/weight).
  const v = Array.from({ length: 4000 }, () => (rng.uniform() < 0.1 ? -1 : 1));
  const packed = packSignRows(v, 40, 100), coded = riceEncodeBits(packed, 40, 100)!;
  assert.ok(coded.stream.length <= 0.6 * packed.length, `${coded.stream.length} vs ${packed.length} words`);
  // Balanced bits are not coded (rows of whole words: no pad bits to save).
  assert.equal(riceEncodeBits(packSignRows(Array.from({ length: 40 * 96 }, () => (rng.uniform() < 0.5 ? -1 : 1)), 40, 96), 40, 96), null);
  // A stream that lies is refused by name.
  assert.throws(() => riceDecodeBits(coded.stream.subarray(0, 3), 40, 100, coded), /sparse sign code: the stream of 3 words ends before its/);
  assert.throws(() => riceDecodeBits(coded.stream, 4, 100, coded), /sparse sign code: count must be an integer in 0\.\.400|past the 400 weight bits/);
  assert.throws(() => riceDecodeBits(coded.stream, 40, 100, { ...coded, shift: 40 }), /shift must be an integer in 0\.\.16/);
});

test('SBNN LeNet-5 and Larq BNN at 90 %: the file holds Rice-coded signs, reads back to the same model and runs like the float model', () => {
  const n = 8, x = Float32Array.from({ length: n * 784 }, () => (rng.uniform() < 0.6 ? 0 : rng.uniform()));
  for (const [sparse, dense] of [['sbnn:0.9', 'binary'], ['bnn-sbnn:0.9', 'bnn']]) {
    const model = applyQuantPreset('lenet', sparse!, 3);
    randomizeBatchNorms(model, rng);
    model.eval();
    const expected = noGrad(() => scope(() => Float32Array.from(model.call(fromValues(x, [n, 1, 28, 28])).values())));
    // The built model is at the end of its ramp: 90 % of every binary layer's codes are −1.
    for (const [, m] of model.namedModules()) {
      if (!isQuantLayer(m)) continue;
      const signs = noGrad(() => scope(() => Array.from(m.kernelQuantizer!.forward(m.weight).values(), (v) => v < 0)));
      assert.ok(Math.abs(signs.filter(Boolean).length / signs.length - 0.9) < 0.01, `${sparse}: ${m.path}`);
    }
    const deployed = convert(model, [1, 28, 28]);
    const bytes = encodeDeployed(deployed);
    const header = new TextDecoder().decode(bytes.subarray(12, 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)));
    assert.match(header, /"\$array":"rice"/);
    assert.equal(bytes.length - payloadBytes(deployed) > 0 && bytes.length - payloadBytes(deployed) < 4096, true);
    // The plan (what summary() reports) predicts the coded size: exactly for dense layers (the same rows).
    const linears = model.layers.filter((l) => l instanceof QuantLinear) as QuantLinear[];
    const stages = deployed.stages.filter((st) => st.op === 'dense' && 'kernel' in st && st.kernel === 'binary') as { outC: number; inC: number; weights: Uint32Array }[];
    assert.equal(stages.length, linears.length);
    linears.forEach((l, i) => {
      const coded = riceEncodeBits(stages[i]!.weights, stages[i]!.outC, stages[i]!.inC)!;
      assert.equal(layerPlan(l)!.weightBits * l.weight.size, 32 * coded.stream.length, `${sparse}: ${l.path}`);
      assert.ok(layerPlan(l)!.weightBits < 0.65, `${sparse}: ${l.path} at ${layerPlan(l)!.weightBits} bits per weight`);
    });
    const back = decodeDeployed(bytes, sparse);
    const packed = (d: typeof deployed) => d.stages.flatMap((s) => ('weights' in s && s.kernel === 'binary' ? [Array.from(s.weights as Uint32Array)] : []));
    assert.deepEqual(packed(back), packed(deployed));
    const got = runDeployed(back, x, [n, 1, 28, 28]).data;
    expected.forEach((e, i) => assert.ok(Math.abs(e - got[i]!) <= 1e-3 * (1 + Math.abs(e)), `${sparse}: output ${i}: ${got[i]} vs ${e}`));
    const denseBytes = encodeDeployed(convert(applyQuantPreset('lenet', dense!, 3).eval(), [1, 28, 28])).length;
    assert.ok(bytes.length < denseBytes, `${sparse}: ${bytes.length} B vs ${dense} ${denseBytes} B`);
  }
});

test('train --quant sbnn --sparsity S stores sbnn:S with the model; convert rebuilds it; --sparsity needs an sbnn preset', async () => {
  const { cli, lastJson } = await import('../cli/helpers.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-sbnn-'));
  try {
    const ckpt = join(dir, 'm.safetensors');
    const t = await cli('train', '--model', 'lenet', '--quant', 'sbnn', '--sparsity', '0.75', '--data', 'synthetic', '--limit', '32', '--epochs', '1', '--save', ckpt, '--json');
    assert.equal(t.code, 0, t.stderr);
    const c = await cli('convert', '--checkpoint', ckpt, '--out', join(dir, 'm.sgq'), '--json');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(lastJson(c).quant, 'sbnn:0.75');
    const bad = await cli('train', '--model', 'lenet', '--quant', 'binary', '--sparsity', '0.75', '--data', 'synthetic', '--limit', '8', '--epochs', '1');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--sparsity applies to --quant sbnn or bnn-sbnn, got --quant binary/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `bytes` (a deployed-model file) with its header changed by `edit` and its version set (offsets unchanged), checksum recomputed. */
function rewriteHeader(bytes: Uint8Array, edit: (stages: Record<string, any>[]) => void, version?: number): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const jsonLength = dv.getUint32(8, true), head = 12 + ((jsonLength + 3) & ~3);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength)));
  const payload = bytes.subarray(head, bytes.length - 4);
  edit(header.stages);
  const json = new TextEncoder().encode(JSON.stringify(header)), at = 12 + ((json.length + 3) & ~3);
  const out = new Uint8Array(at + payload.length + 4), v = new DataView(out.buffer);
  out.set(bytes.subarray(0, 8));
  if (version !== undefined) v.setUint32(4, version, true);
  v.setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(payload, at);
  v.setUint32(at + payload.length, crc32(out.subarray(0, at + payload.length)), true);
  return out;
}

test('a file whose Rice-coded weights would stand for far more than they hold, or lie about their code, is refused by name', () => {
  const bytes = encodeDeployed(convert(applyQuantPreset('lenet', 'sbnn:0.9', 4).eval(), [1, 28, 28]));
  const rewrite = (edit: (stages: Record<string, any>[]) => void) => rewriteHeader(bytes, edit);
  const rice = (stages: Record<string, any>[]) => stages.find((st) => st.weights?.$array === 'rice')!;
  assert.doesNotThrow(() => decodeDeployed(rewrite(() => {}), 'same.sgq'));
  assert.throws(() => decodeDeployed(rewrite((st) => void (rice(st).outC = 1 << 20)), 'big.sgq'), /big\.sgq: stages\[\d+\]\.weights\.length: \d+ coded words cannot stand for \d+ packed words/);
  assert.throws(() => decodeDeployed(rewrite((st) => void (rice(st).weights.count += 1000)), 'count.sgq'), /count\.sgq: stages\[\d+\]\.weights: sparse sign code: /);
  assert.throws(() => decodeDeployed(rewrite((st) => void (rice(st).kernel = 'float')), 'kind.sgq'), /kind\.sgq: stages\[\d+\]\.weights: a 'rice' array holds the weights of a binary conv\/dense stage only/);
});

test('SBNN file: version 4; levels are refused in a version 2/3 file, checked as two finite values on binary stages only; a model without them stays version 3', () => {
  const bytes = encodeDeployed(convert(applyQuantPreset('lenet', 'sbnn:0.9', 4).eval(), [1, 28, 28]));
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true), 4);
  const levelled = (st: Record<string, any>[]) => st.find((s) => s.levels)!;
  assert.doesNotThrow(() => decodeDeployed(rewriteHeader(bytes, () => {}, 4), 'same.sgq'));
  assert.throws(() => decodeDeployed(rewriteHeader(bytes, () => {}, 3), 'old.sgq'), /old\.sgq: stages\[\d+\]\.levels: weight levels need format version 4, the file says 3/);
  assert.throws(() => decodeDeployed(rewriteHeader(bytes, () => {}, 5), 'new.sgq'), /new\.sgq: version: format version 5 is not supported \(expected 2 or 3 or 4/);
  assert.throws(() => decodeDeployed(rewriteHeader(bytes, (st) => void (levelled(st).levels = [1, 'x'])), 'bad.sgq'), /bad\.sgq: stages\[\d+\]\.levels: expected two finite weight values \[alpha, beta\]/);
  assert.throws(() => decodeDeployed(rewriteHeader(bytes, (st) => void (st.find((s) => s.kernel === 'float')!.levels = [0, 1])), 'float.sgq'), /float\.sgq: stages\[\d+\]\.levels: weight levels are defined for binary and binary_weights stages, not float/);
  const plain = encodeDeployed(convert(applyQuantPreset('lenet', 'binary', 1).eval(), [1, 28, 28]));
  assert.equal(new DataView(plain.buffer, plain.byteOffset).getUint32(4, true), 3);
  // A version 3 file written before SBNN had levels still loads.
  assert.doesNotThrow(() => decodeDeployed(plain, 'v3.sgq'));
});
