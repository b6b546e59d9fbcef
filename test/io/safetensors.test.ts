import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors, loadModule, saveModule } from '../../src/io/index.js';
import { createModel } from '../../src/nn/index.js';
import { fromValues, Tensor } from '../../src/core/tensor.js';

test('safetensors round trip keeps names, dtypes, shapes, values and metadata; header is 8-byte aligned', () => {
  const tensors = new Map<string, Tensor>([
    ['a.weight', fromValues([1.5, -2, 3, 4], [2, 2])],
    ['ids', fromValues([1, 2, 3], [3], 'int32')],
    ['bits', fromValues([255, 0], [2], 'uint8')],
  ]);
  const bytes = encodeSafetensors(tensors, { format: 'slimgrad' });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLen) % 8, 0);
  const { tensors: back, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { format: 'slimgrad' });
  for (const [k, t] of tensors) {
    const b = back.get(k)!;
    assert.equal(b.dtype, t.dtype);
    assert.deepEqual(b.shape, [...t.shape]);
    assert.deepEqual(Array.from(b.values), t.toArray());
    t.dispose();
  }
});

test('corrupt or truncated safetensors files give errors naming the file and the problem', () => {
  const good = encodeSafetensors(new Map([['w', fromValues([1, 2, 3], [3])]]));
  assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 4), 'model.safetensors'), /model.safetensors: .*tensor 'w' is truncated/);
  assert.throws(() => decodeSafetensors(new Uint8Array(4), 'x.st'), /x.st: not a valid safetensors file: only 4 bytes/);
  const bad = good.slice();
  bad[8] = 0x78; // breaks the JSON
  assert.throws(() => decodeSafetensors(bad, 'y.st'), /y.st: not a valid safetensors file: header is not JSON/);
});

test('a saved model loads back into a fresh model with identical outputs; mismatched models are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-'));
  const file = join(dir, 'lenet.safetensors');
  const a = createModel('lenet', [1, 28, 28], 10, 1), b = createModel('lenet', [1, 28, 28], 10, 2);
  saveModule(a, file, { note: 'test' });
  assert.deepEqual(loadModule(b, file), { note: 'test' });
  const pa = a.parameters(), pb = b.parameters();
  pa.forEach((p, i) => assert.deepEqual(p.toArray(), pb[i]!.toArray()));
  const mlp = createModel('mlp', [1, 28, 28], 10, 1);
  assert.throws(() => loadModule(mlp, file), /lenet.safetensors: loadStateDict: missing .*; unexpected/);
  writeFileSync(join(dir, 'cut.safetensors'), readFileSync(file).subarray(0, 100));
  assert.throws(() => loadModule(b, join(dir, 'cut.safetensors')), /cut.safetensors: not a valid safetensors file/);
  for (const m of [a, b, mlp]) m.dispose();
});
