import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateRawSync } from 'node:zlib';
import { crc32, datasetFromArrays, listZip, loadNpz, loadNpzDataset, parseNpy, parseNpz, readZip } from '../../src/data/index.js';
import { encodeNpy, encodeZip, tempDir, writeFile } from './fixtures.js';
import { NUMPY_SAVEZ, NUMPY_SAVEZ_COMPRESSED } from './numpy-fixtures.js';

const inflate = (b: Uint8Array) => new Uint8Array(inflateRawSync(b));
const fromBase64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('archives written by NumPy (savez stored, savez_compressed deflated, zip64 local headers) parse exactly', () => {
  for (const fixture of [NUMPY_SAVEZ, NUMPY_SAVEZ_COMPRESSED]) {
    const arrays = parseNpz(fromBase64(fixture), 'numpy.npz', inflate);
    assert.deepEqual([...arrays.keys()], ['f4', 'f8', 'i1', 'u1', 'i4', 'i8']);
    const f4 = arrays.get('f4')!;
    assert.equal(f4.dtype, 'float32');
    assert.deepEqual(f4.shape, [2, 3]);
    assert.deepEqual(Array.from(f4.data), [1.5, -2.25, 3, 0, Math.fround(1e-3), -7.5]);
    assert.deepEqual(Array.from(arrays.get('f8')!.data), [Math.PI, -Math.E]);
    assert.deepEqual(Array.from(arrays.get('i1')!.data), [-128, 0, 127]);
    const u1 = arrays.get('u1')!;
    assert.deepEqual([u1.dtype, u1.shape, Array.from(u1.data)], ['uint8', [2, 3], [0, 51, 102, 153, 204, 255]]);
    assert.deepEqual(Array.from(arrays.get('i4')!.data), [-2147483648, 5, 2147483647]);
    const i8 = arrays.get('i8')!;
    assert.deepEqual([i8.dtype, Array.from(i8.data)], ['int32', [3, -4, 1000000]]);
  }
});

test('npy v1 and v2 headers round-trip through our writer, in stored and deflated zips (zip32 and zip64)', () => {
  const values = Array.from({ length: 24 }, (_, i) => (i * 37) % 100);
  const entries = [
    { name: 'a.npy', data: encodeNpy('<f4', [2, 3, 4], values, 1), deflate: false },
    { name: 'b.npy', data: encodeNpy('<i8', [24], values, 2), deflate: true },
    { name: 'c.npy', data: encodeNpy('|u1', [4, 6], values, 2), deflate: true },
    { name: 'README.txt', data: new TextEncoder().encode('not an array'), deflate: false },
  ];
  for (const zip64 of [false, true]) {
    const zip = encodeZip(entries, zip64);
    assert.deepEqual(listZip(zip, 'x.npz').map((e) => [e.name, e.method]), [['a.npy', 0], ['b.npy', 8], ['c.npy', 8], ['README.txt', 0]]);
    assert.equal(new TextDecoder().decode(readZip(zip, 'x.npz', inflate).get('README.txt')), 'not an array');
    const arrays = parseNpz(zip, 'x.npz', inflate);
    assert.deepEqual([...arrays.keys()], ['a', 'b', 'c']);
    assert.deepEqual(arrays.get('a')!.shape, [2, 3, 4]);
    for (const k of ['a', 'b', 'c']) assert.deepEqual(Array.from(arrays.get(k)!.data), values, k);
  }
});

