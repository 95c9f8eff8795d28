// Domain lifecycle events. The @unraid/libvirt binding has no event API, so libvirt's own client
// streams them: `virsh event --loop --event lifecycle`, one line per event.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LifecycleEvent {
  name: string;
  /** Started | Stopped | Shutdown | Suspended | Resumed | Defined | Undefined | … */
  event: string;
  detail: string;
}

const LINE = /^event 'lifecycle' for domain '(.*)': (\S+)(?: (.*))?$/;

/** `event 'lifecycle' for domain 'vm1': Stopped Destroyed` → { name, event, detail }. */
export function parseLifecycleLine(line: string): LifecycleEvent | undefined {
  const m = LINE.exec(line.trim());
  return m ? { name: m[1]!, event: m[2]!, detail: m[3] ?? '' } : undefined;
}

/** Follows lifecycle events of `uri` until stop(); restarts virsh when it exits (e.g. libvirtd restarted). */
export class LifecycleEvents {
  private child?: ChildProcess;
  private stopped = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly uri: string,
    private readonly onEvent: (e: LifecycleEvent) => void,
    /** Called when the stream is started again after it ended: events may have been missed. */
    private readonly onGap?: () => void,
  ) {}

  start(): void {
    if (this.uri.startsWith('test:')) return; // the test driver's state is per connection: nothing to follow
    this.spawn();
  }

  private spawn(): void {
    if (this.stopped) return;
    const child = spawn('virsh', ['-q', '-c', this.uri, 'event', '--loop', '--event', 'lifecycle'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = parseLifecycleLine(line);
      if (e) this.onEvent(e);
    });
    child.on('error', () => undefined);
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      if (!this.stopped) {
        this.onGap?.();
        this.retry = setTimeout(() => this.spawn(), 1000);
      }
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}
