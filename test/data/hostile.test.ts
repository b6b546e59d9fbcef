// Hostile files: bounded decompression (checked with spy decompressors: the memory is never
// asked for) and the validation fixes the fuzz harness led to.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateRawSync, gzipSync } from 'node:zlib';
import {
  decodeIdx,
  gunzipBounded,
  nodeDecompressors,
  parseIdx,
  parseNpy,
  parseNpz,
  parseTabularFile,
  type Decompress,
} from '../../src/data/index.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { deflatedZipDeclaring, encodeIdx, encodeNpy, encodeZip } from './fixtures.js';

const { gunzip, inflateRaw } = await nodeDecompressors();

/** Wraps a decompressor, recording the largest output it was allowed. */
function spy(inner: Decompress): { run: Decompress; maxAsked: () => number } {
  let max = 0;
  return { run: (b, limit, partial) => ((max = Math.max(max, partial ? 0 : limit)), inner(b, limit, partial)), maxAsked: () => max };
}

test('a gzipped IDX file is inflated no further than its header declares (+4 KiB), and the error names both sizes', () => {
  const header = encodeIdx('uint8', [10, 4, 4], new Uint8Array(160));
  const bomb = gzipSync(new Uint8Array(4 << 20).fill(0).map((_, i) => (i < header.length ? header[i]! : 0)));
  const g = spy(gunzip);
  assert.throws(() => decodeIdx(bomb, 'bomb-idx3-ubyte.gz', g.run), {
    name: 'DataFormatError',
    message: /^bomb-idx3-ubyte\.gz: gzip data inflates past 4,272 bytes although the IDX header \(shape \[10, 4, 4\] of uint8\) declares 176 bytes \(the gzip trailer says 4,194,304 bytes\)/,
  });
  assert.equal(g.maxAsked(), 176 + 4096);
  // An honest file of the same shape reads back exactly.
  const good = encodeIdx('uint8', [10, 4, 4], Uint8Array.from({ length: 160 }, (_, i) => i));
  assert.deepEqual(decodeIdx(gzipSync(good), 'good.gz', gunzip), parseIdx(good, 'good'));
});

test('declared sizes over maxBytes are refused before anything is inflated', () => {
  const header = encodeIdx('uint8', [100000, 28, 28], []);
  const g = spy(gunzip);
  assert.throws(() => decodeIdx(gzipSync(header), 'big.gz', g.run, { maxBytes: 1 << 20 }), {
    message: /^big\.gz: the IDX header \(shape \[100000, 28, 28\] of uint8\) declares 78,400,016 bytes, over the limit of 1,048,576 bytes \(raise it with the maxBytes option/,
  });
  assert.equal(g.maxAsked(), 0);
  // Without a header to peek at, the gzip trailer is the declaration.
  assert.throws(() => gunzipBounded(gzipSync(new Uint8Array(3 << 20)), 'blob.gz', gunzip, { maxBytes: 1 << 20 }), { message: /^blob\.gz: the gzip trailer declares 3,145,728 bytes, over the limit/ });
  // A format without a header bounds what the trailer may claim.
  assert.throws(() => gunzipBounded(gzipSync(new Uint8Array(40000)), 'batch.bin', gunzip, { atMost: { bytes: 30730, by: 'ten records' } }), {
    message: /^batch\.bin: the gzip trailer declares 40,000 bytes, more than ten records \(30,730 bytes\)$/,
  });
  const forged = gzipSync(new Uint8Array(1 << 20));
  new DataView(forged.buffer, forged.byteOffset).setUint32(forged.length - 4, 1000, true);
  assert.throws(() => gunzipBounded(forged, 'forged.gz', gunzip), { message: /^forged\.gz: gzip data inflates past 5,096 bytes although the gzip trailer declares 1,000 bytes/ });
});

test('npz: entries inflate no further than the directory declares; totals over maxBytes are refused unread', () => {
  const npy = encodeNpy('|u1', [4], [1, 2, 3, 4]);
  const zip = encodeZip([{ name: 'x.npy', data: npy, deflate: true }]);
  const i = spy(inflateRaw);
  assert.deepEqual(Array.from(parseNpz(zip, 'a.npz', i.run).get('x')!.data), [1, 2, 3, 4]);
  assert.equal(i.maxAsked(), npy.length + 4096);
  // A bomb as the entry's data, the directory still declaring the npy's size.
  const lying = deflatedZipDeclaring('x.npy', deflateRawSync(new Uint8Array(2 << 20)), npy.length);
  assert.throws(() => parseNpz(lying, 'bomb.npz', inflateRaw), { message: /^bomb\.npz:x\.npy: deflate data inflates past [\d,]+ bytes although the zip directory declares 132 bytes/ });
  const i2 = spy(inflateRaw);
  assert.throws(() => parseNpz(zip, 'a.npz', i2.run, { maxBytes: 50 }), { message: /^a\.npz: the zip directory declares 132 bytes in 1 entries, over the limit of 50 bytes/ });
  assert.equal(i2.maxAsked(), 0);
});

test('huge dimensions times a zero dimension are refused, not read as NaN elements', () => {
  // 65536^4 overflows 2^53; the old product then times 0 gave NaN, which passed every size check.
  const idx = encodeIdx('uint8', [65536, 65536, 65536, 65536, 65536, 0], []);
  assert.throws(() => parseIdx(Uint8Array.of(...idx, 1, 2, 3), 'z.idx'), { message: /^z\.idx: 3 unexpected bytes after the IDX data of shape \[65536, 65536, 65536, 65536, 65536, 0\]/ });
  const npy = encodeNpy('|u1', [2], [7, 8]);
  const text = new TextDecoder().decode(npy.subarray(10, 10 + npy[8]!)).replace('(2,)', '(9007199254740991, 9007199254740991, 0)');
  const bytes = Uint8Array.of(...npy.subarray(0, 10), ...new TextEncoder().encode(text), 7, 8);
  new DataView(bytes.buffer).setUint16(8, text.length, true);
  assert.throws(() => parseNpy(bytes, 'z.npy'), { message: /^z\.npy: 2 unexpected bytes after the \.npy data/ });
});

test('messages stay short: a rank-255 IDX header over image bytes, a binary zip entry name', () => {
  const b = new Uint8Array(2000).map((_, i) => (i * 37) & 0xff);
  b.set([0, 0, 8, 255]);
  assert.throws(
    () => parseIdx(b, 'images'),
    (e: Error) => e.name === 'DataFormatError' && e.message.length < 200 && /^images: truncated IDX data: shape \[\d+, \d+, \d+, \d+, \d+, \d+, … \(255 dims\)\] of uint8/.test(e.message),
  );
  const zip = encodeZip([{ name: 'x'.repeat(5000), data: new Uint8Array(3), deflate: false }]);
  zip[31] ^= 0xff; // the local header's copy of the name differs
  assert.throws(() => parseNpz(zip, 'n.npz', inflateRaw), (e: Error) => e.message.length < 300 && /the local header names the entry/.test(e.message));
});

test('npy headers are parsed as whole Python dicts: junk, unknown and repeated keys are refused', () => {
  const withHeader = (h: string) => {
    const good = encodeNpy('<f4', [2], [1, 2]);
    const text = new TextEncoder().encode(h.padEnd(good[8]! - 1, ' ') + '\n');
    const out = good.slice();
    out.set(text, 10);
    return out;
  };
  assert.deepEqual(Array.from(parseNpy(withHeader("{'shape': (2L,), 'fortran_order': False, \"descr\": '<f4'}"), 'a.npy').data), [1, 2]);
  for (const [h, why] of [
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", /unexpected text after the dict/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", /unexpected key 'x'/],
    ["{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", /key 'descr' appears twice/],
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (0x2,)}", /malformed \.npy shape/],
  ] as const) {
    assert.throws(() => parseNpy(withHeader(h), 'a.npy'), { name: 'DataFormatError', message: why });
  }
});

