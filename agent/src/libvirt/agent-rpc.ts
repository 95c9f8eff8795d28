// qemu-agent-command over one long-lived connection to the local libvirt daemon, in libvirt's own RPC
// protocol (XDR over its unix socket; remote_protocol.x and qemu_protocol.x). `virsh
// qemu-agent-command` costs a process start and a new daemon connection per command (50–300 ms
// under load); a revocation push polls the guest several times, so it keeps this one connection.
import { existsSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';

const REMOTE_PROGRAM = 0x20008086;
const QEMU_PROGRAM = 0x20008087;
const PROC_CONNECT_OPEN = 1;
const PROC_DOMAIN_LOOKUP_BY_UUID = 24;
const PROC_DOMAIN_LOOKUP_BY_NAME = 23;
const PROC_AUTH_LIST = 66;
const PROC_AUTH_POLKIT = 70;
const QEMU_PROC_DOMAIN_AGENT_COMMAND = 3;
const AUTH_NONE = 0;
const AUTH_POLKIT = 2;
const MESSAGE_MAX = 16 * 1024 * 1024;
const IDLE_MS = 60_000;

/** An error libvirt returned (virErrorNumber `code`, e.g. 42: no such domain). */
export class LibvirtError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The daemon could not be reached or refused the connection: nothing was sent. */
export class LibvirtUnavailableError extends Error {}

/** XDR writer for the few types these calls use. */
export class XdrWriter {
  private readonly parts: Buffer[] = [];
  u32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    this.parts.push(b);
    return this;
  }
  i32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    this.parts.push(b);
    return this;
  }
  /** Variable-length opaque / string: length, bytes, zero padding to 4. */
  string(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.u32(b.length);
    return this.fixed(b);
  }
  /** Fixed-length opaque (padded to 4). */
  fixed(b: Buffer): this {
    this.parts.push(b, Buffer.alloc((4 - (b.length % 4)) % 4));
    return this;
  }
  /** An optional string (`remote_string`: a pointer): present flag, then the string. */
  optString(s: string | undefined): this {
    return s === undefined ? this.u32(0) : this.u32(1).string(s);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class XdrReader {
  private off = 0;
  constructor(private readonly b: Buffer) {}
  u32(): number {
    const n = this.b.readUInt32BE(this.off);
    this.off += 4;
    return n;
  }
  i32(): number {
    const n = this.b.readInt32BE(this.off);
    this.off += 4;
    return n;
  }
  opaque(len: number): Buffer {
    if (this.off + len > this.b.length) throw new RangeError('XDR data ends early');
    const out = this.b.subarray(this.off, this.off + len);
    this.off += len + ((4 - (len % 4)) % 4);
    return out;
  }
  string(): string {
    return this.opaque(this.u32()).toString('utf8');
  }
  optString(): string | undefined {
    return this.u32() ? this.string() : undefined;
  }
}

/** A domain as the protocol names it (remote_nonnull_domain). */
interface DomainRef {
  name: string;
  uuid: Buffer;
  id: number;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * The daemon socket for a local system URI (qemu:///system): libvirtd's, or virtqemud's (modular
 * daemons); undefined for anything else (remote, session, custom socket): those keep using virsh.
 */
export function localSocketFor(uri: string): string | undefined {
  if (!/^qemu(\+unix)?:\/\/\/system$/.test(uri)) return undefined;
  const sockets = ['/var/run/libvirt/libvirt-sock', '/var/run/libvirt/virtqemud-sock'];
  return sockets.find((s) => existsSync(s)) ?? sockets[0];
}

/**
 * One connection, opened on first use and again after it dropped, closed after IDLE_MS without a
 * call; calls are multiplexed by serial. Domains are looked up once (by UUID or name) and cached while
 * the connection lives. One per guest (GuestAgent): libvirtd serves at most 5 calls of one client at a
 * time (max_client_requests), and a guest agent that does not answer must not hold up other guests.
 */
export class LibvirtAgentRpc {
  private socket?: Socket;
  private opening?: Promise<void>;
  private serial = 1;
  private readonly pending = new Map<
    number,
    { socket: Socket; resolve(b: Buffer): void; reject(e: Error): void }
  >();
  private readonly domains = new Map<string, Promise<DomainRef>>();
  private inbox: Buffer = Buffer.alloc(0);
  private idle?: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly uri: string,
  ) {}

  /** guest agent command `json` in `domain` (UUID or name); the agent's JSON answer. */
  async agentCommand(domain: string, json: string, timeoutSeconds: number): Promise<string> {
    await this.open().catch((err: Error) => {
      throw new LibvirtUnavailableError(`libvirt daemon at ${this.path}: ${err.message}`);
    });
    const dom = await this.lookup(domain);
    const args = domArgs(new XdrWriter(), dom).string(json).i32(timeoutSeconds).u32(0).done();
    const ret = await this.call(
      QEMU_PROGRAM,
      QEMU_PROC_DOMAIN_AGENT_COMMAND,
      args,
      (timeoutSeconds + 5) * 1000,
    );
    const result = new XdrReader(ret).optString();
    if (result === undefined) throw new Error('empty guest agent answer');
    return result;
  }

  close(): void {
    this.socket?.destroy();
  }

  /** Concurrent calls share one lookup; a failed one is not kept. */
  private lookup(domain: string): Promise<DomainRef> {
    let ref = this.domains.get(domain);
    if (!ref) {
      this.domains.set(domain, (ref = this.lookupNow(domain)));
      ref.catch(() => this.domains.get(domain) === ref && this.domains.delete(domain));
    }
    return ref;
  }

  private async lookupNow(domain: string): Promise<DomainRef> {
    const ret = UUID_RE.test(domain)
      ? await this.call(
          REMOTE_PROGRAM,
          PROC_DOMAIN_LOOKUP_BY_UUID,
          new XdrWriter().fixed(Buffer.from(domain.replace(/-/g, ''), 'hex')).done(),
        )
      : await this.call(REMOTE_PROGRAM, PROC_DOMAIN_LOOKUP_BY_NAME, new XdrWriter().string(domain).done());
    const r = new XdrReader(ret);
    return { name: r.string(), uuid: Buffer.from(r.opaque(16)), id: r.i32() };
  }

  private open(): Promise<void> {
    if (this.socket && !this.socket.destroyed && !this.opening) return Promise.resolve();
    this.opening ??= this.connect().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async connect(): Promise<void> {
    const socket = createConnection(this.path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.unref();
    this.socket = socket;
    this.inbox = Buffer.alloc(0);
    this.domains.clear();
    socket.on('data', (d: Buffer) => this.receive(d));
    const drop = (err?: Error) => {
      if (this.socket === socket) this.socket = undefined;
      for (const [serial, p] of this.pending) {
        if (p.socket !== socket) continue;
        this.pending.delete(serial);
        p.reject(err ?? new Error('libvirt connection closed'));
      }
    };
    socket.on('error', drop);
    socket.on('close', () => drop());
    try {
      const auth = new XdrReader(await this.call(REMOTE_PROGRAM, PROC_AUTH_LIST, Buffer.alloc(0)));
      const types = Array.from({ length: auth.u32() }, () => auth.i32());
      if (types.length && !types.includes(AUTH_NONE)) {
        if (!types.includes(AUTH_POLKIT)) throw new Error(`libvirt asks for authentication ${types}`);
        await this.call(REMOTE_PROGRAM, PROC_AUTH_POLKIT, Buffer.alloc(0));
      }
      await this.call(REMOTE_PROGRAM, PROC_CONNECT_OPEN, new XdrWriter().optString(this.uri).u32(0).done());
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  private call(prog: number, proc: number, args: Buffer, timeoutMs = 30_000): Promise<Buffer> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('libvirt connection closed'));
    clearTimeout(this.idle);
    const serial = this.serial++;
    const header = new XdrWriter()
      .u32(28 + args.length)
      .u32(prog)
      .u32(1)
      .i32(proc)
      .u32(0) // CALL
      .u32(serial)
      .u32(0) // OK
      .done();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new Error(`libvirt did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      const settle =
        <T>(f: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          if (!this.pending.size) (this.idle = setTimeout(() => socket.destroy(), IDLE_MS)).unref();
          f(v);
        };
      this.pending.set(serial, { socket, resolve: settle(resolve), reject: settle(reject) });
      socket.write(Buffer.concat([header, args]));
    });
  }

  private receive(d: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, d]) : d;
    while (this.inbox.length >= 4) {
      const len = this.inbox.readUInt32BE(0);
      if (len < 28 || len > MESSAGE_MAX) {
        this.socket?.destroy(new Error(`bad libvirt message length ${len}`));
        return;
      }
      if (this.inbox.length < len) return;
      const msg = this.inbox.subarray(0, len);
      this.inbox = this.inbox.subarray(len);
      const h = new XdrReader(msg.subarray(4, 28));
      h.u32(); // prog
      h.u32(); // vers
      h.i32(); // proc
      const type = h.u32();
      const serial = h.u32();
      const status = h.u32();
      const p = type === 1 ? this.pending.get(serial) : undefined; // REPLY; keepalives and events ignored
      if (!p) continue;
      this.pending.delete(serial);
      const body = Buffer.from(msg.subarray(28));
      if (status === 0) p.resolve(body);
      else p.reject(decodeError(body));
    }
  }
}

function domArgs(w: XdrWriter, d: DomainRef): XdrWriter {
  return w.string(d.name).fixed(d.uuid).i32(d.id);
}

function decodeError(body: Buffer): LibvirtError {
  try {
    const r = new XdrReader(body);
    const code = r.i32();
    r.i32(); // domain (the libvirt module)
    return new LibvirtError(code, r.optString() ?? `libvirt error ${code}`);
  } catch {
    return new LibvirtError(-1, 'unreadable libvirt error');
  }
}
