/**
 * `slimgrad bench hostile [--json] [--baseline]`: decompression bombs against the loaders. Each
 * bomb is a ~1 MiB file that would inflate past 1 GiB; each case runs in a fresh Node process that
 * loads it and reports whether it was refused, how long that took and how much memory it added
 * (peak RSS minus the RSS just before loading). `--baseline` adds the unbounded
 * `zlib.gunzipSync` the loaders used before (needs ~2 GiB of memory).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { printJson, printTable } from '../src/cli/command.js';
// The test writers of the formats (independent of the readers) build the bombs.
import { deflatedZipDeclaring } from '../test/data/fixtures.js';
import { loadCifar10, loadIdx, loadNpz, parseIdx } from '../src/data/index.js';

const GIB = 2 ** 30;
const IMAGES = [10000, 28, 28];

/** `zeros` bytes after `head`, compressed by a zlib stream (`gzip` or raw deflate) at level 9, 1 MiB at a time. */
async function compressZeros(head: Uint8Array, zeros: number, gzip: boolean): Promise<Uint8Array> {
  const stream = gzip ? zlib.createGzip({ level: 9 }) : zlib.createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => stream.on('end', resolve));
  const block = new Uint8Array(2 ** 20);
  stream.write(head);
  for (let left = zeros; left > 0; left -= block.length) {
    if (!stream.write(left >= block.length ? block : block.subarray(0, left))) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await done;
  return Buffer.concat(chunks);
}

function idxHeader(shape: number[]): Uint8Array {
  const h = new Uint8Array(4 + 4 * shape.length);
  h[2] = 0x08;
  h[3] = shape.length;
  shape.forEach((d, i) => new DataView(h.buffer).setUint32(4 + 4 * i, d, false));
  return h;
}

function npyHeader(shape: number[]): Uint8Array {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 11, ' ') + '\n';
  const out = new Uint8Array(10 + header.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}

interface Case {
  name: string;
  file: string;
  load: string;
}

/** Writes the bomb files (cached in the temp directory: compressing 1 GiB takes seconds). */
async function makeBombs(dir: string): Promise<Case[]> {
  mkdirSync(dir, { recursive: true });
  const declared = IMAGES.reduce((a, b) => a * b, 1);
  const zeros = GIB + 2 ** 20; // "past 1 GiB"
  const cases: Case[] = [];
  const put = async (name: string, file: string, load: string, make: () => Promise<Uint8Array>) => {
    const path = join(dir, file);
    if (!existsSync(path)) writeFileSync(path, await make());
    cases.push({ name, file: path, load });
  };
  // IDX header declaring 10,000 x 28 x 28 bytes, followed by 1 GiB of zeros (the case).
  await put('idx.gz: header 7.8 MB, stream 1 GiB', 'bomb-images-idx3-ubyte.gz', 'idx', async () => compressZeros(idxHeader(IMAGES), zeros, true));
  // The same stream under a CIFAR-10 name: no header declares a size, the gzip trailer does (honestly).
  await put('cifar .bin.gz: trailer 1 GiB', join('cifar', 'test_batch.bin'), 'cifar', async () => {
    mkdirSync(join(dir, 'cifar'), { recursive: true });
    return compressZeros(new Uint8Array(0), zeros, true);
  });
  // ... and with a forged trailer claiming 10,000 records.
  await put('cifar .bin.gz: trailer forged to 30 MB', join('cifar-forged', 'test_batch.bin'), 'cifar', async () => {
    mkdirSync(join(dir, 'cifar-forged'), { recursive: true });
    const gz = await compressZeros(new Uint8Array(0), zeros, true);
    new DataView(gz.buffer, gz.byteOffset).setUint32(gz.length - 4, 3073 * 10000, true);
    return gz;
  });
  // ... and forged to just under all of CIFAR-10 (the worst case for a format without a header).
  await put('cifar .bin.gz: trailer forged to 184 MB', join('cifar-forged-max', 'test_batch.bin'), 'cifar', async () => {
    mkdirSync(join(dir, 'cifar-forged-max'), { recursive: true });
    const gz = await compressZeros(new Uint8Array(0), zeros, true);
    new DataView(gz.buffer, gz.byteOffset).setUint32(gz.length - 4, 3073 * 60000, true);
    return gz;
  });
  const npy = npyHeader(IMAGES);
  const body = () => compressZeros(npy, zeros, false);
  // npz whose directory declares the npy's true size, holding 1 GiB (the CRC is never reached).
  await put('npz: directory 7.8 MB, stream 1 GiB', 'bomb-lying.npz', 'npz', async () => deflatedZipDeclaring('x.npy', await body(), npy.length + declared));
  // npz whose directory honestly declares the 1 GiB.
  await put('npz: directory 1 GiB, stream 1 GiB', 'bomb-honest.npz', 'npz', async () => deflatedZipDeclaring('x.npy', await body(), npy.length + zeros));
  return cases;
}

/** In the child: loads `file` and prints {refused, message, ms, extraMiB}. */
async function child(load: string, file: string): Promise<void> {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let refused = false;
  let message = '';
  try {
    if (load === 'idx') await loadIdx(file);
    else if (load === 'npz') await loadNpz(file);
    else if (load === 'cifar') await loadCifar10(join(file, '..'), { split: 'test' });
    else if (load === 'unbounded') parseIdx(zlib.gunzipSync(readFileSync(file)), file);
  } catch (e) {
    refused = true;
    message = (e as Error).message;
  }
  const ms = performance.now() - t0;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ refused, message, ms, extraMiB: (peak - rss0) / 2 ** 20 }));
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false }, baseline: { type: 'boolean', default: false } } });
  const cases = await makeBombs(join(tmpdir(), 'slimgrad-bombs-v1'));
  if (values.baseline) cases.push({ name: 'idx.gz via unbounded gunzipSync (before)', file: cases[0]!.file, load: 'unbounded' });
  const self = fileURLToPath(import.meta.url);
  const loader = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const rows = cases.map((c) => {
    const r = spawnSync(process.execPath, [...loader, self, '--child', c.load, c.file], { encoding: 'utf8' });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) throw new Error(`bench hostile: the child for '${c.name}' failed (status ${r.status}): ${r.stderr.slice(-2000)}`);
    const res = JSON.parse(line) as { refused: boolean; message: string; ms: number; extraMiB: number };
    return { case: c.name, fileMiB: statSync(c.file).size / 2 ** 20, refused: res.refused, ms: res.ms, extraMiB: res.extraMiB, message: res.message.replace(/^.*\//, '') };
  });
  printTable(rows.map((r) => ({ ...r, fileMiB: r.fileMiB.toFixed(2), ms: r.ms.toFixed(0), extraMiB: r.extraMiB.toFixed(1), message: r.message.slice(0, 110) })));
  if (values.json) printJson({ suite: 'hostile', rows });
  return rows.every((r) => r.refused) ? 0 : 1;
}

if (process.argv[2] === '--child' && fileURLToPath(import.meta.url) === process.argv[1]) await child(process.argv[3]!, process.argv[4]!);