test('npy errors name the file (archive:entry) and the problem', () => {
  const good = encodeNpy('<f4', [2], [1, 2]);
  const header = (h: string) => {
    const bytes = encodeNpy('<f4', [2], [1, 2]);
    const text = new TextEncoder().encode(h.padEnd(bytes[8]! - 1, ' ') + '\n');
    bytes.set(text, 10);
    return bytes;
  };
  const cases: [Uint8Array, RegExp][] = [
    [new TextEncoder().encode('PK\u0003\u0004 not npy'), /^a\.npy: bad \.npy magic/],
    [Uint8Array.of(...good.subarray(0, 6), 4, 0, 0, 0), /^a\.npy: unsupported \.npy format version 4\.0/],
    [good.subarray(0, 40), /^a\.npy: truncated \.npy header/],
    [good.subarray(0, good.length - 1), /^a\.npy: truncated \.npy data: shape \(2\) of '<f4' needs 8 bytes, the file has 7/],
    [header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"), /^a\.npy: unsupported \.npy dtype '<c8'/],
    [header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"), /^a\.npy: big-endian \.npy dtype '>f4' is not supported/],
    [header("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }"), /^a\.npy: fortran_order arrays are not supported/],
    [header("{'descr': '<f4', 'shape': (2,), }"), /^a\.npy: malformed \.npy header/],
    [encodeNpy('<i8', [1], [2 ** 40]), /^a\.npy: int64 value 1099511627776 at index 0 does not fit in int32/],
  ];
  for (const [bytes, message] of cases) assert.throws(() => parseNpy(bytes, 'a.npy'), { name: 'DataFormatError', message });
});

test('corrupt zips are reported with the archive and entry name', () => {
  const data = encodeNpy('<f4', [64], Array.from({ length: 64 }, (_, i) => i));
  const stored = encodeZip([{ name: 'x.npy', data, deflate: false }]);
  const deflated = encodeZip([{ name: 'x.npy', data, deflate: true }]);

  assert.throws(() => parseNpz(stored.subarray(0, stored.length - 10), 'd.npz', inflate), { message: /^d\.npz: not a zip archive \(no end-of-central-directory record/ });
  const flipped = stored.slice();
  flipped[100]! ^= 0xff; // a data byte: the CRC no longer matches
  assert.throws(() => parseNpz(flipped, 'd.npz', inflate), { message: /^d\.npz:x\.npy: CRC-32 mismatch/ });
  const garbled = deflated.slice();
  garbled.fill(0xff, 40, 60); // inside the deflate stream
  assert.throws(() => parseNpz(garbled, 'd.npz', inflate), { message: /^d\.npz:x\.npy: (corrupt deflate data|CRC-32 mismatch|inflated to)/ });
  const method = stored.slice();
  const cd = listZip(stored, 'd.npz');
  assert.equal(cd.length, 1);
  // Method field of the central record (offset 10), found after the local header and the data.
  const central = stored.length - 22 - (46 + 'x.npy'.length);
  method[central + 10] = 12; // bzip2
  assert.throws(() => parseNpz(method, 'd.npz', inflate), { message: /^d\.npz:x\.npy: unsupported zip compression method 12/ });
  const encrypted = stored.slice();
  encrypted[central + 8] = 1;
  assert.throws(() => parseNpz(encrypted, 'd.npz', inflate), { message: /^d\.npz: zip entry 'x\.npy' is encrypted/ });
});

test('datasetFromArrays: ranks, channels-last transpose, scaling and label checks', () => {
  const x = { dtype: 'uint8' as const, shape: [2, 2, 2, 3], data: Uint8Array.from({ length: 24 }, (_, i) => i * 10) };
  const y = { dtype: 'int32' as const, shape: [2], data: Int32Array.of(1, 4) };
  const hwc = datasetFromArrays(x, y, { name: 'hwc', channelsLast: true });
  assert.deepEqual(hwc.itemShape, [3, 2, 2]);
  assert.equal(hwc.numClasses, 5);
  // Item 0, channel 1, pixel (row 1, col 0) came from x[0, 1, 0, 1] = element 7.
  assert.equal(hwc.x[1 * 4 + 2], Math.fround((7 * 10) / 255));
  const chw = datasetFromArrays(x, y, { name: 'chw', scale: 1 });
  assert.deepEqual(chw.itemShape, [2, 2, 3]);
  assert.equal(chw.x[7], 70);
  const flat = datasetFromArrays({ dtype: 'float64', shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) }, y, { name: 'f', numClasses: 10 });
  assert.deepEqual([flat.itemShape, flat.numClasses, Array.from(flat.item(1).x)], [[3], 10, [4, 5, 6]]);
  const images = datasetFromArrays({ dtype: 'uint8', shape: [2, 2, 2], data: new Uint8Array(8) }, y, { name: 'g' });
  assert.deepEqual(images.itemShape, [1, 2, 2]);

  assert.throws(() => datasetFromArrays(x, { dtype: 'int32', shape: [3], data: new Int32Array(3) }, { name: 'm', ySource: 'm.npz:y.npy' }), {
    message: /^m\.npz:y\.npy: 3 labels for 2 items in m x: the counts must match/,
  });
  assert.throws(() => datasetFromArrays(x, { dtype: 'float32', shape: [2], data: new Float32Array(2) }, { name: 'm' }), { message: /^m y: labels must be integers/ });
  assert.throws(() => datasetFromArrays(x, y, { name: 'm', numClasses: 3 }), { message: /^m y: label 4 is outside \[0, 3\)/ });
});

test('loadNpz / loadNpzDataset read files and name missing arrays', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = writeFile(
      dir,
      'tiny.npz',
      encodeZip([
        { name: 'x_train.npy', data: encodeNpy('|u1', [3, 2, 2], Array.from({ length: 12 }, (_, i) => i * 20)), deflate: true },
        { name: 'y_train.npy', data: encodeNpy('<i8', [3], [2, 0, 1]), deflate: false },
      ]),
    );
    assert.deepEqual([...(await loadNpz(file)).keys()], ['x_train', 'y_train']);
    const d = await loadNpzDataset(file, { x: 'x_train', y: 'y_train' });
    assert.deepEqual([d.length, d.itemShape, d.numClasses, Array.from(d.y)], [3, [1, 2, 2], 3, [2, 0, 1]]);
    assert.equal(d.x[11], Math.fround(220 / 255));
    await assert.rejects(loadNpzDataset(file), { message: /tiny\.npz: no array 'x' \(arrays: x_train, y_train\)/ });
  } finally {
    cleanup();
  }
});
