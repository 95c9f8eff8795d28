import { execFile } from 'node:child_process';
import {
  LibvirtAgentRpc,
  LibvirtError,
  LibvirtUnavailableError,
  localSocketFor,
} from '../libvirt/agent-rpc.js';
import { runShell, type ExecOptions, type ExecResult, type GuestChannel } from './channel.js';

/** The qemu guest agent is absent, not (yet) answering, or the domain is not running. */
export class NoGuestAgentError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The longest wait between two guest-exec-status (long scripts: the install, the journal read). */
const POLL_MAX_MS = 250;
/**
 * The waits between two guest-exec-status of a `quick` program (the revocation path): under TCG a
 * shell that starts one program takes 150–300 ms (never less than ~100), so after the first status
 * (at once) the agent waits 100 ms, then asks every 20 ms; the doubling wait (5, 10, 20, … ms) found
 * it done ~50 ms late on average. Long scripts keep the doubling wait.
 */
const POLL_QUICK_FIRST_MS = 100;
const POLL_QUICK_MS = 20;
/** Bytes per guest-file-write (the agent's command size stays well under its limits). */
const WRITE_CHUNK = 48 * 1024;

/** libvirt's "no domain" error number (VIR_ERR_NO_DOMAIN). */
const NO_DOMAIN = 42;

/** A failure of libvirt or the guest agent; NoGuestAgentError when the agent or domain is not there. */
function agentError(msg: string, code?: number): Error {
  const absent =
    code === NO_DOMAIN ||
    /guest agent is not (connected|responding|configured)|not running|QEMU guest agent|Guest agent is not|domain is not running|failed to get domain|Domain not found/i.test(
      msg,
    );
  return absent ? new NoGuestAgentError(msg) : new Error(msg);
}

/** Until when the daemon connection is not tried (it failed): commands go through virsh. */
let rpcDownUntil = 0;

/**
 * The qemu guest agent of one domain (the libvirt binding lacks qemu-agent-command): through one
 * connection to the local daemon kept by the process (agent-rpc.ts), else `virsh qemu-agent-command`
 * (remote URIs, or that connection failing): commands run in the guest, files written into it,
 * logged-in users.
 */
export class GuestAgent implements GuestChannel {
  readonly transport = 'guest-agent';
  /** Guest agent commands sent so far (each one a round trip through libvirtd into the guest). */
  roundTrips = 0;

  /** The connection to the local daemon (undefined: a remote URI, virsh). */
  private readonly rpc?: LibvirtAgentRpc;

  constructor(
    private readonly uri: string,
    readonly domain: string,
    opts: { virshOnly?: boolean } = {},
  ) {
    const socket = opts.virshOnly ? undefined : localSocketFor(uri);
    if (socket) this.rpc = new LibvirtAgentRpc(socket, uri);
  }

  /** One guest agent command; its `return` value. */
  async command<T = unknown>(execute: string, args?: object, timeoutSeconds = 10): Promise<T> {
    const json = JSON.stringify(args ? { execute, arguments: args } : { execute });
    this.roundTrips++;
    const rpc = Date.now() >= rpcDownUntil ? this.rpc : undefined;
    let answer: string | undefined;
    if (rpc) {
      try {
        answer = await rpc.agentCommand(this.domain, json, timeoutSeconds);
      } catch (err) {
        if (err instanceof LibvirtError) throw agentError(err.message, err.code);
        if (!(err instanceof LibvirtUnavailableError)) throw err;
        // The daemon's socket is not there or refused us (nothing sent): virsh for a while.
        rpcDownUntil = Date.now() + 30_000;
      }
    }
    answer ??= await this.virsh(json, timeoutSeconds);
    try {
      return (JSON.parse(answer) as { return: T }).return;
    } catch {
      throw new Error(`unexpected guest agent answer: ${answer.slice(0, 200)}`);
    }
  }

  private virsh(json: string, timeoutSeconds: number): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile(
        'virsh',
        ['-c', this.uri, 'qemu-agent-command', this.domain, json, '--timeout', String(timeoutSeconds)],
        { timeout: (timeoutSeconds + 5) * 1000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) =>
          err ? reject(agentError(String(stderr || err.message).trim())) : resolve(stdout),
      ),
    );
  }

  async ping(): Promise<void> {
    await this.command('guest-ping', undefined, 3);
  }

  /** Runs a program in the guest and waits for it (output polled). */
  async exec(path: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const { pid } = await this.command<{ pid: number }>('guest-exec', {
      path,
      arg: args,
      'capture-output': true,
      ...(opts.input ? { 'input-data': opts.input.toString('base64') } : {}),
    });
    const until = Date.now() + (opts.timeoutMs ?? 30_000);
    let roundTrips = 1;
    // Asked at once (short scripts are done by then), then for a quick program after 100 ms and
    // every 20 ms, else after 5, 10, 20… ms up to POLL_MAX_MS.
    for (
      let delay = opts.quick ? POLL_QUICK_FIRST_MS : 5;
      ;
      delay = opts.quick ? POLL_QUICK_MS : Math.min(delay * 2, POLL_MAX_MS)
    ) {
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
      await this.writeAll(handle, data, path);
    } finally {
      await this.command('guest-file-close', { handle });
    }
  }

  async overwriteFile(path: string, data: Buffer): Promise<{ written: boolean; roundTrips: number }> {
    let handle: number;
    try {
      // "r+" has no O_CREAT: a missing file stays missing (the agent would create it 0666).
      handle = await this.command<number>('guest-file-open', { path, mode: 'r+' });
    } catch (err) {
      if (/failed to open file/i.test((err as Error).message)) return { written: false, roundTrips: 1 };
      throw err;
    }
    let written = false;
    try {
      await this.writeAll(handle, data, path);
      // "r+" does not truncate: a longer old content would remain after ours.
      const end = await this.command<{ position: number }>('guest-file-seek', {
        handle,
        offset: 0,
        whence: 'end',
      });
      written = end.position === data.length;
    } finally {
      await this.command('guest-file-close', { handle });
    }
    return { written, roundTrips: Math.ceil(data.length / WRITE_CHUNK) + 3 };
  }

  private async writeAll(handle: number, data: Buffer, path: string): Promise<void> {
    for (let off = 0; off < data.length; off += WRITE_CHUNK) {
      const chunk = data.subarray(off, off + WRITE_CHUNK);
      const { count } = await this.command<{ count: number }>('guest-file-write', {
        handle,
        'buf-b64': chunk.toString('base64'),
      });
      if (count !== chunk.length)
        throw new Error(`short write to ${path} in the guest (${count}/${chunk.length})`);
    }
  }

  close(): void {
    this.rpc?.close();
  }

  users(): Promise<Array<{ user: string; 'login-time': number; domain?: string }>> {
    return this.command('guest-get-users');
  }
}
