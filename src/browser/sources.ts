/**
 * Loaders that take bytes, a `Blob`/`File` (a file the user picked or dropped), a fetch `Response`
 * or a URL instead of a path, and hand the bytes to the same decoders the Node loaders use (IDX,
 * npz, CSV, safetensors, SGQM). Nothing here needs a file system: decompression runs on the
 * engine's `DecompressionStream`, bounded like Node's (see `withStreamDecompressors`).
 *
 * @example
 * ```ts
 * import { loadMnistFrom, moduleBlob } from 'slimgrad/browser';
 * const train = await loadMnistFrom(imagesFile, labelsFile);   // Files from <input type=file>
 * const url = URL.createObjectURL(moduleBlob(model, { model: 'lenet' }));
 * ```
 */
import type { Dataset } from '../data/dataset.js';
import { DataFormatError, formatBytes } from '../data/errors.js';
import { datasetFromIdx, decodeIdx, type IdxArray } from '../data/idx.js';
import { maxBytesOf, type DataLimits, type Decompress, type Decompressors } from '../data/inflate.js';
import type { NpyArray } from '../data/npy.js';
import { datasetFromNpz, parseNpz, type ArrayDatasetOptions } from '../data/npz.js';
import { parseTabularFile, type TabularDataset, type TabularOptions } from '../data/tabular.js';
import type { Module } from '../nn/module.js';
import { decodeModuleInto, encodeModule } from '../io/state.js';
import { decodeDeployed, encodeDeployed } from '../io/deployed-format.js';
import type { DeployedModel } from '../quant/runtime.js';

/** Where bytes come from in a page: bytes, a Blob or File, a fetch Response, or a URL to fetch. */
export type ByteSource = Uint8Array | ArrayBuffer | Blob | Response | string | URL;

/** Options of every loader here: the size cap (`maxBytes`, default 1 GiB) and a name for messages. */
export interface SourceOptions extends DataLimits {
  /** Names the data in error messages (default: the File's name, the URL, or 'bytes'). */
  name?: string;
}

/**
 * The bytes of `source` and a name for them; a source over `maxBytes` is refused before it is
 * read (Blob size, Content-Length) or as soon as the stream passes the cap.
 */
export async function readSource(source: ByteSource, options: SourceOptions = {}): Promise<{ bytes: Uint8Array; name: string }> {
  const cap = maxBytesOf(options);
  if (source instanceof Uint8Array) return { bytes: source, name: options.name ?? 'bytes' };
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source), name: options.name ?? 'bytes' };
  if (typeof source === 'string' || source instanceof URL) {
    let response: Response;
    try {
      response = await fetch(source);
    } catch (e) {
      throw new DataFormatError(String(source), `cannot fetch: ${(e as Error).message}`);
    }
    return readSource(response, { ...options, name: options.name ?? String(source) });
  }
  const name = options.name ?? ((source as { name?: string }).name || (source as { url?: string }).url || 'data');
  const tooBig = (size: string) => new DataFormatError(name, `${size} is over the limit of ${formatBytes(cap)} (raise it with the maxBytes option if the data is trusted)`);
  if (source instanceof Blob) {
    if (source.size > cap) throw tooBig(formatBytes(source.size));
    return { bytes: new Uint8Array(await source.arrayBuffer()), name };
  }
  if (!source.ok) throw new DataFormatError(name, `fetch failed: HTTP ${source.status} ${source.statusText}`);
  const declared = Number(source.headers.get('content-length') ?? NaN);
  if (declared > cap) throw tooBig(formatBytes(declared));
  if (!source.body) return { bytes: new Uint8Array(await source.arrayBuffer()), name };
  const chunks = await readBounded(source.body, cap);
  if (!chunks) throw tooBig('the response');
  return { bytes: chunks, name };
}

