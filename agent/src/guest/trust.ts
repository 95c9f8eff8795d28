import { sshFingerprint } from '../../../lib/ssh/fingerprint.js';
import type { GuestChannel } from './channel.js';
import { shellQuote } from '../shell.js';
import { krlUpdateScript } from './krl-update.js';

export const GUEST_DIR = '/etc/ssh/vmwarden';
export const CA_KEYS_FILE = `${GUEST_DIR}/trusted_user_ca_keys`;
export const KRL_FILE = `${GUEST_DIR}/revoked_keys`;
export const PRINCIPALS_DIR = `${GUEST_DIR}/principals`;
export const DROP_IN = '/etc/ssh/sshd_config.d/vmwarden.conf';

export const sshdDropIn = () =>
  [
    '# Managed by vmwarden-agent: SSH certificate access (do not edit).',
    `TrustedUserCAKeys ${CA_KEYS_FILE}`,
    `RevokedKeys ${KRL_FILE}`,
    `AuthorizedPrincipalsFile ${PRINCIPALS_DIR}/%u`,
    'ExposeAuthInfo yes',
    'LogLevel VERBOSE',
    '',
  ].join('\n');

/** OpenSSH's SHA256:… fingerprint of an authorized_keys-style public key line. */
export function fingerprintOf(publicKey: string): string {
  return sshFingerprint(Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64'));
}

export interface TrustContent {
  caKeys: string[];
  krl: Buffer;
  loginUser: string;
  principal: string;
}

const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Installs the fleet's SSH trust inside one guest (qemu guest agent or SSH), idempotently:
 * trusted CA keys, the KRL, the login user's AuthorizedPrincipalsFile (its instance principal) and
 * the sshd drop-in. Files go to temporary names, get their modes, then are renamed over the old
 * ones; sshd is reloaded only when its configuration changed (the KRL is read at each login).
 */
export class TrustInstaller {
  constructor(private readonly guest: GuestChannel) {}

  /** Everything; returns whether sshd was reloaded. */
  async install(t: TrustContent): Promise<{ reloaded: boolean }> {
    if (!USER_RE.test(t.loginUser)) throw new Error(`invalid login user ${t.loginUser}`);
    const tmp = `.vmwarden-${process.pid}-${Date.now()}`;
    await this.guest.sh(
      `mkdir -p ${PRINCIPALS_DIR} && chmod 0755 ${GUEST_DIR} ${PRINCIPALS_DIR} && ` +
        // Leftovers of an interrupted install.
        `rm -f ${DROP_IN}.vmwarden-* ${GUEST_DIR}/*.vmwarden-* ${PRINCIPALS_DIR}/*.vmwarden-*`,
    );
    const files: Array<[string, Buffer]> = [
      [CA_KEYS_FILE, Buffer.from(t.caKeys.map((k) => k.trim()).join('\n') + '\n')],
      [KRL_FILE, t.krl],
      [`${PRINCIPALS_DIR}/${t.loginUser}`, Buffer.from(`${t.principal}\n`)],
      [DROP_IN, Buffer.from(sshdDropIn())],
    ];
    for (const [path, data] of files) await this.guest.writeFile(path + tmp, data);
    const u = t.loginUser;
    const script = `set -e
id -u ${u} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash ${u}
passwd -l ${u} >/dev/null 2>&1 || true
changed=0
for f in ${files.map(([p]) => shellQuote(p)).join(' ')}; do
  chown root:root "$f${tmp}"; chmod 0644 "$f${tmp}"
  case "$f" in ${KRL_FILE}) ;; *) cmp -s "$f${tmp}" "$f" || changed=1 ;; esac
  mv -f "$f${tmp}" "$f"
done
# Only this user's principals file stays: another login user must not keep an old grant.
for f in ${PRINCIPALS_DIR}/*; do [ "$f" = ${shellQuote(`${PRINCIPALS_DIR}/${u}`)} ] || rm -f "$f"; done
if [ $changed = 1 ] || ! systemctl is-active -q ssh.service; then
  /usr/sbin/sshd -t
  systemctl reload-or-restart ssh.service
  sleep 0.3
  for i in $(seq 100); do ss -Hltn 'sport = :22' | grep -q . && break; sleep 0.1; done
  echo reloaded
fi
`;
    const out = await this.guest.sh(script, 60_000);
    return { reloaded: /reloaded/.test(out) };
  }

  /**
   * The fast path on revocation, one guest-exec: the new KRL (on stdin) written and checked under a
   * temporary name, renamed over the old one (sshd reads it at each login: no reload), then the given
   * sessions killed (see krl-update.ts).
   */
  async updateKrl(krl: Buffer, killPids: number[] = []): Promise<{ roundTrips: number }> {
    const script = krlUpdateScript(KRL_FILE, krl, killPids, `${process.pid}-${Date.now()}`);
    const r = await this.guest.exec('/bin/sh', ['-c', script], { input: krl });
    if (r.exitCode !== 0) throw new Error(`KRL update failed in the guest: ${r.stderr.trim().slice(0, 300)}`);
    return { roundTrips: r.roundTrips ?? 1 };
  }
}
