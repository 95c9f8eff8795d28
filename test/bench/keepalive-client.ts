import { connect, type Socket } from 'node:net';

/**
 * A minimal HTTP/1.1 keep-alive client for load generation: the request is encoded once and written
 * as is; a response is read up to its Content-Length and only its status kept. node's http client
 * costs ~100 µs of CPU per request, which on a 2-core machine is CPU taken from the server measured.
 */
export class KeepAliveClient {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting?: { resolve: (status: number) => void; reject: (err: Error) => void };

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static open(host: string, port: number): Promise<KeepAliveClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port }, () => resolve(new KeepAliveClient(s)));
      s.once('error', reject);
    });
  }

  /** Encodes a request once; send() it as often as needed. */
  static encode(
    method: string,
    path: string,
    host: string,
    headers: Record<string, string>,
    body?: string,
  ): Buffer {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${host}`, 'connection: keep-alive'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== undefined) lines.push(`content-length: ${payload.length}`);
    return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), payload]);
  }

  /** Sends one encoded request; resolves with the response status once the whole response is in. */
  send(request: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(request);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, d]) : d;
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
    if (!Number.isFinite(length)) return this.fail(new Error(`response without content-length: ${head}`));
    if (this.buffer.length < end + 4 + length) return;
    const status = Number(head.slice(9, 12));
    this.buffer = this.buffer.subarray(end + 4 + length);
    const w = this.waiting;
    this.waiting = undefined;
    w?.resolve(status);
  }

  private fail(err: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }
}
