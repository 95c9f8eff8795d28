// A minimal NBD client (fixed newstyle handshake, NBD_OPT_GO, simple replies, NBD_CMD_READ) over a
// unix socket, enough to read the guest-visible content of a disk image exported by `qemu-nbd -r`.
// Reads are pipelined; qemu-nbd may answer out of order, replies are matched by their handle.
import { connect, type Socket } from 'node:net';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = 0x49484156454f5054n;
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const INFO_EXPORT = 0;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const CMD_READ = 0;
const CMD_DISC = 2;
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;

interface Pending {
  length: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

/** Reads a byte stream as a sequence of exact-length pieces. */
class Reader {
  private bufs: Buffer[] = [];
  private have = 0;
  private waiter?: { n: number; resolve: (b: Buffer) => void };
  private error?: Error;

  push(b: Buffer): void {
    this.bufs.push(b);
    this.have += b.length;
    this.wake();
  }

  fail(e: Error): void {
    this.error ??= e;
    this.wake();
  }

  take(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiter = {
        n,
        resolve: (b) => (b ? resolve(b) : reject(this.error)),
      };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.have >= w.n) {
      this.waiter = undefined;
      w.resolve(this.consume(w.n));
    } else if (this.error) {
      this.waiter = undefined;
      w.resolve(undefined as unknown as Buffer);
    }
  }

  /** The next n buffered bytes; copies only what spans several received pieces. */
  private consume(n: number): Buffer {
    this.have -= n;
    const first = this.bufs[0];
    if (first && first.length >= n) {
      if (first.length === n) this.bufs.shift();
      else this.bufs[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const b = this.bufs[0]!;
      const take = Math.min(b.length, n - got);
      b.copy(out, got, 0, take);
      got += take;
      if (take === b.length) this.bufs.shift();
      else this.bufs[0] = b.subarray(take);
    }
    return out;
  }
}

export class NbdClient {
  private nextHandle = 1n;
  private readonly pending = new Map<bigint, Pending>();
  private closed = false;

  private constructor(
    private readonly sock: Socket,
    private readonly reader: Reader,
    /** Size of the export (the disk's virtual size) in bytes. */
    readonly size: number,
  ) {}

  /** Connects to the default export of the NBD server listening on `socketPath`. */
  static async connect(socketPath: string, exportName = ''): Promise<NbdClient> {
    // The server's socket may exist a moment before it listens.
    for (let attempt = 1; ; attempt++) {
      try {
        return await NbdClient.connectOnce(socketPath, exportName);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || attempt >= 50) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  private static async connectOnce(socketPath: string, exportName: string): Promise<NbdClient> {
    const sock = connect(socketPath);
    // A server that stops answering ends the connection (and every read waiting on it).
    sock.setTimeout(60_000, () => sock.destroy(new Error('NBD server not answering')));
    const reader = new Reader();
    sock.on('data', (b) => reader.push(b));
    sock.on('error', (e) => reader.fail(e));
    sock.on('close', () => reader.fail(new Error('NBD connection closed')));
    await new Promise<void>((res, rej) => {
      sock.once('connect', res);
      sock.once('error', rej);
    });
    try {
      const hello = await reader.take(18);
      if (!hello.subarray(0, 8).equals(NBDMAGIC) || hello.readBigUInt64BE(8) !== IHAVEOPT)
        throw new Error('not a newstyle NBD server');
      const serverFlags = hello.readUInt16BE(16);
      if (!(serverFlags & FLAG_FIXED_NEWSTYLE)) throw new Error('NBD server is not fixed newstyle');
      const clientFlags = Buffer.alloc(4);
      clientFlags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES));
      const name = Buffer.from(exportName);
      const opt = Buffer.alloc(16 + 4 + name.length + 2);
      opt.writeBigUInt64BE(IHAVEOPT, 0);
      opt.writeUInt32BE(OPT_GO, 8);
      opt.writeUInt32BE(4 + name.length + 2, 12);
      opt.writeUInt32BE(name.length, 16);
      name.copy(opt, 20);
      opt.writeUInt16BE(0, 20 + name.length);
      sock.write(Buffer.concat([clientFlags, opt]));
      let size = -1;
      for (;;) {
        const h = await reader.take(20);
        if (h.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new Error('bad NBD option reply');
        const type = h.readUInt32BE(12);
        const data = await reader.take(h.readUInt32BE(16));
        if (type & 0x80000000) throw new Error(`NBD export refused: ${data.subarray(0).toString()}`);
        if (type === REP_INFO && data.readUInt16BE(0) === INFO_EXPORT) {
          size = Number(data.readBigUInt64BE(2));
        } else if (type === REP_ACK) break;
      }
      if (size < 0) throw new Error('NBD server sent no export size');
      const client = new NbdClient(sock, reader, size);
      void client.receive();
      return client;
    } catch (e) {
      sock.destroy();
      throw e;
    }
  }

  /** `length` bytes at `offset` of the export. */
  read(offset: number, length: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('NBD client closed'));
    const handle = this.nextHandle++;
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(CMD_READ, 6);
    req.writeBigUInt64BE(handle, 8);
    req.writeBigUInt64BE(BigInt(offset), 16);
    req.writeUInt32BE(length, 24);
    return new Promise((resolve, reject) => {
      this.pending.set(handle, { length, resolve, reject });
      this.sock.write(req);
    });
  }

  private async receive(): Promise<void> {
    try {
      for (;;) {
        const h = await this.reader.take(16);
        if (h.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error('bad NBD reply magic');
        const error = h.readUInt32BE(4);
        const handle = h.readBigUInt64BE(8);
        const p = this.pending.get(handle);
        if (!p) throw new Error('NBD reply for an unknown request');
        this.pending.delete(handle);
        if (error) p.reject(new Error(`NBD read failed (errno ${error})`));
        else p.resolve(await this.reader.take(p.length));
      }
    } catch (e) {
      for (const p of this.pending.values()) p.reject(e as Error);
      this.pending.clear();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(CMD_DISC, 6);
    await new Promise<void>((res) => {
      this.sock.end(req, () => res());
      setTimeout(res, 1000).unref();
    });
    this.sock.destroy();
  }
}
