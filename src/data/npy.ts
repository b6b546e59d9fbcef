/**
 * NumPy .npy arrays: magic "\x93NUMPY", version (1.0: uint16 header length; 2.0/3.0: uint32),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded
 * with spaces, then the raw elements. Pure parsing: no Node APIs.
 */
import { asBytes } from '../util/bytes.js';
import { clip, DataFormatError, elementCount, formatShape } from './errors.js';

export type NpyDType = 'float32' | 'float64' | 'int8' | 'uint8' | 'int32';

/** A parsed .npy array. int64 data arrive as int32 (checked to fit): labels and indices. */
export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** descr (without byte order) -> element bytes and how to decode. */
const DESCRS: Record<string, { bytes: number; dtype: NpyDType }> = {
  f4: { bytes: 4, dtype: 'float32' },
  f8: { bytes: 8, dtype: 'float64' },
  i1: { bytes: 1, dtype: 'int8' },
  u1: { bytes: 1, dtype: 'uint8' },
  b1: { bytes: 1, dtype: 'uint8' },
  i4: { bytes: 4, dtype: 'int32' },
  i8: { bytes: 8, dtype: 'int32' },
};

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses a .npy file. `fileName` names it in errors.
 *
 * @example
 * const { dtype, shape, data } = parseNpy(bytes, 'x_train.npy'); // 'uint8', [60000, 28, 28], Uint8Array
 */
export function parseNpy(data: Uint8Array | ArrayBuffer, fileName: string): NpyArray {
  const bytes = asBytes(data);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new DataFormatError(fileName, 'bad .npy magic: expected "\\x93NUMPY"');
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new DataFormatError(fileName, `unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw new DataFormatError(fileName, 'truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerLength;
  if (bytes.length < dataStart) throw new DataFormatError(fileName, `truncated .npy header: needs ${dataStart} bytes, the file has ${bytes.length}`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lengthBytes, dataStart));
  const { descr, fortranOrder, shape } = parseHeader(header, fileName);

  const order = descr[0]!;
  const code = descr.slice(1);
  const kind = DESCRS[code];
  if (!kind || !'<>|='.includes(order)) {
    throw new DataFormatError(fileName, `unsupported .npy dtype '${clip(descr)}' (supported: <f4, <f8, |i1, |u1, |b1, <i4, <i8)`);
  }
  const littleEndian = order === '<' || order === '|' || (order === '=' && HOST_LITTLE_ENDIAN);
  if (!littleEndian && kind.bytes > 1) throw new DataFormatError(fileName, `big-endian .npy dtype '${descr}' is not supported: save with '<${code}'`);
  if (fortranOrder && shape.length > 1) throw new DataFormatError(fileName, 'fortran_order arrays are not supported: save a C-ordered array (np.ascontiguousarray)');

  // Checked against the bytes present before anything is allocated.
  const count = elementCount(shape);
  const dataEnd = dataStart + count * kind.bytes;
  if (bytes.length < dataEnd) {
    throw new DataFormatError(fileName, `truncated .npy data: shape ${formatShape(shape, '(', ')')} of '${descr}' needs ${dataEnd - dataStart} bytes, the file has ${bytes.length - dataStart}`);
  }
  if (bytes.length > dataEnd) {
    throw new DataFormatError(fileName, `${bytes.length - dataEnd} unexpected bytes after the .npy data of shape ${formatShape(shape, '(', ')')} of '${descr}'`);
  }
  // Copy into a fresh, aligned buffer: .npy data inside a zip is rarely aligned. (Not slice():
  // on a Node Buffer it is a view into a shared pool.)
  const raw = new Uint8Array(bytes.subarray(dataStart, dataEnd));
  return { dtype: kind.dtype, shape, data: decodeLittleEndian(raw, code, count, fileName) };
}

function decodeLittleEndian(raw: Uint8Array, code: string, count: number, fileName: string): NpyArray['data'] {
  if (!HOST_LITTLE_ENDIAN) throw new DataFormatError(fileName, 'reading .npy data needs a little-endian host');
  switch (code) {
    case 'f4':
      return new Float32Array(raw.buffer, 0, count);
    case 'f8':
      return new Float64Array(raw.buffer, 0, count);
    case 'i1':
      return new Int8Array(raw.buffer, 0, count);
    case 'i4':
      return new Int32Array(raw.buffer, 0, count);
    case 'i8': {
      const wide = new BigInt64Array(raw.buffer, 0, count);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = wide[i]!;
        if (v > 2147483647n || v < -2147483648n) throw new DataFormatError(fileName, `int64 value ${v} at index ${i} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
    default: // u1, b1
      return raw;
  }
}

/**
 * The header dict, parsed strictly: exactly the keys 'descr' (a string), 'fortran_order'
 * (True/False) and 'shape' (a tuple of non-negative integers), as Python literals, then only
 * spaces and the closing newline (anything else is corruption, not something to skip over).
 */
function parseHeader(header: string, fileName: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (why: string): never => {
    throw new DataFormatError(fileName, `malformed .npy header ${JSON.stringify(clip(header.trim()))}: ${why}`);
  };
  let p = 0;
  const space = () => {
    while (p < header.length && ' \t\r\n'.includes(header[p]!)) p++;
  };
  const expect = (c: string) => {
    space();
    if (header[p] !== c) bad(`expected '${c}' at character ${p}`);
    p++;
  };
  const string = (): string => {
    space();
    const q = header[p];
    if (q !== "'" && q !== '"') return bad(`expected a quoted string at character ${p}`);
    const end = header.indexOf(q, p + 1);
    if (end < 0) return bad('unterminated string');
    const text = header.slice(p + 1, end);
    p = end + 1;
    return text;
  };
  const fields: Record<string, string | boolean | number[]> = {};
  expect('{');
  for (;;) {
    space();
    if (header[p] === '}') break;
    const key = string();
    if (!['descr', 'fortran_order', 'shape'].includes(key)) bad(`unexpected key '${clip(key)}' (expected 'descr', 'fortran_order' and 'shape')`);
    if (key in fields) bad(`key '${key}' appears twice`);
    expect(':');
    space();
    if (key === 'descr') fields[key] = string();
    else if (key === 'fortran_order') {
      const word = /^(True|False)/.exec(header.slice(p, p + 5))?.[1] ?? bad(`'fortran_order' must be True or False`);
      fields[key] = word === 'True';
      p += word.length;
    } else {
      expect('(');
      const close = header.indexOf(')', p);
      if (close < 0) bad("unterminated 'shape' tuple");
      const shapeText = header.slice(p, close);
      p = close + 1;
      const parts = shapeText.trim() === '' ? [] : shapeText.split(',').map((t) => t.trim());
      if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop(); // (3,) and (2, 3,)
      fields[key] = parts.map((t) => {
        const d = /^\d+L?$/.test(t) ? Number(t.replace(/L$/, '')) : NaN;
        if (!Number.isSafeInteger(d)) throw new DataFormatError(fileName, `malformed .npy shape (${clip(shapeText)})`);
        return d;
      });
    }
    space();
    if (header[p] === ',') p++;
    else if (header[p] !== '}') bad(`expected ',' or '}' at character ${p}`);
  }
  p++;
  space();
  if (p !== header.length) bad(`unexpected text after the dict at character ${p}`);
  if (!('descr' in fields && 'fortran_order' in fields && 'shape' in fields)) bad("expected 'descr', 'fortran_order' and 'shape'");
  return { descr: fields.descr as string, fortranOrder: fields.fortran_order as boolean, shape: fields.shape as number[] };
}
