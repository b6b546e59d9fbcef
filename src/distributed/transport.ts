/**
 * Links between stages: FIFO, message-oriented, with byte counters. Three transports:
 * - in-process pairs with a token-bucket bandwidth and delay simulator (unit tests, `sim:` links);
 * - raw `node:net` TCP with length-prefixed frames (no dependencies);
 * - ZeroMQ (the `zeromq` package): a ROUTER socket per stage receives, a DEALER per peer sends.
 * A peer that disconnects, aborts, or stays silent past the receive timeout fails every pending
 * and later `recv` with an error that names it.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { encodeFrame, encodeHeader, FrameReader, type Frame, type FrameHeader } from './frame.js';

export interface LinkStats {
  framesSent: number;
  /** Payload bytes sent (codes, scales, raw values). */
  payloadBytes: number;
  /** Framing bytes sent (length prefixes and headers). */
  framingBytes: number;
}

export function emptyStats(): LinkStats {
  return { framesSent: 0, payloadBytes: 0, framingBytes: 0 };
}

/** A bidirectional FIFO link to one peer. */
export abstract class Link {
  readonly stats: LinkStats = emptyStats();
  private readonly inbox: Frame[] = [];
  private readonly waiters: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }[] = [];
  private failure: Error | null = null;
  /** Milliseconds `recv` waits before declaring the peer dead (0 = forever). */
  recvTimeoutMs = 120_000;

  constructor(
    /** Who is on the other end, for error messages, e.g. "stage 2 (10.0.0.2:7002)". */
    readonly peer: string,
  ) {}

  /** Sends one frame; resolves when the transport has accepted it (not when it is delivered). */
  async send(header: FrameHeader, payload: Uint8Array = new Uint8Array(0)): Promise<void> {
    if (this.failure) throw this.failure;
    const head = encodeHeader(header).length;
    this.stats.framesSent++;
    this.stats.payloadBytes += payload.length;
    this.stats.framingBytes += head + this.framingOverhead;
    // One transmit at a time, in call order (ZeroMQ sockets allow a single pending send).
    const run = this.sendQueue.then(() => this.transmit(header, payload));
    this.sendQueue = run.catch(() => {});
    await run;
  }
  private sendQueue: Promise<void> = Promise.resolve();

  /** Next frame from the peer, in order. An 'abort' frame from the peer becomes an error. */
  recv(): Promise<Frame> {
    const f = this.inbox.shift();
    if (f) return Promise.resolve(f);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const w: (typeof this.waiters)[number] = { resolve, reject };
      if (this.recvTimeoutMs > 0) {
        w.timer = setTimeout(() => this.fail(new Error(`${this.peer} sent nothing for ${this.recvTimeoutMs / 1000} s; giving up on it`)), this.recvTimeoutMs);
      }
      this.waiters.push(w);
    });
  }

  /** Bytes a frame costs beyond its header and payload (length prefixes). */
  protected abstract readonly framingOverhead: number;
  protected abstract transmit(header: FrameHeader, payload: Uint8Array): Promise<void>;
  /** Closes the underlying connection. */
  abstract close(): void;

  /** Called by subclasses for each frame that arrives. */
  protected deliver(f: Frame): void {
    if (this.failure) return;
    if (f.header.kind === 'abort') {
      this.fail(new Error(`${this.peer} stopped: ${f.header.reason ?? 'no reason given'}`));
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(f);
    } else this.inbox.push(f);
  }

  /** Marks the link dead: pending and later receives (and sends) reject with `e`. */
  fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.close();
  }

  get failed(): Error | null {
    return this.failure;
  }

  /** Tells the peer we stop (best effort, bounded by `ms`), then closes. */
  async abort(reason: string, ms = 1000): Promise<void> {
    if (!this.failure) {
      await Promise.race([this.transmit({ kind: 'abort', reason }, new Uint8Array(0)).catch(() => {}), new Promise((r) => setTimeout(r, ms).unref())]);
    }
    this.close();
  }
}

