import * as grpc from '@grpc/grpc-js';
import { vmwardenServices } from '../../proto/load.js';

/** Failures that say "this controller did not answer", not "it refused": worth asking the next one. */
const UNREACHABLE = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

export interface ControllerConnectionOptions {
  /** Start with this address when it is listed (the last good one of a previous connection). */
  prefer?: string;
  /** One line per failover; addresses and status codes only. */
  log?: (msg: string) => void;
}

/**
 * Unary calls to the controller service over one of several addresses, all verified the same way
 * (`credentials`, and the server name every controller certificate carries). A call goes to the
 * current address; when that one is unreachable (UNAVAILABLE, which covers connection refused, or
 * DEADLINE_EXCEEDED) it is tried once on each next address in turn and the address that answered
 * becomes the current one. When none answers, the last error is thrown.
 */
export class ControllerConnection {
  private readonly clients = new Map<string, any>();
  private current = 0;

  constructor(
    readonly addresses: readonly string[],
    private readonly credentials: grpc.ChannelCredentials,
    private readonly opts: ControllerConnectionOptions = {},
  ) {
    if (addresses.length === 0) throw new Error('no controller address');
    this.current = Math.max(0, opts.prefer ? addresses.indexOf(opts.prefer) : 0);
  }

  /** The address calls go to first. */
  get address(): string {
    return this.addresses[this.current];
  }

  async call<T>(method: string, req: object, timeoutMs = 15_000): Promise<T> {
    const n = this.addresses.length;
    const start = this.current;
    let last: unknown;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      try {
        const res = await this.once<T>(this.addresses[i], method, req, timeoutMs);
        this.current = i;
        return res;
      } catch (err) {
        last = err;
        const code = (err as grpc.ServiceError).code;
        // A channel that failed to connect waits out a backoff before trying again, failing calls
        // meanwhile: the next call to this address gets a new channel, so a controller that came
        // back is seen at once.
        if (code === grpc.status.UNAVAILABLE) this.drop(this.addresses[i]);
        if (!UNREACHABLE.has(code) || k === n - 1) break;
        // Calls in flight together fail together: only the first moves the current address and logs.
        if (this.current === i) {
          this.current = (i + 1) % n;
          this.opts.log?.(
            `controller ${this.addresses[i]} unreachable (${grpc.status[code]}), failing over to ${this.addresses[this.current]}`,
          );
        }
      }
    }
    throw last;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private drop(address: string): void {
    this.clients.get(address)?.close();
    this.clients.delete(address);
  }

  private client(address: string): any {
    let c = this.clients.get(address);
    if (!c) {
      const { Controller } = vmwardenServices();
      // The name checked in every controller's certificate, whatever address reached it (as with one).
      c = new Controller(address, this.credentials, { 'grpc.ssl_target_name_override': 'localhost' });
      this.clients.set(address, c);
    }
    return c;
  }

  private once<T>(address: string, method: string, req: object, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) =>
      this.client(address)[method](
        req,
        { deadline: Date.now() + timeoutMs },
        (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
      ),
    );
  }
}
