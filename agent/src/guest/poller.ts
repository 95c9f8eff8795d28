// One look into a running guest per tick: its boot id (a reboot means trust is installed again),
// new sshd journal lines (logins) and which session processes still live (logouts).
import { shellQuote } from '../shell.js';
import type { Guest, GuestTrustContext } from './guest.js';
import { contentKey, installFull } from './install.js';
import { endGone, lost, readJournal } from './sessions.js';

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
}
