import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barPlot, beeswarmPlot, imageHeatmap, waterfallPlot } from '../../src/explain/index.js';
import { findAll, parseSvg, parseXml } from './svg-check.js';

const players = ['age', 'workclass', 'education <&> "level"', 'hours', 'sex'];
const values = [0.5, -0.25, 0.125, -1.5, 0.01];

test('the XML checker rejects malformed documents (so the plot checks can fail)', () => {
  assert.throws(() => parseXml('<svg><g></svg>'), /closes <g>/);
  assert.throws(() => parseXml('<svg><text>a & b</text></svg>'), /unescaped '&'/);
  assert.throws(() => parseXml('<svg><rect x=1/></svg>'), /malformed tag/);
  assert.throws(() => parseXml('<svg><rect x="1" x="2"/></svg>'), /duplicate attribute/);
  assert.throws(() => parseSvg('<svg width="1" height="1" viewBox="0 0 1 1"></svg>'), /SVG namespace/);
  assert.equal(parseXml('<a b="&lt;"><c/>t &amp; u</a>').text, 't & u');
});

test('bar plot: valid SVG, one bar per player ordered by |phi|, lengths proportional, names escaped', () => {
  const svg = parseSvg(barPlot({ players, values }, { title: 'row 0' }));
  const bars = findAll(svg, 'rect', 'bar');
  assert.deepEqual(bars.map((b) => Number(b.attrs['data-value'])), [-1.5, 0.5, -0.25, 0.125, 0.01]);
  assert.equal(bars[0]!.attrs['class'], 'bar negative');
  assert.equal(bars[1]!.attrs['fill'], '#ff0051');
  const w = bars.map((b) => Number(b.attrs['width']));
  assert.ok(Math.abs(w[1]! / w[0]! - 0.5 / 1.5) < 0.01, `bar widths ${w}`);
  assert.deepEqual(findAll(svg, 'text', 'label').map((t) => t.text), ['hours', 'age', 'workclass', 'education <&> "level"', 'sex']);
  // maxDisplay folds the rest into one row holding their sum.
  const folded = findAll(parseSvg(barPlot({ players, values }, { maxDisplay: 3 })), 'rect', 'bar');
  assert.equal(folded.length, 3);
  assert.equal(folded[2]!.attrs['data-player'], '3 other features');
  assert.ok(Math.abs(Number(folded[2]!.attrs['data-value']) - (-0.25 + 0.125 + 0.01)) < 1e-12);
  assert.throws(() => barPlot({ players, values: [1, 2] }), /barPlot: 5 player names for 2 values/);
  assert.throws(() => barPlot({ players: ['a'], values: [NaN] }), /value 0 \('a'\) is not finite/);
});

test('waterfall: steps chain from the base value to f(x); an estimation gap gets its own step', () => {
  const base = 0.2;
  const svg = parseSvg(waterfallPlot({ players, values, base }));
  const steps = findAll(svg, 'polygon', 'step');
  assert.equal(steps.length, 5);
  // Bottom step starts at the base; each step starts where the one below ends; the top ends at f(x).
  assert.equal(Number(steps[4]!.attrs['data-start']), base);
  for (let k = 0; k < 4; k++) {
    assert.ok(Math.abs(Number(steps[k]!.attrs['data-start']) - Number(steps[k + 1]!.attrs['data-start']) - Number(steps[k + 1]!.attrs['data-value'])) < 1e-12);
  }
  const output = Number(findAll(svg, 'text', 'output')[0]!.attrs['data-value']);
  assert.ok(Math.abs(output - (base + values.reduce((a, b) => a + b, 0))) < 1e-12);
  assert.ok(Math.abs(Number(steps[0]!.attrs['data-start']) + Number(steps[0]!.attrs['data-value']) - output) < 1e-12);
  const withGap = findAll(parseSvg(waterfallPlot({ players, values, base, output: 5 })), 'polygon', 'step');
  assert.equal(withGap.length, 6);
  assert.equal(withGap[5]!.attrs['data-player'], 'estimation gap');
});

test('beeswarm: a dot per row and player, players ordered by mean |phi|, coloured by feature value', () => {
  const rows = 20, m = 3;
  const v = new Float64Array(rows * m), f = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) { v[r * m] = 0.01 * r; v[r * m + 1] = (r % 2 ? 1 : -1) * r; v[r * m + 2] = -0.1 * r; f[r * m + 1] = r; }
  const svg = parseSvg(beeswarmPlot({ players: ['small', 'big', 'medium'], values: v, features: f }, { title: 't' }));
  assert.deepEqual(findAll(svg, 'g', 'swarm').map((g) => g.attrs['data-player']), ['big', 'medium', 'small']);
  const dots = findAll(svg, 'circle', 'dot');
  assert.equal(dots.length, rows * m);
  const big = findAll(findAll(svg, 'g', 'swarm')[0]!, 'circle', 'dot');
  const colourOf = (row: number) => big.find((d) => d.attrs['data-row'] === String(row))!.attrs['fill'];
  assert.equal(colourOf(0), '#008bfb');
  assert.equal(colourOf(rows - 1), '#ff0051');
  assert.equal(findAll(svg, 'rect', 'colorbar').length, 1);
  assert.throws(() => beeswarmPlot({ players: ['a', 'b'], values: [1, 2, 3] }), /3 values do not form rows of 2 players/);
});

test('image heat map: a panel per model, overlay runs merged, opacity scaled by |attribution|', () => {
  const h = 4, w = 4;
  const image = Float64Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0));
  const map = Float64Array.from({ length: 16 }, (_, i) => ((i % 4) < 2 ? 2 : -1)); // two runs per row
  const half = map.map((v) => v / 2);
  const svg = parseSvg(imageHeatmap([{ title: 'float', image, map }, { title: 'binary <1-bit>', image, map: half }], { height: h, width: w }));
  const panels = findAll(svg, 'g', 'panel');
  assert.deepEqual(panels.map((p) => p.attrs['data-title']), ['float', 'binary <1-bit>']);
  const cells = findAll(panels[0]!, 'rect', 'cell');
  assert.equal(cells.length, 8);
  assert.equal(Number(cells[0]!.attrs['width']), 2 * 6);
  assert.equal(Number(cells[0]!.attrs['fill-opacity']), 0.7);
  assert.equal(Number(cells[1]!.attrs['fill-opacity']), 0.35);
  // Shared scale: the second panel's strongest cell is half as opaque.
  assert.equal(Number(findAll(panels[1]!, 'rect', 'cell')[0]!.attrs['fill-opacity']), 0.35);
  assert.equal(findAll(findAll(panels[0]!, 'g', 'image')[0]!, 'rect').length, 4);
  assert.throws(() => imageHeatmap([{ title: 'x', image, map: map.subarray(0, 3) }], { height: h, width: w }), /panel 'x' has 16 pixels and 3 map values/);
});
