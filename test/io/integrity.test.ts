// Deployed models (.sgq) and checkpoints (.safetensors): any byte source decodes alike, every
// field is validated, and a flipped or truncated file either fails with an error naming the file
// and the field, or loads to bit-identical arrays (property test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeDeployed, encodeDeployed } from '../../src/io/deployed-format.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { binaryNetMlp, convert, type DeployedModel } from '../../src/quant/index.js';
import { mlp } from '../../src/nn/models.js';
import { crc32 as crc } from '../../src/util/crc32.js';
import { inflateRawSync } from 'node:zlib';
import { parseCifarBatch, parseIdx, parseNpy, parseNpz } from '../../src/data/index.js';
import { encodeCifarBatch, encodeIdx, encodeNpy, encodeZip } from '../data/fixtures.js';

const model = binaryNetMlp([12, 8, 8, 3], 4);
const deployed = convert(model, [12]);
const sgq = encodeDeployed(deployed);
const net = mlp([5, 4, 3], 2);
const st = encodeSafetensors(net.stateDict(), { model: 'mlp' });

/** The three byte sources a caller may hand a loader: a Node Buffer, a view at a non-zero offset, an ArrayBuffer. */
function sources(bytes: Uint8Array): [string, Uint8Array | ArrayBuffer][] {
  const padded = new Uint8Array(bytes.length + 13);
  padded.set(bytes, 7);
  const pooled = Buffer.concat([Buffer.from('junk-before'), Buffer.from(bytes)]).subarray(11);
  return [
    ['Buffer', pooled],
    ['Uint8Array at offset 7', padded.subarray(7, 7 + bytes.length)],
    ['ArrayBuffer', bytes.slice().buffer],
  ];
}

function arraysOf(m: DeployedModel): [string, ArrayBufferView][] {
  return m.stages.flatMap((s, i) => Object.entries(s).filter(([, v]) => ArrayBuffer.isView(v)).map(([k, v]) => [`${i}.${k}`, v as ArrayBufferView] as [string, ArrayBufferView]));
}

const bitsOf = (v: ArrayBufferView): number[] => Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));

test('decodeDeployed gives the same arrays from a Buffer, an offset view and an ArrayBuffer', () => {
  const want = arraysOf(deployed);
  assert.ok(want.length >= 3);
  for (const [what, src] of sources(sgq)) {
    const got = arraysOf(decodeDeployed(src, what));
    assert.deepEqual(got.map(([k]) => k), want.map(([k]) => k), what);
    got.forEach(([k, v], i) => assert.deepEqual(bitsOf(v), bitsOf(want[i]![1]), `${what}: ${k}`));
  }
});

test('decodeSafetensors gives the same tensors from a Buffer, an offset view and an ArrayBuffer', () => {
  const want = net.stateDict();
  for (const [what, src] of sources(st)) {
    const { tensors, metadata } = decodeSafetensors(src, what, { requireChecksum: true });
    assert.deepEqual(metadata, { model: 'mlp' });
    for (const [k, t] of want) assert.deepEqual(bitsOf(tensors.get(k)!.values), bitsOf(t.values()), `${what}: ${k}`);
  }
});

test('edited header fields are named in the error', () => {
  const json = (bytes: Uint8Array): { text: string; at: number; len: number } => {
    const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
    return { text: new TextDecoder().decode(bytes.subarray(12, 12 + len)), at: 12, len };
  };
  // Edit an array length in the header (same number of characters), then fix up the checksum as a
  // careful attacker would: the field check still catches it.
  const { text } = json(sgq);
  const edited = text.replace(/"length":(\d)/, (_, d) => `"length":${(Number(d) + 1) % 10}`);
  assert.notEqual(edited, text);
  const bytes = sgq.slice();
  bytes.set(new TextEncoder().encode(edited), 12);
  assert.throws(() => decodeDeployed(bytes, 'edited.sgq'), /edited\.sgq: checksum: stored CRC-32 [0-9a-f]{8} but the contents give/);
  const end = bytes.length - 4;
  new DataView(bytes.buffer).setUint32(end, crc(bytes.subarray(0, end)), true);
  assert.throws(() => decodeDeployed(bytes, 'edited.sgq'), /edited\.sgq: stages\[\d+\]\.\w+\.(offset|length)|edited\.sgq: payload: the header describes/);
  assert.throws(() => decodeDeployed(sgq.subarray(0, 20), 'cut.sgq'), /cut\.sgq: header length: .*truncated/);
});