test('safetensors: malformed headers are errors naming the file, not TypeErrors; tensors must tile the data', () => {
  const make = (header: unknown, data: number) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + data);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  const cases: [unknown, number, RegExp][] = [
    [{ w: null }, 0, /tensor 'w': expected \{dtype, shape, data_offsets\}/],
    [[], 0, /header is not a JSON object/],
    [{ w: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, 4, /tensor 'w' has unsupported dtype "toString"/],
    [{ w: { dtype: 'F32', shape: 'ab', data_offsets: [0, 4] } }, 4, /tensor 'w': shape must be a list of non-negative integers, got "ab"/],
    [{ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4, /tensor 'w': data_offsets must be \[begin, end\] with 0 <= begin <= end, got \[0\]/],
    [{ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [1, 3] } }, 3, /tensor 'b' starts at byte 1 of the data, expected 2/],
    [{ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, 5, /the header describes 2 bytes of tensor data, the file holds 5/],
    [{ __metadata__: { epoch: 3 } }, 0, /__metadata__ must map names to strings/],
  ];
  for (const [header, data, why] of cases) assert.throws(() => decodeSafetensors(make(header, data), 'm.safetensors'), { message: new RegExp(`^m\\.safetensors: not a valid safetensors file: ${why.source}`) });
});

test('CSV bytes: invalid UTF-8 and sizes over maxBytes are DataFormatErrors naming the file; its own errors too', () => {
  const text = 'a,y\n1,no\n2,yes\n3,no\n';
  const ds = parseTabularFile(new TextEncoder().encode(text), 't.csv', { label: 'y', testFraction: 0.5 });
  assert.equal(ds.train.rows + ds.test.rows, 3);
  const bad = new TextEncoder().encode(text);
  bad[5] = 0xc3;
  assert.throws(() => parseTabularFile(bad, 't.csv', { label: 'y' }), { name: 'DataFormatError', message: /^t\.csv: not UTF-8 text/ });
  assert.throws(() => parseTabularFile(new TextEncoder().encode(text), 't.csv', { label: 'y', maxBytes: 10 }), { message: /^t\.csv: 20 bytes of CSV, over the limit of 10 bytes/ });
  assert.throws(() => parseTabularFile(new TextEncoder().encode('a,y\n1,no\n"2,yes\n'), 't.csv', { label: 'y' }), { name: 'DataFormatError', message: /^t\.csv: parseCsv: unterminated quoted field/ });
  // A quote inside an unquoted cell is kept as text (tracked without re-trimming the cell).
  assert.deepEqual(parseTabularFile(new TextEncoder().encode('a,b,y\nx"x"x,1,no\nq,2,yes\nq,3,no\n'), 't.csv', { label: 'y' }).groups[0]!.levels, ['q', 'x"x"x']);
});
