import { test } from 'node:test';
import assert from 'node:assert/strict';
import { syntheticShapes } from '../../src/data/index.js';
import { createModel } from '../../src/nn/index.js';
import { Adam, SGD } from '../../src/optim/index.js';
import { fit } from '../../src/train/index.js';

function trainedWeights(seed: number, model: string): Float32Array[] {
  const data = syntheticShapes({ n: 96, seed: 5 });
  const m = createModel(model, data.itemShape, 10, seed);
  const opt = model === 'lenet' ? new Adam(m.parameters(), { lr: 1e-3 }) : new SGD(m.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true });
  fit(m, data, null, { epochs: 2, batchSize: 16, optimizer: opt, seed });
  const w = m.parameters().map((p) => p.values() as Float32Array);
  m.dispose();
  opt.dispose();
  return w;
}

test('same seed => bit-identical weights after N steps; another seed => different weights', () => {
  for (const model of ['lenet', 'mlp']) {
    const a = trainedWeights(7, model), b = trainedWeights(7, model), c = trainedWeights(8, model);
    a.forEach((w, i) => assert.deepEqual(Buffer.from(w.buffer), Buffer.from(b[i]!.buffer), `${model} parameter ${i}`));
    assert.notDeepEqual(Buffer.from(a[0]!.buffer), Buffer.from(c[0]!.buffer));
  }
});