// ---------------------------------------------------------------------------------------------
// In-process links with a bandwidth and delay simulator.

export interface SimOptions {
  /** Link bandwidth in bits per second (each direction); 0 or undefined = unlimited. */
  bitsPerSecond?: number;
  /** One-way delay added to every frame (ms). */
  delayMs?: number;
}

class InProcLink extends Link {
  protected readonly framingOverhead = 8;
  other!: InProcLink;
  private busyUntil = 0;
  private closed = false;
  constructor(peer: string, private readonly sim: SimOptions) {
    super(peer);
  }
  protected transmit(header: FrameHeader, payload: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`link to ${this.peer} is closed`));
    const bytes = payload.length + encodeHeader(header).length + this.framingOverhead;
    const frame: Frame = { header: structuredClone(header), payload: payload.slice() };
    const rate = this.sim.bitsPerSecond ?? 0;
    const now = performance.now();
    // Token bucket of one frame: the link serializes frames back to back at `rate`.
    const start = Math.max(now, this.busyUntil);
    this.busyUntil = start + (rate > 0 ? (bytes * 8 * 1000) / rate : 0);
    const arrive = this.busyUntil + (this.sim.delayMs ?? 0);
    const other = this.other;
    const deliver = () => other.deliver(frame);
    if (arrive - now <= 0) queueMicrotask(deliver);
    else setTimeout(deliver, arrive - now);
    const accepted = this.busyUntil - now;
    return accepted > 0 ? new Promise((r) => setTimeout(r, accepted)) : Promise.resolve();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Frames already on the wire still arrive; the other end learns of the close after them.
    const after = Math.max(0, this.busyUntil + (this.sim.delayMs ?? 0) - performance.now());
    setTimeout(() => this.other.fail(new Error(`${this.other.peer} closed the connection`)), after);
  }
}

/**
 * Two connected in-process links: `a` talks to `b`. `names` are what each end is called in the
 * other's error messages.
 */
export function inProcessPair(nameA: string, nameB: string, sim: SimOptions = {}): [Link, Link] {
  const a = new InProcLink(nameB, sim), b = new InProcLink(nameA, sim);
  a.other = b;
  b.other = a;
  return [a, b];
}

// ---------------------------------------------------------------------------------------------
// TCP.

class TcpLink extends Link {
  protected readonly framingOverhead = 8;
  constructor(peer: string, private readonly socket: Socket, reader: FrameReader, early: Frame[]) {
    super(peer);
    socket.setNoDelay(true);
    for (const f of early) this.deliver(f);
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      for (const f of frames) this.deliver(f);
    });
    socket.on('error', (e) => this.fail(new Error(`connection to ${peer} failed: ${e.message}`)));
    socket.on('close', () => this.fail(new Error(`${peer} closed the connection`)));
  }
  protected transmit(header: FrameHeader, payload: Uint8Array): Promise<void> {
    const buf = encodeFrame(header, payload);
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(new Error(`connection to ${this.peer} is closed`));
        return;
      }
      // Resolve once the kernel has taken the bytes (backpressure through the write callback).
      this.socket.write(buf, (err) => (err ? reject(new Error(`sending to ${this.peer} failed: ${err.message}`)) : resolve()));
    });
  }
  close(): void {
    this.socket.destroy();
  }
}

export type TransportKind = 'tcp' | 'zmq';

/** Address of every rank, "host:port". */
export function parseAddress(a: string, what: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(a);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port > 0 && port < 65536)) throw new Error(`${what}: '${a}' is not host:port`);
  return { host: m[1], port };
}

export interface MeshOptions {
  rank: number;
  /** "host:port" of every rank; this rank listens on its own port (all interfaces). */
  peers: string[];
  /** Ranks this rank needs a link to. */
  neighbours: number[];
  transport: TransportKind;
  /** Give up connecting after this long (ms). */
  connectTimeoutMs?: number;
  /** Name of a rank in error messages. */
  name?: (rank: number) => string;
}

const defaultName = (peers: string[]) => (r: number) => `stage rank ${r} (${peers[r]})`;

