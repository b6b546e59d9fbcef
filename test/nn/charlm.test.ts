import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/backward.js';
import { scope } from '../../src/core/scope.js';
import { fromValues } from '../../src/core/tensor.js';
import { transformer } from '../../src/nn/index.js';
import { crossEntropy } from '../../src/ops/index.js';
import { Adam } from '../../src/optim/index.js';

test('the transformer character LM learns a repeating text (causal: loss falls far below uniform)', () => {
  const text = 'the quick brown fox jumps over the lazy dog. '.repeat(20);
  const vocab = [...new Set(text)];
  const ids = [...text].map((c) => vocab.indexOf(c));
  const T = 16, B = 8;
  const lm = transformer({ dim: 32, heads: 2, layers: 2, tokens: T, vocab: vocab.length, seed: 3 });
  const opt = new Adam(lm.parameters(), { lr: 3e-3 });
  let last = Infinity;
  for (let step = 0; step < 120; step++) {
    last = scope(() => {
      const xs: number[] = [], ys: number[] = [];
      for (let b = 0; b < B; b++) {
        const start = (step * 37 + b * 101) % (ids.length - T - 1);
        xs.push(...ids.slice(start, start + T));
        ys.push(...ids.slice(start + 1, start + T + 1));
      }
      const loss = crossEntropy(lm.call(fromValues(xs, [B, T], 'int32')), fromValues(ys, [B * T], 'int32'));
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss.item();
    });
  }
  assert.ok(last < 0.5 * Math.log(vocab.length), `final loss ${last} vs uniform ${Math.log(vocab.length)}`);
  lm.dispose();
  opt.dispose();
});
