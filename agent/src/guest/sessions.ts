// Certificate logins and logouts in a guest: read from its sshd journal, reported to the controller.
import type { Guest, GuestTrustContext, LiveSession } from './guest.js';

import { decodeKeyId } from '../../../lib/ssh/identity.js';
/** sshd (LogLevel VERBOSE) on a certificate login. */
const ACCEPTED =
  /sshd\[(\d+)\]: Accepted publickey for (\S+) from (\S+) port \d+ \S+: \S+ \S+ ID (.*) \(serial (\d+)\) CA /;

export function parseAccepted(line: string) {
  const m = ACCEPTED.exec(line);
  if (!m) return undefined;
  const { certificateId } = decodeKeyId(m[4]!);
  return { pid: Number(m[1]), user: m[2]!, sourceIp: m[3]!, keyId: m[4]!, serial: m[5]!, certificateId };
}

/**
 * New sshd journal lines of a guest: moves its cursor on and reports each new certificate login.
 * Login processes found are added to `alive`.
 */
export async function readJournal(
  ctx: GuestTrustContext,
  g: Guest,
  journal: string,
  alive: Set<number>,
): Promise<void> {
  for (const line of journal.split('\n')) {
    const cursor = /^-- cursor: (.*)$/.exec(line);
    if (cursor) {
      g.cursor = cursor[1]!;
      continue;
    }
    const a = parseAccepted(line);
    if (!a || g.sessions.has(a.pid) || !a.certificateId) continue;
    alive.add(a.pid);
    const sessionId = await ctx
      .link()
      .reportSession({
        serverId: g.serverId,
        event: 'start',
        certificateId: a.certificateId,
        serial: a.serial,
        sourceIp: a.sourceIp,
        sessionId: '',
        reason: '',
      })
      .catch((err) => {
        ctx.opts.log?.('session start report failed', err);
        return '';
      });
    g.sessions.set(a.pid, { pid: a.pid, sessionId, certificateId: a.certificateId, serial: a.serial });
  }
}

export async function endSession(
  ctx: GuestTrustContext,
  g: Guest,
  s: LiveSession,
  reason: string,
): Promise<void> {
  if (!g.sessions.delete(s.pid)) return;
  if (!s.sessionId) return;
  await ctx
    .link()
    .reportSession({
      serverId: g.serverId,
      event: 'end',
      certificateId: s.certificateId,
      serial: s.serial,
      sourceIp: '',
      sessionId: s.sessionId,
      reason,
    })
    .catch((err) => ctx.opts.log?.('session end report failed', err));
}

/** Sessions whose process was looked for (`checked`) and is gone: logged out (or ended on revocation). */
export async function endGone(
  ctx: GuestTrustContext,
  g: Guest,
  checked: number[],
  alive: Set<number>,
): Promise<void> {
  for (const s of [...g.sessions.values()]) {
    if (!checked.includes(s.pid) || alive.has(s.pid)) continue;
    await endSession(ctx, g, s, s.killed ? 'revoked' : 'logout');
  }
}

/** The guest stopped or rebooted: its sessions are over, and trust must be installed again. */
export async function lost(ctx: GuestTrustContext, g: Guest, reason: string): Promise<void> {
  for (const s of [...g.sessions.values()]) await endSession(ctx, g, s, reason);
  g.bootId = undefined;
  g.installed = undefined;
  g.cursor = undefined;
}
