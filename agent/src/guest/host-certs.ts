// Host certificates in guests (no trust on first use): the guest's sshd host public keys are read
// (one guest-exec), signed by the controller's host CA, and installed next to the keys with a
// HostCertificate line each in a drop-in of their own (one guest-exec; sshd reloaded only when a
// certificate or the drop-in changed). Renewed at 2/3 of their lifetime, and again when the name or
// the address the controller knows the instance by is no longer among their principals.
import type { Hypervisor } from '../libvirt/hypervisor.js';
import type { Guest, TrustLink } from './guest.js';

export const HOST_CERT_DROP_IN = '/etc/ssh/sshd_config.d/vmwarden-host-certs.conf';
const KEY_PUB = /^\/etc\/ssh\/ssh_host_[a-z0-9]+_key\.pub$/;
/** A public key or certificate line as written to a file by us: nothing a shell would interpret. */
const SAFE_LINE = /^[a-z0-9@.-]+ [A-Za-z0-9+/=]+( [A-Za-z0-9@._:-]+)?$/;
/** How often the instance's addresses are compared with the certificates' principals. */
const ADDRESS_CHECK_MS = 60_000;
/** After a failure (no host keys yet, instance not yet in the controller's inventory…), when to try again. */
const RETRY_MS = 15_000;

interface HostCertState {
  bootId?: string;
  principals: string[];
  renewAt: number;
  addressCheckAt: number;
  retryAt?: number;
}

export class HostCertKeeper {
  private readonly states = new Map<string, HostCertState>();

  constructor(
    private readonly hypervisor: Pick<Hypervisor, 'addresses'>,
    private readonly link: () => TrustLink,
    private readonly log: (msg: string, err?: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Called after each poll of a guest whose trust is installed: signs and installs its host
   * certificates when it has none from us yet (this boot), when they are due for renewal, or when
   * the instance's name or address moved. Failures are logged and retried 15 s later.
   */
  async keep(g: Guest, name: string): Promise<void> {
    const link = this.link();
    if (!link.signHostKeys || g.installed === undefined) return;
    const state = this.states.get(g.serverId);
    const now = this.now();
    if (state?.retryAt && now < state.retryAt) return;
    if (state && state.bootId === g.bootId && now < state.renewAt) {
      // Did the instance's name or address move? Checked once a minute: until the controller's
      // inventory has the new one, signing again would give the same principals.
      if (now < state.addressCheckAt) return;
      state.addressCheckAt = now + ADDRESS_CHECK_MS;
      // The controller keeps an instance's first address (as the agent reports them).
      const [address] = await this.hypervisor.addresses(g.serverId).catch(() => [] as string[]);
      if (state.principals.includes(name) && (!address || state.principals.includes(address))) return;
    }
    try {
      await this.renew(g, link);
    } catch (err) {
      this.log(`guest ${g.name}: host certificates not installed`, err);
      this.states.set(g.serverId, {
        ...(state ?? { principals: [], renewAt: 0, addressCheckAt: 0 }),
        retryAt: now + RETRY_MS,
      });
    }
  }

  private async renew(g: Guest, link: TrustLink): Promise<void> {
    const keys = parseHostKeys(
      await g.channel.sh(
        'for f in /etc/ssh/ssh_host_*_key.pub; do [ -f "$f" ] && [ -f "${f%.pub}" ] && { echo "$f"; head -n1 "$f"; }; done; true',
      ),
    );
    if (keys.length === 0) throw new Error('the guest has no sshd host keys in /etc/ssh');
    const signedAt = this.now();
    const signed = await link.signHostKeys!(
      g.serverId,
      keys.map((k) => k.line),
    );
    if (signed.certificates.length !== keys.length)
      throw new Error(
        `the controller returned ${signed.certificates.length} certificates for ${keys.length} keys`,
      );
    const files = keys.map((k, i) => {
      const cert = signed.certificates[i]!.trim();
      if (!SAFE_LINE.test(cert)) throw new Error('the controller returned a malformed certificate');
      return { path: k.path.replace(/\.pub$/, '-cert.pub'), lines: [cert] };
    });
    const dropIn = {
      path: HOST_CERT_DROP_IN,
      lines: [
        '# Managed by vmwarden-agent: host certificates signed by the vmwarden host CA (do not edit).',
        ...files.map((f) => `HostCertificate ${f.path}`),
      ],
    };
    const out = await g.channel.sh(installScript([...files, dropIn]), 60_000);
    const validBefore = Date.parse(signed.validBefore);
    const now = this.now();
    this.states.set(g.serverId, {
      bootId: g.bootId,
      principals: signed.principals,
      renewAt: signedAt + ((validBefore - signedAt) * 2) / 3,
      addressCheckAt: now + ADDRESS_CHECK_MS,
    });
    this.log(
      `guest ${g.name}: ${keys.length} host certificates for ${signed.principals.join(', ')} installed` +
        (/reloaded/.test(out) ? ', sshd reloaded' : ''),
    );
  }
}

/** `path\nkey line\n` pairs, as the read script prints them; anything unexpected is skipped. */
export function parseHostKeys(out: string): Array<{ path: string; line: string }> {
  const lines = out.split('\n').map((l) => l.trim());
  const keys: Array<{ path: string; line: string }> = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    const path = lines[i]!;
    const line = lines[i + 1]!.split(/\s+/).slice(0, 2).join(' ');
    if (KEY_PUB.test(path) && SAFE_LINE.test(line)) {
      keys.push({ path, line });
      i++;
    }
  }
  return keys;
}

/**
 * One guest-exec: every file to a temporary name, compared with the one in place and renamed over
 * it; when one changed, `sshd -t` (the drop-in is removed again if sshd refuses the configuration)
 * and a reload. Only paths and lines checked against KEY_PUB / SAFE_LINE get here.
 */
export function installScript(files: Array<{ path: string; lines: string[] }>): string {
  const tmp = `.vmwarden-${process.pid}-${Date.now()}`;
  const write = files.map(
    (f) =>
      `printf '%s\\n' ${f.lines.map((l) => `'${l}'`).join(' ')} > '${f.path}${tmp}'\n` +
      `chown root:root '${f.path}${tmp}'; chmod 0644 '${f.path}${tmp}'\n` +
      `cmp -s '${f.path}${tmp}' '${f.path}' || changed=1\n` +
      `mv -f '${f.path}${tmp}' '${f.path}'`,
  );
  return `set -e
changed=0
${write.join('\n')}
if [ $changed = 1 ]; then
  if ! /usr/sbin/sshd -t; then rm -f '${HOST_CERT_DROP_IN}'; echo 'sshd refused the host certificates' >&2; exit 1; fi
  systemctl reload-or-restart ssh.service
  echo reloaded
fi
`;
}
