// Save policies: the act.md §10 defaults, overrides, and a walk over the op registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/backward.js';
import { saveSpec, withSavedTensorHooks, type SaveRole } from '../../src/autograd/saved.js';
import { isFloat } from '../../src/core/dtype.js';
import { scope } from '../../src/core/scope.js';
import { fromValues, type Tensor } from '../../src/core/tensor.js';
import { resnet20 } from '../../src/nn/models.js';
import { allOps, runOp } from '../../src/ops/all.js';
import { sum, type InputSpec } from '../../src/ops/index.js';
import { Compression } from '../../src/compress/act.js';
import { encodingName } from '../../src/compress/codecs.js';
import { ACT_MODES, ActPolicy, lastLinearPath, type SaveContext } from '../../src/compress/policy.js';
import { Rng } from '../../src/util/rng.js';
import { registryWalk } from '../registry-walk.js';

const walk = registryWalk('save policy');

const ctx = (o: Partial<SaveContext>): SaveContext => ({
  op: 'conv2d', role: 'input', exact: false, group: undefined, module: 'layer', isParameter: false, shape: [8, 16, 32, 32], dtype: 'float32', isNetworkInput: false, ...o,
});
const name = (p: ActPolicy, o: Partial<SaveContext>) => encodingName(p.resolve(ctx(o)));

test('defaults: parameters and stats kept, masks 1 bit, indices packed, small and loss saves kept', () => {
  for (const mode of ['fp16', 'int8', 'int4', 'int2', 'division'] as const) {
    const p = new ActPolicy(mode);
    assert.equal(name(p, { isParameter: true }), 'keep');
    assert.equal(name(p, { role: 'stats', shape: [4096] }), 'keep');
    assert.equal(name(p, { role: 'mask', dtype: 'uint8' }), 'mask');
    assert.equal(name(p, { role: 'index', dtype: 'uint8', op: 'maxpool2d' }), 'index');
    assert.equal(name(p, { shape: [4, 100] }), 'keep', 'below minElements');
    assert.equal(name(p, { op: 'any', role: 'output', exact: true, shape: [4096, 10] }), 'keep', 'declared exact (the loss probabilities)');
    assert.equal(name(p, { dtype: 'int32' }), 'keep');
  }
  assert.equal(name(new ActPolicy('off'), { role: 'mask', dtype: 'uint8' }), 'keep');
});

test('mode encodings; first-layer input and last linear input get at least 8 bits', () => {
  assert.equal(name(new ActPolicy('fp16'), {}), 'fp16');
  assert.equal(name(new ActPolicy('int8'), {}), 'int8/g256');
  assert.equal(name(new ActPolicy('int4'), {}), 'int4/g256');
  assert.equal(name(new ActPolicy('int2'), {}), 'int2/g256');
  assert.equal(name(new ActPolicy('division'), {}), 'division/p8/hfc2');
  assert.equal(name(new ActPolicy('division'), { shape: [8, 4096] }), 'int8/g256', 'not a spatial map');
  assert.equal(name(new ActPolicy('int2'), { isNetworkInput: true }), 'int8/g256');
  assert.equal(name(new ActPolicy('division'), { isNetworkInput: true }), 'int8/g256');
  assert.equal(name(new ActPolicy('fp16'), { isNetworkInput: true }), 'fp16');
  const model = resnet20();
  const last = lastLinearPath(model);
  assert.equal(last, '13', 'conv, bn, relu, 9 blocks, pool, linear');
  const p = new ActPolicy({ mode: 'int2', model });
  assert.equal(name(p, { op: 'matmul', module: last, shape: [128, 64] }), 'int8/g256');
  assert.equal(name(p, { op: 'matmul', module: 'other', shape: [128, 64] }), 'int2/g256');
  assert.equal(name(new ActPolicy({ mode: 'int2', edgeBits: 4, model }), { op: 'matmul', module: last, shape: [128, 64] }), 'int4/g256');
});

test('overrides by module path (exact or prefix, most specific first) and by op; knobs', () => {
  const p = new ActPolicy({ mode: 'int2', layers: { '3': 'int8', '3.body.0': 'off' }, ops: { batchnorm: 'fp16' }, groupSize: 128, metadata: 'fp32' });
  assert.equal(name(p, { module: '3.body.1' }), 'int8/g128/m32');
  assert.equal(name(p, { module: '3' }), 'int8/g128/m32');
  assert.equal(name(p, { module: '3.body.0' }), 'keep');
  assert.equal(name(p, { module: '31' }), 'int2/g128/m32', 'a prefix must end at a dot');
  assert.equal(name(p, { op: 'batchnorm', module: '5' }), 'fp16');
  assert.equal(name(new ActPolicy({ mode: 'int4', stochastic: false }), {}), 'int4/g256/nearest');
  assert.equal(name(new ActPolicy({ mode: 'division', divisionBlock: 4, hfcBits: 4 }), {}), 'division/p4/hfc4');
  assert.equal(name(new ActPolicy('int4'), { group: 'row', shape: [8, 128, 64] }), 'int4/g64', 'per-row groups (LayerNorm input)');
  assert.equal(name(new ActPolicy('int4'), { shape: [8, 128, 64] }), 'int4/g256');
});