/**
 * Connects this rank to its neighbours. The lower rank of each pair dials, the higher accepts;
 * the dialer's first frame says who it is. Retries dialing until `connectTimeoutMs`.
 */
export async function connectMesh(o: MeshOptions): Promise<Map<number, Link>> {
  const links = await (o.transport === 'zmq' ? connectZmq(o) : connectTcp(o));
  for (const l of links.values()) Object.assign(l.stats, emptyStats()); // count training traffic only
  return links;
}

function deadlineError(o: MeshOptions, missing: number[]): Error {
  const name = o.name ?? defaultName(o.peers);
  return new Error(`rank ${o.rank}: could not connect to ${missing.map(name).join(', ')} within ${(o.connectTimeoutMs ?? 30000) / 1000} s`);
}

async function connectTcp(o: MeshOptions): Promise<Map<number, Link>> {
  const name = o.name ?? defaultName(o.peers);
  const links = new Map<number, Link>();
  const accept = o.neighbours.filter((r) => r < o.rank);
  const dial = o.neighbours.filter((r) => r > o.rank);
  const timeout = o.connectTimeoutMs ?? 30000;
  const deadline = Date.now() + timeout;
  let server: Server | null = null;
  const accepted = new Promise<void>((resolve, reject) => {
    if (!accept.length) {
      resolve();
      return;
    }
    const { port } = parseAddress(o.peers[o.rank]!, `address of rank ${o.rank}`);
    server = createServer((socket) => {
      const reader = new FrameReader(`a connection to rank ${o.rank}`);
      const onData = (chunk: Buffer) => {
        let frames: Frame[];
        try {
          frames = reader.push(chunk);
        } catch {
          socket.destroy();
          return;
        }
        if (!frames.length) return;
        socket.off('data', onData);
        const hello = frames[0]!.header;
        const from = hello.from ?? -1;
        if (hello.kind !== 'hello' || !accept.includes(from) || links.has(from)) {
          socket.destroy();
          return;
        }
        links.set(from, new TcpLink(name(from), socket, reader, frames.slice(1)));
        if (accept.every((r) => links.has(r))) resolve();
      };
      socket.on('data', onData);
      socket.on('error', () => socket.destroy());
    });
    server.on('error', (e) => reject(new Error(`rank ${o.rank}: cannot listen on port ${port}: ${e.message}`)));
    server.listen(port);
  });
  const dialOne = async (r: number): Promise<void> => {
    const { host, port } = parseAddress(o.peers[r]!, `address of rank ${r}`);
    for (;;) {
      const socket = await new Promise<Socket | null>((resolve) => {
        const s = createConnection({ host, port });
        s.once('connect', () => resolve(s));
        s.once('error', () => {
          s.destroy();
          resolve(null);
        });
      });
      if (socket) {
        const link = new TcpLink(name(r), socket, new FrameReader(name(r)), []);
        links.set(r, link);
        await link.send({ kind: 'hello', from: o.rank });
        return;
      }
      if (Date.now() > deadline) throw deadlineError(o, [r]);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(deadlineError(o, o.neighbours.filter((r) => !links.has(r)))), timeout + 1000);
  });
  try {
    await Promise.race([Promise.all([accepted, ...dial.map(dialOne)]), timedOut]);
  } catch (e) {
    for (const l of links.values()) l.close();
    throw e;
  } finally {
    clearTimeout(timer);
    (server as Server | null)?.close(); // stops accepting; open connections stay
  }
  return links;
}

// ---------------------------------------------------------------------------------------------
// ZeroMQ.

type Zmq = typeof import('zeromq');

async function loadZmq(): Promise<Zmq> {
  try {
    return await import('zeromq');
  } catch (e) {
    throw new Error(`the zmq transport needs the 'zeromq' package (npm install zeromq): ${(e as Error).message}`);
  }
}

