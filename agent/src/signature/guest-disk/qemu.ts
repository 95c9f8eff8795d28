// The QEMU tools the guest-content digest of a qcow2 disk uses: `qemu-img info` (virtual size,
// persistent bitmaps), `qemu-img bitmap` (the seal bitmap), `qemu-nbd -r` (the guest-visible
// content, with the dirty bitmap exported as a metadata context) and `nbdinfo --map` (extents).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface QemuTools {
  qemuImg: string;
  qemuNbd: string;
  nbdinfo: string;
}

export const defaultQemuTools: QemuTools = { qemuImg: 'qemu-img', qemuNbd: 'qemu-nbd', nbdinfo: 'nbdinfo' };

export interface BitmapInfo {
  name: string;
  /** 'auto' = enabled (follows writes); 'in-use' = not stored cleanly (QEMU running or crashed). */
  flags: string[];
  granularity: number;
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
  bitmaps: BitmapInfo[];
  /** What makes the guest content more than this one file: a backing file, an external data file. */
  backingFile?: string;
  dataFile?: string;
  encrypted: boolean;
}

export function toolError(what: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException & { stderr?: string };
  const msg = (err.stderr || err.message || String(e)).trim().split('\n').pop() ?? '';
  return new Error(`${what}: ${msg}`, { cause: e });
}

export async function imageInfo(path: string, format: string, tools = defaultQemuTools): Promise<ImageInfo> {
  let stdout: string;
  try {
    ({ stdout } = await execFileP(tools.qemuImg, ['info', '--output=json', '-U', '-f', format, path], {
      timeout: 20_000,
      maxBuffer: 16 * 1024 * 1024,
    }));
  } catch (e) {
    throw toolError(`qemu-img info ${path}`, e);
  }
  const j = JSON.parse(stdout) as {
    format: string;
    'virtual-size': number;
    'backing-filename'?: string;
    encrypted?: boolean;
    'format-specific'?: { data?: { bitmaps?: BitmapInfo[]; 'data-file'?: string; encrypt?: unknown } };
  };
  const data = j['format-specific']?.data;
  return {
    format: j.format,
    virtualSize: j['virtual-size'],
    bitmaps: data?.bitmaps ?? [],
    ...(j['backing-filename'] ? { backingFile: j['backing-filename'] } : {}),
    ...(data?.['data-file'] ? { dataFile: data['data-file'] } : {}),
    encrypted: j.encrypted === true || data?.encrypt !== undefined,
  };
}

export type BitmapState = 'ok' | 'missing' | 'disabled' | 'inconsistent';

/** Trustworthy only when present, enabled ('auto') and stored cleanly (no 'in-use'). */
export function bitmapState(info: ImageInfo, name: string): BitmapState {
  const b = info.bitmaps.find((x) => x.name === name);
  if (!b) return 'missing';
  if (b.flags.includes('in-use')) return 'inconsistent';
  if (!b.flags.includes('auto')) return 'disabled';
  return 'ok';
}

/**
 * Leaves the bitmap present, enabled and empty: cleared in place (one qemu-img run) when it is
 * usable, else removed if present (missing, or inconsistent after a crash) and added again.
 * The image must not be in use.
 */
export async function resetBitmap(path: string, format: string, name: string, tools = defaultQemuTools) {
  const bitmap = (...ops: string[]) =>
    execFileP(tools.qemuImg, ['bitmap', ...ops, '-f', format, path, name], { timeout: 30_000 });
  try {
    await bitmap('--clear', '--enable');
    return;
  } catch {
    /* missing or inconsistent: below */
  }
  const info = await imageInfo(path, format, tools);
  try {
    if (info.bitmaps.some((b) => b.name === name)) await bitmap('--remove');
    await bitmap('--add', '--enable');
  } catch (e) {
    throw toolError(`qemu-img bitmap ${path}`, e);
  }
}

export interface Extent {
  offset: number;
  length: number;
  type: number;
}

/** Servers still running: ended with the agent, even when it exits without stopping them. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A read-only `qemu-nbd` export of an image on a private unix socket; stop() ends it. */
export class NbdExport {
  private constructor(
    readonly socket: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly tools: QemuTools,
  ) {}

  static async start(
    path: string,
    format: string,
    opts: { bitmap?: string; tools?: QemuTools } = {},
  ): Promise<NbdExport> {
    const tools = opts.tools ?? defaultQemuTools;
    const dir = mkdtempSync(join(tmpdir(), 'vmwarden-nbd-'));
    const socket = join(dir, 'nbd.sock');
    const args = ['-r', '-f', format, '-k', socket, '-t', '-e', '4'];
    if (opts.bitmap) args.push('-B', opts.bitmap);
    args.push(path);
    const child = spawn(tools.qemuNbd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.stderr!.on('error', () => undefined); // a stdio socket reset when the server dies
    let exited: string | undefined;
    child.on('error', (e) => (exited ??= e.message));
    child.on('exit', (code, signal) => (exited ??= stderr.trim() || `exited (${code ?? signal})`));
    // The socket appears once the image is open and the server listens.
    const deadline = Date.now() + 30_000;
    while (!existsSync(socket)) {
      if (exited !== undefined || Date.now() > deadline) {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        const last = (exited ?? 'timed out').split('\n').pop();
        throw new Error(`qemu-nbd ${path}: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const server = new NbdExport(socket, dir, child, tools);
    child.once('exit', () => (server.exitMessage = exited));
    return server;
  }

  /** Why the server ended on its own (it may bind its socket before it opens the image). */
  exitMessage?: string;

  /** An error naming the server's own failure when it has ended, else `e`. */
  async explain(e: unknown, path: string): Promise<Error> {
    if (this.exitMessage === undefined) await new Promise((r) => setTimeout(r, 100));
    if (this.exitMessage === undefined) return e as Error;
    return new Error(`qemu-nbd ${path}: ${this.exitMessage.trim().split('\n').join(' ')}`);
  }

  get uri(): string {
    return `nbd+unix:///?socket=${this.socket}`;
  }

  /** Extents of a metadata context ('base:allocation', 'qemu:dirty-bitmap:NAME'). */
  async map(context: string): Promise<Extent[]> {
    let stdout: string;
    try {
      ({ stdout } = await execFileP(this.tools.nbdinfo, [`--map=${context}`, '--json', this.uri], {
        timeout: 60_000,
        maxBuffer: 256 * 1024 * 1024,
      }));
    } catch (e) {
      throw toolError(`nbdinfo --map=${context}`, e);
    }
    const out = JSON.parse(stdout) as Extent[];
    if (!Array.isArray(out)) throw new Error(`nbdinfo --map=${context}: unexpected output`);
    return out;
  }

  /**
   * Ends the server and waits for it to exit (it holds the image's lock until then). qemu-nbd loses
   * a SIGTERM that arrives before its main loop runs, so SIGKILL follows: the export is read-only.
   */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
