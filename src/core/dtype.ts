/** Element types. float32 is the compute type; float64 exists for gradient checks on the
 * reference backend; the integer types hold labels, indices, masks and packed low-bit data. */
export type DType = 'float32' | 'float64' | 'int32' | 'int8' | 'uint8';

export type TypedArrayOf<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'int8'
        ? Int8Array
        : Uint8Array;

export type AnyTypedArray = Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array;
export type FloatArray = Float32Array | Float64Array;

interface DTypeTraits {
  bytes: number;
  float: boolean;
  ctor: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): AnyTypedArray };
}

export const DTYPES: Record<DType, DTypeTraits> = {
  float32: { bytes: 4, float: true, ctor: Float32Array },
  float64: { bytes: 8, float: true, ctor: Float64Array },
  int32: { bytes: 4, float: false, ctor: Int32Array },
  int8: { bytes: 1, float: false, ctor: Int8Array },
  uint8: { bytes: 1, float: false, ctor: Uint8Array },
};

export function isFloat(d: DType): boolean {
  return DTYPES[d].float;
}

export function assertDType(d: string): asserts d is DType {
  if (!(d in DTYPES)) throw new TypeError(`unknown dtype '${d}' (expected one of ${Object.keys(DTYPES).join(', ')})`);
}
