/**
 * `bench act` with comet among the modes and resnet20 among the models: the COMET codec on real
 * activations, every float32 value one ResNet-20 forward (batch 128, the memory table's batch)
 * saves for backward (each storage view once, parameters left out), each encoded at 0.05 x its
 * value range as the comet mode does (`packTensor`, the range pass included) and decoded
 * (`unpackTensor`): values, stream bytes, ratio, and per thread count the best of `repeats`
 * passes over all of them, CPU time of all threads per value (ns) and wall GB/s of float32.
 */
import { getThreads, setThreads } from '../src/backends/index.js';
import { withSavedTensorHooks, type SavedTensorHooks } from '../src/autograd/saved.js';
import { packTensor, releasePacked, unpackTensor } from '../src/compress/codecs.js';
import { releaseGraph } from '../src/compress/planner.js';
import { keep, scope } from '../src/core/scope.js';
import { fromValues, type Tensor } from '../src/core/tensor.js';

export interface CometCodecRow {
  threads: number;
  tensors: number;
  values: number;
  bytes: number;
  ratio: number;
  encodeCpuNs: number;
  decodeCpuNs: number;
  encodeGBps: number;
  decodeGBps: number;
}

/** The float32 saves of one `forward(batch)`, as contiguous copies (the caller disposes them). */
function floatSaves(forward: (batch: number) => Tensor, batch: number): Tensor[] {
  const seen = new Set<string>();
  const saves: Tensor[] = [];
  const hooks: SavedTensorHooks<null> = {
    pack(t, info) {
      const key = `${info.storageId}:${info.version}:${t.offset}:${t.shape.join('x')}:${t.strides.join(',')}`;
      if (t.dtype === 'float32' && !info.isParameter && !seen.has(key)) {
        seen.add(key);
        saves.push(keep(fromValues(t.values() as Float32Array, t.shape)));
      }
      return null;
    },
    unpack(_p, info) {
      throw new Error(`bench act: '${info.op}' read a saved value in the comet codec pass`);
    },
  };
  scope(() => releaseGraph(withSavedTensorHooks(hooks, () => forward(batch))));
  return saves;
}

export function cometCodecRows(forward: (batch: number) => Tensor, batch: number, threadCounts: number[], repeats = 3): CometCodecRow[] {
  const saves = floatSaves(forward, batch);
  const values = saves.reduce((s, t) => s + t.size, 0);
  const before = getThreads();
  const rows: CometCodecRow[] = [];
  try {
    for (const threads of threadCounts) {
      setThreads(threads);
      let best = { enc: Infinity, dec: Infinity, encWall: Infinity, decWall: Infinity }, bytes = 0;
      for (let rep = 0; rep < repeats; rep++) {
        let enc = 0, dec = 0, encWall = 0, decWall = 0;
        bytes = 0;
        for (const x of saves) {
          let c0 = process.cpuUsage(), t0 = performance.now();
          const p = packTensor(x, { kind: 'comet', bound: 0.05 }, null);
          encWall += performance.now() - t0;
          let c = process.cpuUsage(c0);
          enc += (c.user + c.system) / 1000;
          bytes += p.bytes;
          c0 = process.cpuUsage();
          t0 = performance.now();
          const y = unpackTensor(p);
          decWall += performance.now() - t0;
          c = process.cpuUsage(c0);
          dec += (c.user + c.system) / 1000;
          y.dispose();
          releasePacked(p);
        }
        best = { enc: Math.min(best.enc, enc), dec: Math.min(best.dec, dec), encWall: Math.min(best.encWall, encWall), decWall: Math.min(best.decWall, decWall) };
      }
      rows.push({
        threads, tensors: saves.length, values, bytes, ratio: (4 * values) / bytes,
        encodeCpuNs: (1e6 * best.enc) / values, decodeCpuNs: (1e6 * best.dec) / values,
        encodeGBps: (4 * values) / best.encWall / 1e6, decodeGBps: (4 * values) / best.decWall / 1e6,
      });
    }
  } finally {
    setThreads(before);
    saves.forEach((t) => t.dispose());
  }
  return rows;
}
