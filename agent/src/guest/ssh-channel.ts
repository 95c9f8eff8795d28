import { constants } from 'node:os';
import { Client } from 'ssh2';
import { readPrivateFile } from '../../../lib/platform/private-file.js';
import { runShell, type ExecResult, type GuestChannel } from './channel.js';
import { HostKeyMismatchError, type HostKeyPins } from './host-keys.js';
import { shellQuote } from '../shell.js';

/** How to reach one guest over SSH when it has no guest agent (the agent's `sshProvisioning` entry). */
export interface SshTarget {
  /** Private key the guest's root accepts (mode 0600, refused otherwise). */
  keyFile: string;
  port: number;
  /** Fixed address; else the instance's addresses as libvirt reports them (DHCP leases). */
  address?: string;
  /** Expected host key (SHA256:…); else the first one seen is pinned. */
  hostKey?: string;
}

/** No connection could be made (no address, nothing listening, authentication refused). */
export class SshUnreachableError extends Error {}

/**
 * The fallback way into a guest: root over SSH with a provisioning key (ssh2), one connection kept
 * open and reused by every command, opened again when it drops. Host keys are pinned per instance.
 */
export class SshChannel implements GuestChannel {
  readonly transport = 'ssh';
  private client?: Client;
  private connecting?: Promise<Client>;

  constructor(
    private readonly serverId: string,
    private readonly target: SshTarget,
    private readonly addresses: () => Promise<string[]>,
    private readonly pins: HostKeyPins,
    private readonly connectTimeoutMs = 8000,
  ) {}

  async exec(
    path: string,
    args: string[],
    opts: { input?: Buffer; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const client = await this.connection();
    const command = [path, ...args].map(shellQuote).join(' ');
    return new Promise((resolve, reject) => {
      const onStream = (err: Error | undefined, stream: import('ssh2').ClientChannel) => {
        if (err) return reject(new SshUnreachableError(`ssh exec: ${err.message}`));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let exit: { code: number | null; signal?: string } | undefined;
        const timer = setTimeout(() => {
          stream.close();
          reject(new Error(`${path} did not finish in the guest`));
        }, opts.timeoutMs ?? 30_000);
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('exit', (code: number | null, signal?: string) => (exit = { code, signal }));
        stream.on('close', () => {
          clearTimeout(timer);
          if (!exit)
            return reject(new SshUnreachableError(`ssh connection to instance ${this.serverId} lost`));
          const name = exit.signal?.replace(/^(SIG)?/, 'SIG') as NodeJS.Signals | undefined;
          const signalNo = name ? (constants.signals[name] ?? 0) : 0;
          resolve({
            exitCode: exit.code ?? 128 + signalNo,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errOut).toString('utf8'),
          });
        });
        stream.end(opts.input ?? Buffer.alloc(0));
      };
      try {
        client.exec(command, onStream);
      } catch (err) {
        this.drop(client);
        reject(new SshUnreachableError(`ssh exec: ${(err as Error).message}`));
      }
    });
  }

  sh(script: string, timeoutMs?: number): Promise<string> {
    return runShell(this, script, timeoutMs);
  }

  async writeFile(path: string, data: Buffer): Promise<void> {
    const r = await this.exec('/bin/sh', ['-c', `cat > ${shellQuote(path)}`], { input: data });
    if (r.exitCode !== 0)
      throw new Error(`writing ${path} over ssh failed: ${r.stderr.trim().slice(0, 300)}`);
  }

  close(): void {
    const c = this.client;
    this.client = undefined;
    c?.end();
  }

  private drop(c: Client): void {
    if (this.client === c) this.client = undefined;
    c.end();
  }

  private connection(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect()
      .then((c) => {
        this.client = c;
        c.on('close', () => this.client === c && (this.client = undefined));
        return c;
      })
      .finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const privateKey = readPrivateFile(this.target.keyFile);
    const hosts = this.target.address ? [this.target.address] : await this.addresses();
    if (!hosts.length) {
      throw new SshUnreachableError(
        `no address known for instance ${this.serverId}: set address in its sshProvisioning entry`,
      );
    }
    let last: Error | undefined;
    for (const host of hosts) {
      try {
        return await this.connectTo(host, privateKey);
      } catch (err) {
        if (err instanceof HostKeyMismatchError) throw err;
        last = err as Error;
      }
    }
    throw new SshUnreachableError(
      `ssh root@${hosts.join(' or ')} port ${this.target.port}: ${last?.message}`,
    );
  }

  private connectTo(host: string, privateKey: Buffer): Promise<Client> {
    return new Promise((resolve, reject) => {
      const c = new Client();
      let mismatch: Error | undefined;
      c.once('ready', () => resolve(c));
      c.on('error', (err) => reject(mismatch ?? err));
      c.connect({
        host,
        port: this.target.port,
        username: 'root',
        privateKey,
        readyTimeout: this.connectTimeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          try {
            this.pins.check(this.serverId, key, this.target.hostKey);
            return true;
          } catch (err) {
            mismatch = err as Error;
            return false;
          }
        },
      });
    });
  }
}
