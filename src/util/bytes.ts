/**
 * Input bytes for the decoders: a Node Buffer, any Uint8Array view, or an ArrayBuffer, as a
 * Uint8Array over exactly those bytes. Decoders read through byteOffset-aware views or copies,
 * never through `.buffer` alone (a Buffer's `.buffer` is a shared pool or a larger allocation).
 *
 * @example
 * asBytes(new ArrayBuffer(8)).length;  // 8
 */
export function asBytes(data: Uint8Array | ArrayBuffer): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}
