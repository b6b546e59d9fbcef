/**
 * Frames: what stages send each other. A frame is a JSON header (boundary, direction, step,
 * micro-batch, example ids, codec, bits, shape, cache hash) plus a binary payload. On a byte
 * stream a frame is [u32 total length][u32 header length][header][payload], little-endian.
 */

export type FrameKind =
  /** Forward activation from stage k to stage k + 1. */
  | 'act'
  /** Backward gradient of that activation, from stage k + 1 to stage k. */
  | 'grad'
  /** A piece of a data-parallel all-reduce. */
  | 'reduce'
  /** First frame on a connection: who is speaking. */
  | 'hello'
  /** The sender stops because of an error (`reason`). */
  | 'abort';

export interface FrameHeader {
  kind: FrameKind;
  /** Sender's rank. */
  from?: number;
  step?: number;
  micro?: number;
  /** Stage boundary (k for the link between stage k and k + 1). */
  boundary?: number;
  /** Stable dataset ids of the examples in this micro-batch. */
  ids?: number[];
  /** Codec of the payload: 'fp32', 'fixpoint' or 'delta'. */
  codec?: string;
  bits?: number;
  /** Logical shape of the tensor the payload encodes. */
  shape?: number[];
  /** Hash of the sender's cache entries for `ids` after this frame's update (delta codec). */
  hash?: number;
  /** All-reduce phase and chunk. */
  phase?: string;
  chunk?: number;
  reason?: string;
}

export interface Frame {
  header: FrameHeader;
  payload: Uint8Array;
}

/** Largest frame accepted from a peer (bytes): a corrupt length prefix must not allocate gigabytes. */
export const MAX_FRAME_BYTES = 1 << 30;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Header bytes (UTF-8 JSON). */
export function encodeHeader(h: FrameHeader): Uint8Array {
  return utf8.encode(JSON.stringify(h));
}

export function decodeHeader(bytes: Uint8Array, peer: string): FrameHeader {
  let h: unknown;
  try {
    h = JSON.parse(fromUtf8.decode(bytes));
  } catch {
    throw new Error(`${peer} sent a frame whose header is not JSON`);
  }
  if (!h || typeof h !== 'object' || typeof (h as FrameHeader).kind !== 'string') throw new Error(`${peer} sent a frame header without a kind`);
  return h as FrameHeader;
}

/** One length-prefixed frame as a single buffer (for byte-stream transports). */
export function encodeFrame(h: FrameHeader, payload: Uint8Array): Uint8Array {
  const head = encodeHeader(h);
  const out = new Uint8Array(8 + head.length + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 4 + head.length + payload.length, true);
  dv.setUint32(4, head.length, true);
  out.set(head, 8);
  out.set(payload, 8 + head.length);
  return out;
}

/**
 * Reassembles frames from stream chunks. `push` returns the frames completed by a chunk; a
 * length prefix over MAX_FRAME_BYTES or a header longer than its frame is an error naming `peer`.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  constructor(private readonly peer: string) {}

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) return out;
      const head = this.peek(8);
      const total = head.readUInt32LE(0);
      if (total > MAX_FRAME_BYTES || total < 4) throw new Error(`${this.peer} sent a frame of ${total} bytes (limit ${MAX_FRAME_BYTES}); the stream is corrupt`);
      if (this.buffered < 4 + total) return out;
      const all = this.take(4 + total);
      const headerLength = all.readUInt32LE(4);
      if (headerLength > total - 4) throw new Error(`${this.peer} sent a frame whose header (${headerLength} bytes) is longer than the frame`);
      const header = decodeHeader(all.subarray(8, 8 + headerLength), this.peer);
      out.push({ header, payload: new Uint8Array(all.buffer, all.byteOffset + 8 + headerLength, total - 4 - headerLength) });
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n || this.chunks.length === 1) return this.chunks[0]!;
    const merged = Buffer.concat(this.chunks);
    this.chunks = [merged];
    return merged;
  }

  private take(n: number): Buffer {
    const merged = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = Buffer.from(merged.subarray(0, n)); // own copy: the payload outlives the stream buffer
    const rest = merged.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered -= n;
    return out;
  }
}
