import { execFile } from 'node:child_process';
import { runShell, type ExecResult, type GuestChannel } from './channel.js';

/** The qemu guest agent is absent, not (yet) answering, or the domain is not running. */
export class NoGuestAgentError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The qemu guest agent of one domain, through `virsh qemu-agent-command` (the libvirt binding lacks
 * it): commands run in the guest, files written into it, logged-in users.
 */
export class GuestAgent implements GuestChannel {
  readonly transport = 'guest-agent';
  /** Guest agent commands sent so far (each one a round trip through libvirtd into the guest). */
  roundTrips = 0;

  constructor(
    private readonly uri: string,
    readonly domain: string,
  ) {}

  /** One guest agent command; its `return` value. */
  command<T = unknown>(execute: string, args?: object, timeoutSeconds = 10): Promise<T> {
    const json = JSON.stringify(args ? { execute, arguments: args } : { execute });
    this.roundTrips++;
    return new Promise((resolve, reject) =>
      execFile(
        'virsh',
        ['-c', this.uri, 'qemu-agent-command', this.domain, json, '--timeout', String(timeoutSeconds)],
        { timeout: (timeoutSeconds + 5) * 1000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err) {
            const msg = String(stderr || err.message).trim();
            const absent =
              /guest agent is not (connected|responding|configured)|not running|QEMU guest agent|Guest agent is not|domain is not running|failed to get domain/i.test(
                msg,
              );
            return reject(absent ? new NoGuestAgentError(msg) : new Error(msg));
          }
          try {
            resolve((JSON.parse(stdout) as { return: T }).return);
          } catch {
            reject(new Error(`unexpected guest agent answer: ${stdout.slice(0, 200)}`));
          }
        },
      ),
    );
  }

  async ping(): Promise<void> {
    await this.command('guest-ping', undefined, 3);
  }

  /** Runs a program in the guest and waits for it (output polled). */
  async exec(
    path: string,
    args: string[],
    opts: { input?: Buffer; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const { pid } = await this.command<{ pid: number }>('guest-exec', {
      path,
      arg: args,
      'capture-output': true,
      ...(opts.input ? { 'input-data': opts.input.toString('base64') } : {}),
    });
    const until = Date.now() + (opts.timeoutMs ?? 30_000);
    let roundTrips = 1;
    for (let delay = 25; ; delay = Math.min(delay + 25, 250)) {
      roundTrips++;
      const s = await this.command<{
        exited: boolean;
        exitcode?: number;
        signal?: number;
        'out-data'?: string;
        'err-data'?: string;
      }>('guest-exec-status', { pid });
      if (s.exited) {
        return {
          exitCode: s.exitcode ?? (s.signal ? 128 + s.signal : -1),
          stdout: Buffer.from(s['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(s['err-data'] ?? '', 'base64').toString('utf8'),
          roundTrips,
        };
      }
      if (Date.now() > until) throw new Error(`${path} did not finish in the guest`);
      await sleep(delay);
    }
  }

  /** A shell script run by /bin/sh in the guest; fails when it exits non-zero. */
  sh(script: string, timeoutMs?: number): Promise<string> {
    return runShell(this, script, timeoutMs);
  }

  /** Writes a file in the guest (created/truncated; the guest agent creates it 0666: set modes after). */
  async writeFile(path: string, data: Buffer): Promise<void> {
    const handle = await this.command<number>('guest-file-open', { path, mode: 'w' });
    try {
      for (let off = 0; off < data.length || off === 0; off += 48 * 1024) {
        const chunk = data.subarray(off, off + 48 * 1024);
        if (chunk.length) {
          await this.command('guest-file-write', { handle, 'buf-b64': chunk.toString('base64') });
        }
        if (data.length === 0) break;
      }
    } finally {
      await this.command('guest-file-close', { handle });
    }
  }

  close(): void {}

  users(): Promise<Array<{ user: string; 'login-time': number; domain?: string }>> {
    return this.command('guest-get-users');
  }
}
