// Trust content in a guest: the full install (CA keys, login user, principal, KRL), and a pushed
// bundle applied to a guest (the KRL alone when nothing else changed, then the revoked sessions ended).
import { createHash } from 'node:crypto';
import type { TrustBundleMsg } from '../../../proto/messages.js';
import { failed } from './failover.js';
import { serial, type Guest, type GuestTrustContext } from './guest.js';
import { endSession } from './sessions.js';
import { killSessions } from './krl-update.js';
import { fingerprintOf } from './trust.js';
import { instancePrincipal } from '../../../lib/ssh/identity.js';

/** What a full install put in a guest: when it changes, the guest gets a full install again. */
export function contentKey(g: Guest, b: TrustBundleMsg): string {
  return createHash('sha256')
    .update(JSON.stringify([b.trustedCaKeys, b.loginUser, g.serverId]))
    .digest('hex');
}

export async function installFull(ctx: GuestTrustContext, g: Guest): Promise<void> {
  const b = ctx.bundle();
  if (!b) return;
  try {
    await g.installer.install({
      caKeys: b.trustedCaKeys,
      krl: Buffer.from(b.krl),
      loginUser: b.loginUser,
      principal: instancePrincipal(g.serverId),
    });
    g.installed = contentKey(g, b);
    installedOk(ctx, g, b);
  } catch (err) {
    failed(ctx, g, err);
  }
}

function installedOk(ctx: GuestTrustContext, g: Guest, b: TrustBundleMsg): void {
  if (g.status.state !== 'installed')
    ctx.opts.log?.(`guest ${g.name}: trust installed through ${g.channel.transport}`);
  g.retryAt = undefined;
  g.krlVersion = String(b.krlVersion);
  g.status = {
    serverId: g.serverId,
    state: 'installed',
    caFingerprints: b.trustedCaKeys.map(fingerprintOf),
    krlVersion: String(b.krlVersion),
    lastSuccess: new Date().toISOString(),
    lastError: '',
    loginUser: b.loginUser,
    transport: g.channel.transport,
  };
}

/**
 * A bundle pushed by the controller, into one guest with trust installed: the KRL goes in now, the
 * sessions of revoked certificates are ended. Returns how many sessions were ended, and the round
 * trips into the guest the fast path took (0 on the full install).
 */
export async function pushBundle(
  ctx: GuestTrustContext,
  g: Guest,
  bundle: TrustBundleMsg,
  revoked: Set<string>,
): Promise<{ sessionsEnded: number; roundTrips: number }> {
  const kill = [...g.sessions.values()].filter((s) => revoked.has(s.serial) && !s.killed);
  const pids = kill.map((s) => s.pid);
  let roundTrips = 0;
  if (g.installed === contentKey(g, bundle)) {
    // Fast path, not queued behind a poll: the KRL renamed into place, then the kills.
    ({ roundTrips } = await g.installer.updateKrl(Buffer.from(bundle.krl), pids));
    installedOk(ctx, g, bundle);
    // An install already under way may write an older KRL after us: checked once it is done.
    void serial(g, async () => {
      const b = ctx.bundle()!;
      if (g.installed === undefined || g.krlVersion === String(b.krlVersion)) return;
      await g.installer.updateKrl(Buffer.from(b.krl));
      installedOk(ctx, g, b);
    }).catch((err) => failed(ctx, g, err));
  } else {
    await serial(g, async () => {
      await installFull(ctx, g);
      if (pids.length) await g.channel.sh(killSessions(pids));
    });
  }
  for (const s of kill) {
    s.killed = true;
    // Reported after answering the push (the controller ended it already on revocation).
    void endSession(ctx, g, s, 'revoked');
  }
  return { sessionsEnded: kill.length, roundTrips };
}
