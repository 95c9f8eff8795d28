import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { sshFingerprint } from '../../../lib/ssh/fingerprint.js';

export class HostKeyMismatchError extends Error {}

/**
 * SSH host keys of guests reached over the fallback transport, pinned by instance UUID (addresses
 * change, the guest's disk and host key do not): the configured fingerprint if there is one, else
 * the key seen at the first connection (trust on first use), kept in a file of the agent's state.
 */
export class HostKeyPins {
  private pins: Record<string, string>;

  constructor(private readonly file: string) {
    try {
      this.pins = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    } catch {
      this.pins = {};
    }
  }

  /** Throws HostKeyMismatchError unless the key is the pinned (or configured) one; pins it if new. */
  check(serverId: string, blob: Buffer, configured?: string): void {
    const seen = sshFingerprint(blob);
    const expected = configured ?? this.pins[serverId];
    if (expected === undefined) {
      this.pins[serverId] = seen;
      const tmp = `${this.file}.tmp-${process.pid}`;
      writeFileSync(tmp, JSON.stringify(this.pins, null, 2) + '\n', { mode: 0o600 });
      renameSync(tmp, this.file);
      return;
    }
    if (expected !== seen) {
      throw new HostKeyMismatchError(
        `SSH host key of instance ${serverId} is ${seen}, expected ${expected}` +
          (configured
            ? ' (configured hostKey)'
            : ` (pinned in ${this.file}; remove it there if the guest was reinstalled)`),
      );
    }
  }
}
