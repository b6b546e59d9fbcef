import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedRandom, RANDOM_DOMAINS } from '../../src/data/index.js';
import { Rng } from '../../src/util/rng.js';

const draws = (seed: number, domain: number, a: number, b: number, n = 6) => {
  const r = new KeyedRandom(seed, domain);
  r.reset(a, b);
  return Array.from({ length: n }, () => r.uniform());
};

test('KeyedRandom draws depend only on (seed, domain, a, b), whatever was drawn before', () => {
  assert.deepEqual(draws(5, 1, 2, 9), draws(5, 1, 2, 9));
  const shared = new KeyedRandom(5, 1);
  shared.reset(0, 0);
  shared.uniform();
  shared.reset(2, 9);
  assert.deepEqual(Array.from({ length: 6 }, () => shared.uniform()), draws(5, 1, 2, 9));
  for (const other of [draws(5, 1, 3, 9), draws(5, 1, 2, 10), draws(6, 1, 2, 9), draws(5, 2, 2, 9)]) assert.notDeepEqual(other, draws(5, 1, 2, 9));
});

test('KeyedRandom domains never repeat the numbers of core Rng streams of the same seed', () => {
  const core = new Set<number>();
  for (let stream = 0; stream < 64; stream++) {
    const r = new Rng(7, stream);
    for (let k = 0; k < 64; k++) core.add(r.uniform());
  }
  for (const domain of Object.values(RANDOM_DOMAINS)) {
    for (let a = 0; a < 8; a++) for (const v of draws(7, domain, a, 0, 64)) assert.ok(!core.has(v), `domain ${domain} repeats an Rng draw`);
  }
});

test('KeyedRandom is uniform enough and its permutations are permutations', () => {
  const r = new KeyedRandom(1, RANDOM_DOMAINS.augmentation);
  const counts = new Array(8).fill(0);
  for (let i = 0; i < 8000; i++) {
    r.reset(0, i);
    counts[r.int(8)]++;
  }
  for (const c of counts) assert.ok(c > 850 && c < 1150, `bucket ${c} of 1000 expected`);
  r.reset(3, 0);
  const p = r.permutation(1000);
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.ok(p.some((v, i) => v !== i));
});