/** Either an error naming `file` and a field, or arrays bit-identical to `want`. */
function flipsOrTruncations(bytes: Uint8Array, file: string, load: (b: Uint8Array) => [string, ArrayBufferView][], want: [string, ArrayBufferView][]): void {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), flips: fc.array(fc.record({ at: fc.nat({ max: bytes.length - 1 }), mask: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }) }),
        fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat({ max: bytes.length - 1 }) }),
      ),
      (c) => {
        let b: Uint8Array;
        if (c.kind === 'flip') {
          b = bytes.slice();
          for (const f of c.flips) b[f.at]! ^= f.mask;
        } else b = bytes.slice(0, c.keep);
        let got: [string, ArrayBufferView][];
        try {
          got = load(b);
        } catch (e) {
          const msg = (e as Error).message;
          assert.ok(msg.startsWith(`${file}: `), msg);
          assert.ok(/checksum|header|field|tensor|not a|magic|version|payload|stages|inputShape|metadata|bytes/.test(msg), msg);
          return;
        }
        assert.deepEqual(got.map(([k]) => k), want.map(([k]) => k));
        got.forEach(([k, v], i) => assert.deepEqual(bitsOf(v), bitsOf(want[i]![1]), k));
      },
    ),
    { numRuns: 300, seed: 10 },
  );
}

test('property: a flipped or truncated .sgq file fails naming the file, or loads bit-identical arrays', () => {
  flipsOrTruncations(sgq, 'model.sgq', (b) => arraysOf(decodeDeployed(b, 'model.sgq')), arraysOf(deployed));
});

test('property: a flipped or truncated checkpoint fails naming the file, or loads bit-identical tensors', () => {
  const want = [...net.stateDict()].map(([k, t]) => [k, t.values()] as [string, ArrayBufferView]);
  flipsOrTruncations(st, 'model.safetensors', (b) => [...decodeSafetensors(b, 'model.safetensors', { requireChecksum: true }).tensors].map(([k, t]) => [k, t.values] as [string, ArrayBufferView]), want);
});

test('data parsers (IDX, .npy, .npz, CIFAR-10) read a Buffer, an offset view and an ArrayBuffer alike', () => {
  const inflate = (b: Uint8Array) => new Uint8Array(inflateRawSync(b));
  const npy = encodeNpy('<f4', [2, 3], [1.5, -2, 3, 4, 5.25, -6]);
  const cases: [string, Uint8Array, (b: Uint8Array | ArrayBuffer, name: string) => ArrayBufferView[]][] = [
    ['idx', encodeIdx('int32', [2, 3], [1, -2, 3, 400000, 5, 6]), (b, n) => [parseIdx(b, n).data]],
    ['npy', npy, (b, n) => [parseNpy(b, n).data]],
    ['npz', encodeZip([{ name: 'x.npy', data: npy, deflate: true }, { name: 'y.npy', data: encodeNpy('|u1', [3], [7, 8, 9]), deflate: false }]), (b, n) => [...parseNpz(b, n, inflate).values()].map((a) => a.data)],
    ['cifar', encodeCifarBatch([3, 9], (r, k) => (r * 31 + k) & 255), (b, n) => [parseCifarBatch(b, n).x, parseCifarBatch(b, n).y]],
  ];
  for (const [what, bytes, parse] of cases) {
    const want = parse(bytes, what).map(bitsOf);
    assert.ok(want.every((w) => w.length > 0), what);
    for (const [source, src] of sources(bytes)) assert.deepEqual(parse(src, what).map(bitsOf), want, `${what} from ${source}`);
  }
});
