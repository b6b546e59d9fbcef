// The browser loaders (bytes, Blob, Response, URL) against the Node file loaders on the same data,
// run in Node (which has Blob, Response and DecompressionStream, as browsers do).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, gzipSync } from 'node:zlib';
import '../../src/index.js';
import {
  createModel, DataFormatError, loadTabular, loadIdx, loadMnist, loadNpz, loadModule, saveModule, quant, saveDeployed, syntheticShapes,
} from '../../src/index.js';
import {
  loadCsvFrom, loadDeployedFrom, loadIdxFrom, loadMnistFrom, loadModuleFrom, loadNpzDatasetFrom, loadNpzFrom, moduleBlob, deployedBlob, readSource,
} from '../../src/browser.js';
import { deflatedZipDeclaring, encodeIdx, encodeNpy, encodeZip, tempDir, writeFile } from '../data/fixtures.js';

const mnistDir = join('..', 'shared', 'data', 'mnist-t10k');
const images = join(mnistDir, 't10k-images-idx3-ubyte.gz');
const labels = join(mnistDir, 't10k-labels-idx1-ubyte.gz');

test('MNIST from gzipped Blobs equals loadMnist from the files', async () => {
  const fromFiles = await loadMnist(mnistDir, { split: 'all' });
  const fromBlobs = await loadMnistFrom(new Blob([readFileSync(images)]), new Blob([readFileSync(labels)]));
  assert.equal(fromBlobs.length, 10000);
  assert.deepEqual(fromBlobs.itemShape, fromFiles.itemShape);
  assert.ok(Buffer.from(fromBlobs.x).equals(Buffer.from(fromFiles.x)), 'pixels differ');
  assert.deepEqual(fromBlobs.y, fromFiles.y);
});

test('IDX from a Response and from raw bytes equals loadIdx', async () => {
  const raw = encodeIdx('int16', [3, 2], [1, -2, 300, -400, 5, 6]);
  const { dir, cleanup } = tempDir();
  try {
    const expected = await loadIdx(writeFile(dir, 'a.idx', raw, true));
    assert.deepEqual(await loadIdxFrom(new Response(gzipSync(raw))), expected);
    assert.deepEqual(await loadIdxFrom(raw), expected);
  } finally {
    cleanup();
  }
});

test('a gzipped IDX inflating past its header is refused, as in Node', async () => {
  // Header declares [4] uint8 (4 bytes); the stream holds 1 MiB.
  const lying = new Uint8Array(8 + 2 ** 20);
  lying.set(encodeIdx('uint8', [4], [1, 2, 3, 4]).subarray(0, 8));
  const { dir, cleanup } = tempDir();
  try {
    const nodeError = await loadIdx(writeFile(dir, 'bomb.idx', lying, true)).then(() => null, (e: Error) => e);
    const browserError = await loadIdxFrom(gzipSync(lying), { name: nodeError ? undefined : 'x' }).then(() => null, (e: Error) => e);
    assert.ok(nodeError instanceof DataFormatError && browserError instanceof DataFormatError, `${nodeError} / ${browserError}`);
    assert.match(browserError.message, /inflates past .* although the IDX header/);
  } finally {
    cleanup();
  }
});

test('npz (stored and deflated entries) from bytes equals loadNpz; a lying entry is refused', async () => {
  const x = encodeNpy('<f4', [2, 3], [1, 2, 3, 4, 5, 6]);
  const y = encodeNpy('|u1', [2], [0, 1]);
  const zip = encodeZip([{ name: 'x.npy', data: x, deflate: true }, { name: 'y.npy', data: y, deflate: false }]);
  const { dir, cleanup } = tempDir();
  try {
    const expected = await loadNpz(writeFile(dir, 'd.npz', zip));
    assert.deepEqual(await loadNpzFrom(new Blob([zip as Uint8Array<ArrayBuffer>])), expected);
    const ds = await loadNpzDatasetFrom(zip, { name: 'd' });
    assert.equal(ds.length, 2);
    const bomb = deflatedZipDeclaring('x.npy', new Uint8Array(deflateRawSync(new Uint8Array(2 ** 20))), 100);
    await assert.rejects(loadNpzFrom(bomb, { name: 'bomb.npz' }), (e: Error) => e instanceof DataFormatError && /bomb\.npz.*inflates past/s.test(e.message));
  } finally {
    cleanup();
  }
});

