// The size/accuracy plot of `bench quant --plot`: one point per accuracy label (means over seeds,
// at the size of the file that label deploys as), drawn left to right by size, whatever presets exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plotPoints } from '../../bench/quant.js';
import { sizeAccuracyPlot } from '../../bench/quant-plot.js';
import { findAll, parseSvg } from '../explain/svg-check.js';

const acc = (preset: string, seed: number, testAccuracy: number, floatTestAccuracy: number) => ({ preset, seed, testAccuracy, floatTestAccuracy });

test('plot points: mean over seeds, nested-separate and smartdeal-ptq at the size of the form they deploy as, float at its weight bytes', () => {
  const points = plotPoints(
    [
      acc('twn', 1, 0.98, 0.99), acc('twn', 2, 0.96, 0.97), acc('nested:4', 1, 0.97, 0.99), acc('nested-separate:4', 1, 0.975, 0.99),
      acc('smartdeal-ptq', 1, 0.5, 0.99), acc('ttq', 1, 0.9, 0.99),
    ],
    [{ preset: 'twn', packedBytes: 23000 }, { preset: 'nested:4', packedBytes: 64000 }, { preset: 'smartdeal', packedBytes: 25000 }, { preset: 'ttq', packedBytes: 21000 }],
    247000,
  );
  const by = Object.fromEntries(points.map((p) => [p.label, p]));
  assert.deepEqual(by['float'], { label: 'float', group: 'float', bytes: 247000, accuracy: 0.98, seeds: 2 });
  assert.equal(by['twn']!.accuracy, 0.97);
  assert.equal(by['twn']!.seeds, 2);
  assert.equal(by['nested-separate:4']!.bytes, 64000);
  assert.equal(by['nested-separate:4']!.group, 'nested-separate');
  assert.equal(by['smartdeal-ptq']!.bytes, 25000);
  assert.equal(by['ttq']!.bytes, 21000, 'a preset the plot code does not know still appears');
  assert.equal(points.length, 6);
});

test('size/accuracy SVG: one labelled point per method, x grows with log size, y with accuracy', () => {
  const points = [
    { label: 'float', group: 'float', bytes: 247000, accuracy: 0.985, seeds: 3 },
    { label: 'nested:2', group: 'nested', bytes: 64000, accuracy: 0.97, seeds: 3 },
    { label: 'bnn', group: 'bnn', bytes: 14000, accuracy: 0.95, seeds: 3 },
  ];
  const svg = parseSvg(sizeAccuracyPlot(points, 'size <vs> accuracy'));
  const marks = findAll(svg, 'g', 'point');
  assert.deepEqual(marks.map((g) => g.attrs['data-label']), ['float', 'nested:2', 'bnn']);
  const cx = marks.map((g) => Number(g.children[0]!.attrs['cx'])), cy = marks.map((g) => Number(g.children[0]!.attrs['cy']));
  assert.ok(cx[2]! < cx[1]! && cx[1]! < cx[0]!, `x by size: ${cx}`);
  // log scale: 14k -> 64k is a larger step than 64k -> 247k.
  assert.ok(cx[1]! - cx[2]! > cx[0]! - cx[1]!);
  assert.ok(cy[0]! < cy[1]! && cy[1]! < cy[2]!, `higher accuracy is higher up: ${cy}`);
  assert.equal(findAll(svg, 'g', 'legend').length, 3);
  // A point far below the rest is named under the plot, not drawn.
  const off = parseSvg(sizeAccuracyPlot([...points, { label: 'smartdeal-ptq', group: 'smartdeal-ptq', bytes: 25000, accuracy: 0.686, seeds: 1 }], 't'));
  assert.equal(findAll(off, 'g', 'point').length, 3);
  assert.match(findAll(off, 'text', 'off-scale')[0]!.text, /smartdeal-ptq 68\.60 % at 24\.41 KiB/);
  assert.throws(() => sizeAccuracyPlot([], 't'), /no points/);
  assert.throws(() => sizeAccuracyPlot([{ ...points[0]!, bytes: 0 }], 't'), /point 'float' has bytes 0/);
});
