// One look into a running guest per tick: its boot id (a reboot means trust is installed again),
// new sshd journal lines (logins) and which session processes still live (logouts).
import { shellQuote } from '../shell.js';
import type { Guest, GuestTrustContext } from './guest.js';
import { contentKey, installFull } from './install.js';
import { killSessions } from './krl-update.js';
import { endGone, endSession, lost, readJournal } from './sessions.js';

/** Touched by each poll just before it reads the journal (tmpfs: gone with a reboot). */
export const JOURNAL_STAMP = '/run/vmwarden-journal-read';
/** journald's active file, volatile or persistent (a glob for the guest's shell). */
const JOURNAL_FILES = '/run/log/journal/*/system.journal /var/log/journal/*/system.journal';

/**
 * What one poll runs in the guest: its boot id, the sshd journal lines after `cursor` and which of
 * `pids` still live. Under TCG `journalctl` costs ~300 ms of the guest's CPU, so it is skipped when
 * `mayskip` and the journal file was not modified since the previous poll touched the stamp (journald
 * bumps the file's mtime after each write; the stamp is touched before journalctl runs, so a line
 * written meanwhile makes the journal newer again). Shell builtins only, besides journalctl.
 */
export function pollScript(
  cursor: string | undefined,
  pids: number[],
  mayskip: boolean,
  files = { stamp: JOURNAL_STAMP, journals: JOURNAL_FILES },
): string {
  const journal = cursor ? `--after-cursor=${shellQuote(cursor)}` : '-b';
  const stamp = shellQuote(files.stamp);
  const read = `: > ${stamp}; journalctl -u ssh.service -o short-unix --no-pager --show-cursor ${journal} 2>/dev/null || true`;
  const skip = mayskip
    ? `j=; for f in ${files.journals}; do [ -f "$f" ] && j=$f; done
if [ -n "$j" ] && [ ${stamp} -nt "$j" ]; then :; else ${read}; fi`
    : read;
  return `read -r b < /proc/sys/kernel/random/boot_id; echo "$b"; echo ---
${skip}
echo ---
for p in ${pids.map((p) => Math.trunc(p)).join(' ')}; do [ -d /proc/$p ] && echo $p; done; true`;
}

export async function poll(ctx: GuestTrustContext, g: Guest): Promise<void> {
  const pids = [...g.sessions.keys()];
  const mayskip = g.cursor !== undefined && g.journalRead === true;
  g.journalRead = false; // until this poll's lines are read
  const out = await g.channel.sh(pollScript(g.cursor, pids, mayskip));
  const [bootPart = '', journalPart = '', alivePart = ''] = out.split(/^---$/m);
  const bootId = bootPart.trim();
  if (g.bootId !== bootId) {
    if (g.bootId !== undefined) await lost(ctx, g, 'reboot');
    g.bootId = bootId;
    g.cursor = undefined;
    g.installed = undefined;
    // The journal of this boot is read from its start at the next poll.
    await installFull(ctx, g);
    return;
  }
  if (g.installed !== contentKey(g, ctx.bundle()!)) await installFull(ctx, g);
  const alive = new Set(alivePart.split('\n').filter(Boolean).map(Number));
  await readJournal(ctx, g, journalPart, alive);
  g.journalRead = true;
  await endGone(ctx, g, pids, alive);
  await killRevoked(ctx, g);
}

/**
 * A login read from the journal only after its certificate was revoked (it logged in between two
 * polls and the push did not know it): killed now.
 */
async function killRevoked(ctx: GuestTrustContext, g: Guest): Promise<void> {
  const revoked = new Set(ctx.bundle()?.revokedSerials.map(String) ?? []);
  const late = [...g.sessions.values()].filter((s) => revoked.has(s.serial) && !s.killed);
  if (!late.length) return;
  await g.channel.sh(killSessions(late.map((s) => s.pid)));
  for (const s of late) {
    s.killed = true;
    void endSession(ctx, g, s, 'revoked');
  }
}
