/** CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320), as zip, gzip and slimgrad's own files use. */

let crcTable: Uint32Array | null = null;

/**
 * CRC-32 of `data`; pass the CRC of the bytes before `data` as `previous` to continue it
 * (crc32(b, crc32(a)) === crc32(a followed by b)).
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')); // 0xcbf43926
 */
export function crc32(data: Uint8Array, previous = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A CRC as 8 lowercase hex digits. */
export const crcHex = (v: number): string => v.toString(16).padStart(8, '0');
