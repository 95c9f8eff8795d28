/**
 * The real QEMU guest agent (Debian's qemu-ga) run on this host, listening on a unix socket in a
 * temporary directory, and a GuestAgent that speaks to it there instead of through libvirt: the
 * guest side of guest-agent exchanges (file writes, guest-exec) without booting a VM. It runs as the
 * test's user on the host, so tests point it at their own temporary files only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestAgent } from '../../agent/src/guest/guest-agent.js';
import { waitFor } from './wait.js';

export interface HostQemuGa {
  agent: GuestAgent;
  dir: string;
  stop(): Promise<void>;
}

class SocketGuestAgent extends GuestAgent {
  private buffer = '';
  private readonly waiting: Array<(line: string) => void> = [];
  /** One command at a time, as libvirt sends them. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly socket: Socket) {
    super('test:///default', 'host-qemu-ga');
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (let i; (i = this.buffer.indexOf('\n')) >= 0;) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  override command<T>(execute: string, args?: object): Promise<T> {
    const run = this.queue.then(
      () =>
        new Promise<T>((resolve, reject) => {
          this.roundTrips++;
          this.waiting.push((line) => {
            const answer = JSON.parse(line) as { return?: T; error?: { desc: string } };
            if (answer.error) reject(new Error(answer.error.desc));
            else resolve(answer.return as T);
          });
          this.socket.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
        }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  override close(): void {
    this.socket.destroy();
  }
}

export async function startHostQemuGa(): Promise<HostQemuGa> {
  const dir = await mkdtemp(join(tmpdir(), 'vmwarden-qga-'));
  const path = join(dir, 'qga.sock');
  const child: ChildProcess = spawn(
    '/usr/sbin/qemu-ga',
    ['--method', 'unix-listen', '--path', path, '--statedir', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const socket = await waitFor(
    'qemu-ga listening',
    () =>
      new Promise<Socket | false>((resolve) => {
        if (child.exitCode !== null) throw new Error(`qemu-ga exited: ${stderr}`);
        const s = createConnection(path);
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(false));
      }),
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  const agent = new SocketGuestAgent(socket);
  return {
    agent,
    dir,
    async stop() {
      agent.close();
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
