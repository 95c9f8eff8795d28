import { sshFingerprint } from '../../../lib/ssh/fingerprint.js';
import type { GuestChannel } from './channel.js';
import { shellQuote } from '../shell.js';
import { krlSwapScript, krlUpdateScript } from './krl-update.js';

export const GUEST_DIR = '/etc/ssh/vmwarden';
export const CA_KEYS_FILE = `${GUEST_DIR}/trusted_user_ca_keys`;
export const KRL_FILE = `${GUEST_DIR}/revoked_keys`;
/** Where a new KRL is written before it is renamed over KRL_FILE (see krl-update.ts). */
export const KRL_STAGING_FILE = `${GUEST_DIR}/revoked_keys.next`;
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
  constructor(
    private readonly guest: GuestChannel,
    /** Where updateKrl writes (tests point it elsewhere). */
    private readonly krlPaths = { krl: KRL_FILE, staging: KRL_STAGING_FILE },
  ) {}

  /** Everything; returns whether sshd was reloaded. */
  async install(t: TrustContent): Promise<{ reloaded: boolean }> {
    if (!USER_RE.test(t.loginUser)) throw new Error(`invalid login user ${t.loginUser}`);
    const tmp = `.vmwarden-${process.pid}-${Date.now()}`;
    await this.guest.sh(
      `mkdir -p ${PRINCIPALS_DIR} && chmod 0755 ${GUEST_DIR} ${PRINCIPALS_DIR} && ` +
        // Leftovers of an interrupted install.
        `rm -f ${DROP_IN}.vmwarden-* ${GUEST_DIR}/*.vmwarden-* ${PRINCIPALS_DIR}/*.vmwarden-* && ` +
        // The staging file of KRL updates, created by this shell only (see krl-update.ts).
        `{ [ -e ${KRL_STAGING_FILE} ] || : > ${KRL_STAGING_FILE}; } && ` +
        `chown root:root ${KRL_STAGING_FILE} && chmod 0644 ${KRL_STAGING_FILE}`,
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
   * The fast path on revocation: the new KRL written by the guest agent into the staging file (no
   * program), then one guest-exec that kills the given sessions and renames it over the KRL (sshd
   * reads it at each login: no reload; see krl-update.ts). Without a staging file (the first update
   * after an install by an older agent) or on an SSH channel: the KRL as the script's stdin, checked
   * by its SHA-256 before the rename. One update at a time per guest: they share the staging file.
   */
  updateKrl(krl: Buffer, killPids: number[] = []): Promise<{ roundTrips: number; staged: boolean }> {
    const run = this.krlQueue.then(() => this.updateKrlNow(krl, killPids));
    this.krlQueue = run.catch(() => undefined);
    return run;
  }

  private krlQueue: Promise<unknown> = Promise.resolve();

  private async updateKrlNow(
    krl: Buffer,
    killPids: number[],
  ): Promise<{ roundTrips: number; staged: boolean }> {
    const { krl: target, staging } = this.krlPaths;
    const staged = krl.length > 0 ? await this.guest.overwriteFile?.(staging, krl) : undefined;
    const r = staged?.written
      ? await this.guest.exec('/bin/sh', ['-c', krlSwapScript(target, staging, killPids)], { quick: true })
      : await this.guest.exec(
          '/bin/sh',
          ['-c', krlUpdateScript(target, staging, krl, killPids, `${process.pid}-${Date.now()}`)],
          { input: krl, quick: true },
        );
    if (r.exitCode !== 0) throw new Error(`KRL update failed in the guest: ${r.stderr.trim().slice(0, 300)}`);
    return { roundTrips: (staged?.roundTrips ?? 0) + (r.roundTrips ?? 1), staged: !!staged?.written };
  }
}
