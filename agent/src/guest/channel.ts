/** The outcome of a program run inside a guest. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Requests into the guest it took (guest agent: guest-exec plus each guest-exec-status). */
  roundTrips?: number;
}

export interface ExecOptions {
  /** Given to the program on its stdin. */
  input?: Buffer;
  timeoutMs?: number;
  /** Expected to end within a few hundred ms (the revocation path): its end is asked for more often. */
  quick?: boolean;
}

/**
 * A way into one guest as root: the qemu guest agent, or SSH with a provisioning key when the guest
 * has no agent. The trust installer and the session watcher only need these three operations.
 */
export interface GuestChannel {
  readonly transport: 'guest-agent' | 'ssh';
  /** Runs a program in the guest and waits for it. */
  exec(path: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** A shell script run by /bin/sh in the guest; fails when it exits non-zero. */
  sh(script: string, timeoutMs?: number): Promise<string>;
  /** Writes a file in the guest (created or truncated; modes are set by the caller). */
  writeFile(path: string, data: Buffer): Promise<void>;
  /**
   * Replaces the content of an EXISTING file (never creates one: its owner and mode stay) without
   * starting a program; `written` false when the file is not there or does not hold exactly `data`
   * afterwards. Only where that costs no program (the guest agent).
   */
  overwriteFile?(path: string, data: Buffer): Promise<{ written: boolean; roundTrips: number }>;
  /** Releases a connection held open, if any. */
  close(): void;
}

/** `sh` on top of `exec`: the script's stdout, or an error carrying its exit code and stderr. */
export async function runShell(channel: GuestChannel, script: string, timeoutMs?: number): Promise<string> {
  const r = await channel.exec('/bin/sh', ['-c', script], { timeoutMs });
  if (r.exitCode !== 0) {
    throw new Error(`guest command failed (${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  }
  return r.stdout;
}
