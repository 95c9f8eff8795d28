// One look into a running guest per tick: its boot id (a reboot means trust is installed again),
// new sshd journal lines (logins) and which session processes still live (logouts).
import { shellQuote } from '../shell.js';
import type { Guest, GuestTrustContext } from './guest.js';
import { contentKey, installFull } from './install.js';
import { killSessions } from './krl-update.js';
import { endGone, endSession, lost, readJournal } from './sessions.js';

export async function poll(ctx: GuestTrustContext, g: Guest): Promise<void> {
  const pids = [...g.sessions.keys()];
  const journal = g.cursor ? `--after-cursor=${shellQuote(g.cursor)}` : '-b';
  const out = await g.channel.sh(
    `cat /proc/sys/kernel/random/boot_id; echo ---; ` +
      `journalctl -u ssh.service -o short-unix --no-pager --show-cursor ${journal} 2>/dev/null || true; echo ---; ` +
      `for p in ${pids.join(' ')}; do [ -d /proc/$p ] && echo $p; done; true`,
  );
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