test('sources over maxBytes are refused before reading, naming the source', async () => {
  await assert.rejects(readSource(new Blob([new Uint8Array(100)]), { maxBytes: 10, name: 'big.bin' }), /big\.bin: 100 bytes is over the limit of 10 bytes/);
  const response = new Response(new Uint8Array(100), { headers: { 'content-length': '100' } });
  await assert.rejects(readSource(response, { maxBytes: 10, name: 'r' }), /r: 100 bytes is over the limit/);
  const streamed = new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(8)); c.enqueue(new Uint8Array(8)); c.close(); } }));
  await assert.rejects(readSource(streamed, { maxBytes: 10, name: 's' }), /s: the response is over the limit of 10 bytes/);
  await assert.rejects(readSource(new Response('nope', { status: 404, statusText: 'Not Found' }), { name: 'm.sgq' }), /m\.sgq: fetch failed: HTTP 404/);
});

test('CSV from a Blob encodes as loadTabular; non-UTF-8 bytes are refused', async () => {
  const csv = 'a,b,class\n1,x,yes\n2,y,no\n3,x,yes\n';
  const data = await loadCsvFrom(new Blob([csv]), { label: 'class' });
  assert.deepEqual(data, loadTabular(csv, { label: 'class' }));
  await assert.rejects(loadCsvFrom(new Uint8Array([0xff, 0xfe, 0x00]), { label: 'class', name: 'bad.csv' }), /bad\.csv: not UTF-8 text/);
});

test('moduleBlob / deployedBlob hold the bytes saveModule / saveDeployed write, and load back', async () => {
  const model = createModel('lenet', [1, 28, 28], 10, 3);
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'm.safetensors');
    saveModule(model, file, { model: 'lenet' });
    const blob = moduleBlob(model, { model: 'lenet' });
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(readFileSync(file)));
    const other = createModel('lenet', [1, 28, 28], 10, 4);
    assert.deepEqual(await loadModuleFrom(other, blob), { model: 'lenet' });
    const again = createModel('lenet', [1, 28, 28], 10, 5);
    loadModule(again, file);
    const mine = again.stateDict();
    for (const [name, t] of other.stateDict()) assert.deepEqual(t.values(), mine.get(name)!.values(), name);
    const deployed = quant.convert(model, [1, 28, 28]);
    const sgq = join(dir, 'm.sgq');
    saveDeployed(deployed, sgq);
    const dBlob = deployedBlob(deployed);
    assert.ok(Buffer.from(await dBlob.arrayBuffer()).equals(readFileSync(sgq)));
    const loaded = await loadDeployedFrom(dBlob);
    const x = syntheticShapes({ n: 4, seed: 2 }).values();
    assert.deepEqual(quant.runDeployed(loaded, x, [4, 1, 28, 28]).data, quant.runDeployed(deployed, x, [4, 1, 28, 28]).data);
  } finally {
    cleanup();
  }
});

test('initBrowser refuses kernel bytes built for the other memory kind, naming the build to pass', async () => {
  const { initBrowser } = await import('../../src/browser.js');
  const unshared = new Uint8Array(readFileSync(join('build', 'kernels-unshared.wasm')));
  // Node's arena is shared (as in a cross-origin-isolated page).
  await assert.rejects(initBrowser({ kernels: unshared, quantKernels: new Uint8Array(readFileSync(join('build', 'quant.wasm'))) }), /initBrowser: the kernels given do not run on this page's shared memory \(pass kernels\.wasm\)/);
});