/** Reads a byte stream to its end; null (stream cancelled) once it passes `max` bytes. */
async function readBounded(stream: ReadableStream<Uint8Array>, max: number, partial = false): Promise<Uint8Array | null> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) {
        void reader.cancel().catch(() => {});
        return null;
      }
      chunks.push(value);
    }
  } catch (e) {
    if (!partial) throw e;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Decompresses with a DecompressionStream, stopping past `max` output bytes (null). */
async function inflateStream(format: 'gzip' | 'deflate-raw', compressed: Uint8Array, max: number, partial: boolean): Promise<Uint8Array | null> {
  const stream = new DecompressionStream(format);
  const writer = stream.writable.getWriter();
  // Errors surface on the readable side; a cancelled read leaves these pending, which is fine.
  writer.write(compressed as Uint8Array<ArrayBuffer>).catch(() => {});
  writer.close().catch(() => {});
  return readBounded(stream.readable, max, partial);
}

/** A decompression the synchronous decoders asked for and its outcome. */
type Outcome = { ok: Uint8Array | null } | { error: Error };

/**
 * Runs `parse` (a synchronous decoder taking `Decompressors`, e.g. `decodeIdx`, `parseNpz`) with
 * decompressors backed by the engine's asynchronous `DecompressionStream`: each pass records the
 * decompressions the decoder asks for, runs them (each bounded by the output size the decoder
 * allows, so a bomb stops at that size), and runs the decoder again until it has every result.
 * The decoder's own bounds, checks and messages apply unchanged.
 */
export async function withStreamDecompressors<T>(parse: (d: Decompressors) => T): Promise<T> {
  const done = new Map<string, Outcome>();
  for (;;) {
    const wanted = new Map<string, () => Promise<Uint8Array | null>>();
    const using = (format: 'gzip' | 'deflate-raw'): Decompress => (compressed, max, partial = false) => {
      const key = `${format} ${compressed.byteOffset} ${compressed.byteLength} ${max} ${partial}`;
      const outcome = done.get(key);
      if (outcome) {
        if ('error' in outcome) throw outcome.error;
        return outcome.ok;
      }
      wanted.set(key, () => inflateStream(format, compressed, max, partial));
      throw new Error('pending decompression');
    };
    try {
      return parse({ gunzip: using('gzip'), inflateRaw: using('deflate-raw') });
    } catch (e) {
      if (wanted.size === 0) throw e;
    }
    for (const [key, run] of wanted) {
      try {
        done.set(key, { ok: await run() });
      } catch (e) {
        done.set(key, { error: e as Error });
      }
    }
  }
}

/**
 * An IDX array (raw or gzipped, inflated no further than its header declares).
 *
 * @example
 * const labels = await loadIdxFrom(await fetch('t10k-labels-idx1-ubyte.gz'));
 */
export async function loadIdxFrom(source: ByteSource, options: SourceOptions = {}): Promise<IdxArray> {
  const { bytes, name } = await readSource(source, options);
  return withStreamDecompressors(({ gunzip }) => decodeIdx(bytes, name, gunzip, options));
}

/**
 * An MNIST-style dataset from an IDX image file and an IDX label file (raw or gzipped); items
 * [1, H, W] in [0, 1], as `loadMnist` gives in Node.
 *
 * @example
 * const test = await loadMnistFrom(imagesFile, labelsFile, { name: 'mnist' });
 */
export async function loadMnistFrom(images: ByteSource, labels: ByteSource, options: SourceOptions = {}): Promise<Dataset> {
  const limits = { maxBytes: options.maxBytes };
  const [x, y] = await Promise.all([readSource(images, limits), readSource(labels, limits)]);
  const [xa, ya] = await Promise.all([loadIdxFrom(x.bytes, { ...limits, name: x.name }), loadIdxFrom(y.bytes, { ...limits, name: y.name })]);
  return datasetFromIdx(xa, ya, { images: x.name, labels: y.name, dataset: options.name ?? 'mnist' });
}

/**
 * The arrays of a NumPy .npz archive (stored or deflated entries).
 *
 * @example
 * const arrays = await loadNpzFrom(droppedFile);
 */
export async function loadNpzFrom(source: ByteSource, options: SourceOptions = {}): Promise<Map<string, NpyArray>> {
  const { bytes, name } = await readSource(source, options);
  return withStreamDecompressors(({ inflateRaw }) => parseNpz(bytes, name, inflateRaw, options));
}

/**
 * A dataset of two arrays of a .npz archive (options.x / options.y, default 'x' and 'y').
 *
 * @example
 * const train = await loadNpzDatasetFrom('mnist.npz', { x: 'x_train', y: 'y_train' });
 */
export async function loadNpzDatasetFrom(source: ByteSource, options: SourceOptions & { x?: string; y?: string } & Partial<ArrayDatasetOptions> = {}): Promise<Dataset> {
  const { bytes, name } = await readSource(source, options);
  return datasetFromNpz(await loadNpzFrom(bytes, { ...options, name }), name, options);
}

/**
 * A tabular CSV dataset (UTF-8 text), encoded as `readTabularFile` does in Node.
 *
 * @example
 * const data = await loadCsvFrom(csvFile, { label: 'class' });
 */
export async function loadCsvFrom(source: ByteSource, options: SourceOptions & TabularOptions): Promise<TabularDataset> {
  const { bytes, name } = await readSource(source, options);
  return parseTabularFile(bytes, name, options);
}

/**
 * Loads safetensors written by slimgrad (`saveModule`, `moduleBlob`) into `m`; returns the metadata.
 *
 * @example
 * await loadModuleFrom(createModel('lenet', [1, 28, 28], 10), await fetch('lenet.safetensors'));
 */
export async function loadModuleFrom(m: Module, source: ByteSource, options: SourceOptions = {}): Promise<Record<string, string>> {
  const { bytes, name } = await readSource(source, options);
  return decodeModuleInto(m, bytes, name);
}

/**
 * A deployed (packed) model from SGQM bytes (`saveDeployed` in Node, `deployedBlob` here).
 *
 * @example
 * const deployed = await loadDeployedFrom('bnn.sgq');
 * const logits = quant.runDeployed(deployed, x);
 */
export async function loadDeployedFrom(source: ByteSource, options: SourceOptions = {}): Promise<DeployedModel> {
  const { bytes, name } = await readSource(source, options);
  return decodeDeployed(bytes, name);
}

/**
 * `m`'s state dict as a safetensors Blob (what `saveModule` writes), e.g. for a download link.
 *
 * @example
 * link.href = URL.createObjectURL(moduleBlob(model, { model: 'lenet' }));
 */
export function moduleBlob(m: Module, metadata: Record<string, string> = {}): Blob {
  return new Blob([encodeModule(m, metadata)], { type: 'application/octet-stream' });
}

/**
 * A deployed model as an SGQM Blob (what `saveDeployed` writes).
 *
 * @example
 * link.href = URL.createObjectURL(deployedBlob(quant.convert(model, [1, 28, 28])));
 */
export function deployedBlob(model: DeployedModel): Blob {
  return new Blob([encodeDeployed(model) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
}
