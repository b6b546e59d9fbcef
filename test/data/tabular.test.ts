import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { encodeTabular, loadTabular, MISSING_LEVEL, parseCsv } from '../../src/data/tabular.js';
import { readTabularFile } from '../../src/data/tabular-file.js';

test('parseCsv: quoted fields with delimiters, newlines, doubled quotes; CRLF; trimming', () => {
  const t = parseCsv('a, b ,c\r\n1,"x, ""y""",  z \r\n\r\n2,"multi\nline",w\n');
  assert.deepEqual(t.header, ['a', 'b', 'c']);
  assert.deepEqual(t.rows, [['1', 'x, "y"', 'z'], ['2', 'multi\nline', 'w']]);
  assert.deepEqual(parseCsv('a;b\n"1";2', ';').rows, [['1', '2']]);
});

test('parseCsv: ragged rows and unterminated quotes are errors with line numbers', () => {
  assert.throws(() => parseCsv('a,b\n1,2\n3\n'), /line 3 has 1 fields, the header has 2/);
  assert.throws(() => parseCsv('a,b\n1,"2\n'), /unterminated quoted field starting on line 2/);
  assert.throws(() => parseCsv(''), /no header/);
});

const small = [
  'age,color,const,label',
  '20,red,k,no', '30,blue,k,yes', '40,?,k,no', '50,red,k,yes', '60,blue,k,no',
  '25,red,k,yes', '35,blue,k,no', '45,red,k,yes', '55,?,k,no', '65,red,k,yes',
].join('\n');

test('encodeTabular: standardises numeric with train stats, one-hot groups, missing level, constant dropped', () => {
  const ds = loadTabular(small, { label: 'label', testFraction: 0.3, seed: 1 });
  assert.deepEqual(ds.classes, ['no', 'yes']);
  assert.deepEqual(ds.dropped, [{ name: 'const', reason: 'constant' }]);
  assert.deepEqual(ds.columns, ['age', 'color=blue', 'color=red', `color=${MISSING_LEVEL}`]);
  assert.deepEqual(ds.groups.map((g) => [g.name, g.kind, g.start, g.end]), [['age', 'numeric', 0, 1], ['color', 'categorical', 1, 4]]);
  assert.deepEqual(ds.missing, [{ name: 'color', cells: 2, handling: 'level' }]);
  assert.equal(ds.train.rows + ds.test.rows, 10);
  assert.equal(ds.test.rows, 3);
  // Train ages standardised: mean 0, population std 1.
  const ages = Array.from({ length: ds.train.rows }, (_, r) => ds.train.x[r * 4]!);
  const mean = ages.reduce((a, b) => a + b, 0) / ages.length;
  const sd = Math.sqrt(ages.reduce((a, b) => a + (b - mean) ** 2, 0) / ages.length);
  assert.ok(Math.abs(mean) < 1e-12 && Math.abs(sd - 1) < 1e-12);
  // Each row has exactly one hot column in the categorical block.
  for (const split of [ds.train, ds.test]) {
    for (let r = 0; r < split.rows; r++) assert.equal(split.x[r * 4 + 1]! + split.x[r * 4 + 2]! + split.x[r * 4 + 3]!, 1);
  }
  // Same seed, same split; different seed, different split.
  assert.deepEqual(loadTabular(small, { label: 'label', testFraction: 0.3, seed: 1 }).test.x, ds.test.x);
  assert.notDeepEqual(loadTabular(small, { label: 'label', testFraction: 0.3, seed: 2 }).test.x, ds.test.x);
});

test('encodeTabular: numeric missing cells imputed with the train mean, or rejected', () => {
  const text = 'a,b,y\n1,x,0\n,y,1\n3,x,0\n5,y,1\n';
  const ds = loadTabular(text, { label: 'y', testFraction: 0.25 });
  assert.deepEqual(ds.missing, [{ name: 'a', cells: 1, handling: 'imputed' }]);
  const all = [...Array.from({ length: ds.train.rows }, (_, r) => ds.train.x[r * 3]!), ...Array.from({ length: ds.test.rows }, (_, r) => ds.test.x[r * 3]!)];
  assert.ok(all.some((v) => v === 0), 'imputed cell is 0 after standardising');
  assert.throws(() => loadTabular(text, { label: 'y', missing: 'error' }), /missing value in numeric column 'a' on data row 2/);
});

test('encodeTabular: bad input gets clear errors', () => {
  assert.throws(() => loadTabular(small, { label: 'income' }), /unknown label column 'income' \(columns: age, color, const, label\)/);
  assert.throws(() => loadTabular('a,y\n1,no\n2,\n3,yes\n', { label: 'y' }), /missing label 'y' on data row 2/);
  assert.throws(() => loadTabular('a,y\n1,a\n2,b\n3,c\n', { label: 'y' }), /exactly 2 values, found 3/);
  assert.throws(() => loadTabular(small, { label: 'label', drop: ['nope'] }), /unknown column 'nope'/);
  assert.throws(() => loadTabular(small, { label: 'label', positive: 'maybe' }), /positive class 'maybe' does not occur/);
  assert.throws(() => loadTabular('a,y\n1,no\n1,yes\n', { label: 'y' }), /no feature columns left/);
  assert.throws(() => loadTabular('a,y\n1,no\nInfinity,yes\n', { label: 'y' }), /infinite value 'Infinity' in column 'a' on data row 2/);
  assert.throws(() => encodeTabular(parseCsv(small), { label: 'label', testFraction: 1 }), /testFraction/);
});

test('encodeTabular: categorical option forces one-hot for numeric-looking columns; positive class option', () => {
  const ds = loadTabular('code,y\n1,a\n2,b\n1,b\n2,a\n', { label: 'y', categorical: ['code'], positive: 'a', testFraction: 0.5 });
  assert.deepEqual(ds.columns, ['code=1', 'code=2']);
  assert.deepEqual(ds.classes, ['b', 'a']);
});

const dataDir = '../shared/data/tabular';
test('real files: Adult (class, fnlwgt dropped => 13 players) and Bank (y => 16 players)', { skip: !existsSync(dataDir) && 'shared data not present' }, () => {
  const adult = readTabularFile(`${dataDir}/adult.csv`, { label: 'class', drop: ['fnlwgt'] });
  assert.equal(adult.groups.length, 13);
  assert.deepEqual(adult.classes, ['<=50K', '>50K']);
  assert.equal(adult.train.rows + adult.test.rows, 32561);
  assert.deepEqual(adult.missing.map((m) => m.name).sort(), ['native-country', 'occupation', 'workclass']);
  assert.equal(adult.groups.filter((g) => g.kind === 'numeric').length, 5);
  const positives = adult.train.y.reduce((a, b) => a + b, 0) / adult.train.rows;
  assert.ok(positives > 0.2 && positives < 0.3, `Adult positive rate ${positives}`);
  for (let i = 0; i < adult.train.x.length; i++) assert.ok(Number.isFinite(adult.train.x[i]!));
  const bank = readTabularFile(`${dataDir}/bank.csv`, { label: 'y' });
  assert.equal(bank.groups.length, 16);
  assert.deepEqual(bank.classes, ['no', 'yes']);
  assert.equal(bank.train.rows + bank.test.rows, 4521);
  assert.equal(bank.groups.filter((g) => g.kind === 'numeric').length, 7);
  assert.throws(() => readTabularFile(`${dataDir}/nope.csv`, { label: 'y' }), /cannot read '.*nope.csv'/);
  assert.throws(() => readTabularFile(`${dataDir}/bank.csv`, { label: 'class' }), /bank.csv: .*unknown label column 'class'/);
});