class ZmqLink extends Link {
  /** ZMTP frame headers of the two message parts (short frames: 2 bytes each). */
  protected readonly framingOverhead = 4;
  constructor(peer: string, private readonly dealer: import('zeromq').Dealer, private readonly onClose: () => void) {
    super(peer);
  }
  push(f: Frame): void {
    this.deliver(f);
  }
  protected async transmit(header: FrameHeader, payload: Uint8Array): Promise<void> {
    if (this.dealer.closed) throw new Error(`connection to ${this.peer} is closed`);
    await this.dealer.send([encodeHeader(header), payload]);
  }
  close(): void {
    if (!this.dealer.closed) this.dealer.close();
    this.onClose();
  }
}

/** After a ZeroMQ peer disconnects, how long its last frames may still arrive (ms). */
const ZMQ_CLOSE_GRACE_MS = 1000;

async function connectZmq(o: MeshOptions): Promise<Map<number, Link>> {
  const zmq = await loadZmq();
  const name = o.name ?? defaultName(o.peers);
  const { port } = parseAddress(o.peers[o.rank]!, `address of rank ${o.rank}`);
  const router = new zmq.Router({ linger: 0 });
  await router.bind(`tcp://*:${port}`).catch((e: Error) => {
    throw new Error(`rank ${o.rank}: cannot listen on port ${port}: ${e.message}`);
  });
  const links = new Map<number, ZmqLink>();
  let open = o.neighbours.length;
  const closeOne = () => {
    if (--open === 0 && !router.closed) router.close();
  };
  const helloFrom = new Set<number>();
  const wake: { fn: (() => void) | null } = { fn: null };
  for (const r of o.neighbours) {
    const { host, port: p } = parseAddress(o.peers[r]!, `address of rank ${r}`);
    // linger: a finished stage's last frames are still delivered after it closes.
    const dealer = new zmq.Dealer({ linger: 2000, routingId: `r${o.rank}`, sendHighWaterMark: 64 });
    const link = new ZmqLink(name(r), dealer, closeOne);
    let connected = false;
    dealer.events.on('handshake', () => {
      connected = true;
    });
    // ZeroMQ reconnects silently; for training a lost peer is fatal. The peer's last frames come
    // over its own connection to our ROUTER, which may lag this one: they get a moment to arrive.
    dealer.events.on('disconnect', () => {
      if (connected) setTimeout(() => link.fail(new Error(`${name(r)} closed the connection`)), ZMQ_CLOSE_GRACE_MS).unref();
    });
    dealer.connect(`tcp://${host}:${p}`);
    links.set(r, link);
  }
  // Receive loop: the ROUTER prefixes each message with the sender's routing id.
  void (async () => {
    try {
      for await (const [id, head, payload] of router) {
        const from = Number(String(id).slice(1));
        const link = links.get(from);
        if (!link || !head) continue;
        let header: FrameHeader;
        try {
          header = JSON.parse(head.toString()) as FrameHeader;
        } catch {
          link.fail(new Error(`${link.peer} sent a frame whose header is not JSON`));
          continue;
        }
        if (header.kind === 'hello') {
          helloFrom.add(from);
          wake.fn?.();
          continue;
        }
        const p = payload ?? Buffer.alloc(0);
        link.push({ header, payload: new Uint8Array(p.buffer, p.byteOffset, p.length) });
      }
    } catch (e) {
      if (!router.closed) for (const l of links.values()) l.fail(new Error(`rank ${o.rank}: receive failed: ${(e as Error).message}`));
    }
  })();
  // Handshake: every neighbour must have said hello (so both directions are up).
  const timeout = o.connectTimeoutMs ?? 30000;
  for (const l of links.values()) await l.send({ kind: 'hello', from: o.rank });
  const deadline = Date.now() + timeout;
  while (!o.neighbours.every((r) => helloFrom.has(r))) {
    if (Date.now() > deadline) {
      for (const l of links.values()) l.close();
      throw deadlineError(o, o.neighbours.filter((r) => !helloFrom.has(r)));
    }
    await new Promise<void>((res) => {
      wake.fn = res;
      setTimeout(res, 100);
    });
  }
  return links;
}