function makeInput(spec: InputSpec, rng: Rng): Tensor {
  if (spec.values) return fromValues(spec.values(rng), spec.shape, spec.dtype ?? 'float32');
  const n = spec.shape.reduce((a, b) => a * b, 1);
  return fromValues(Array.from({ length: n }, () => {
    let v = rng.normal();
    if (spec.positive) v = Math.abs(v) + 0.5;
    if (spec.awayFromZero && Math.abs(v) < spec.awayFromZero) v += Math.sign(v || 1) * spec.awayFromZero;
    return v;
  }), spec.shape, spec.dtype ?? 'float32');
}

test('every op in the registry: each declared save has a policy in every mode', () => {
  for (const mode of ACT_MODES) {
    const p = new ActPolicy({ mode, minElements: 0 });
    for (const op of allOps()) {
      for (const [save, declared] of Object.entries(op.saves)) {
        const { role, exact = false, group } = saveSpec(declared);
        const dtype = role === 'mask' || role === 'index' ? 'uint8' : 'float32';
        const e = p.resolve(ctx({ op: op.name, role, exact, group, dtype, shape: [4, 8, 8, 8] }));
        assert.ok(e.kind, `${op.name}.${save} (${role}) in ${mode}`);
        if (mode !== 'off' && role === 'mask') assert.equal(e.kind, 'mask');
        if (role === 'stats' || exact) assert.equal(e.kind, 'keep', `${op.name}.${save} is declared exact`);
        if (group === 'row' && e.kind === 'quant') assert.equal(e.groupSize, 8, `${op.name}.${save} groups per row`);
      }
    }
  }
});

test("every op's samples under every mode: only declared saves with their roles, each read by backward, and backward runs", () => {
  let checked = 0;
  for (const op of allOps().filter((o) => o.backward && o.samples)) {
    const everSaved = new Set<string>();
    op.samples!().forEach((sample, si) => {
      for (const mode of ACT_MODES) {
        const session = new Compression({ mode, minElements: 0, groupSize: 32 });
        const seen: [string, SaveRole][] = [];
        const read = new Set<string>();
        const spy = {
          ...session.hooks,
          pack: (t: Tensor, info: Parameters<typeof session.hooks.pack>[1]) => {
            if (info.op === op.name) seen.push([info.name, info.role]);
            return session.hooks.pack(t, info);
          },
          unpack: (packed: unknown, info: Parameters<typeof session.hooks.unpack>[1]) => {
            if (info.op === op.name) read.add(info.name);
            return session.hooks.unpack(packed as never, info);
          },
        };
        scope(() => {
          const rng = new Rng(31 + si);
          const inputs = sample.inputs.map((s) => (s ? makeInput(s, rng) : null));
          inputs.forEach((t, i) => {
            if (t && (op.differentiable ? op.differentiable[i] : isFloat(t.dtype))) t.requiresGrad = true;
          });
          const outs = withSavedTensorHooks(spy, () => runOp(op, inputs, sample.attrs));
          for (const [n, role] of seen) assert.equal(saveSpec(op.saves[n]!).role, role, `${op.name} ${mode}: '${n}' saved as ${role}`);
          const floats = outs.filter((o) => o.requiresGrad);
          if (floats.length === 0) return;
          backward(sum(floats[0]!));
          // A save backward never reads costs memory for nothing (every differentiable input needs grad here).
          for (const [n] of seen) {
            everSaved.add(n);
            assert.ok(read.has(n), `${op.name} ${mode}: saves '${n}' but its backward never reads it`);
          }
          for (const t of inputs) {
            if (t?.grad) assert.ok((t.grad.values() as Float32Array).every(Number.isFinite), `${op.name} ${mode}: non-finite gradient`);
          }
          checked++;
        });
        assert.equal(session.liveEntries, 0, `${op.name} ${mode}: packed copies left after backward`);
      }
    });
    const neverSaved = Object.keys(op.saves).filter((n) => !everSaved.has(n));
    assert.deepEqual(neverSaved, [], `${op.name}: declared saves that no sample saved and read`);
  }
  assert.ok(checked > 50, `only ${checked} op samples ran`);
});

test('withCompression config validation names the option', () => {
  assert.throws(() => new ActPolicy({ mode: 'int4', metadata: 'bf16' as never }), /metadata must be 'fp16' or 'fp32'/);
  assert.throws(() => new ActPolicy({ mode: 'int4', seed: 1.5 }), /seed must be an integer/);
  assert.throws(() => new ActPolicy({ mode: 'int4', minElements: -1 }), /minElements must be a positive integer/);
  assert.throws(() => new ActPolicy({ mode: 'int4', layers: { x: { kind: 'zip' } as never } }), /unknown encoding kind 'zip'/);
  assert.ok(new ActPolicy({ mode: 'off' }).isOff);
  assert.ok(!new ActPolicy({ mode: 'off', layers: { '0': 'int8' } }).isOff);
});

walk.done();
