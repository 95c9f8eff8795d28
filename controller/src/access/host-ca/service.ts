import type { Clock } from '../../../../lib/platform/clock.js';
import type { Database } from '../../../../lib/store/database.js';
import { badRequest, forbidden } from '../../platform/errors.js';
import { pooledRandomBytes, uuidv7 } from '../../platform/random.js';
import type { Inventory } from '../../inventory/service.js';
import type { Node } from '../../nodes/model.js';
import type { SshAuthority } from '../authority.js';
import type { SshCaRecord } from '../model.js';
import { signUserCertificate } from '../sshca/certificate.js';
import { KeyRejectedError, parseUserPublicKey, type CaKeyType } from '../sshca/keys.js';
import type { HostCaStore, HostCertificateRecord } from './store.js';

const CHANNEL = 'host_ca';
/** What the known_hosts line names the CA (its comment). */
export const KNOWN_HOSTS_COMMENT = 'vmwarden-host-ca';
/** Host certificates are valid from a little before signing: guests' clocks may be behind. */
const BACKDATE_MS = 5 * 60_000;
export const MIN_TTL_SECONDS = 60;
export const MAX_TTL_SECONDS = 366 * 86_400;
/** sshd accepts up to 32 host keys; a guest has 3 or 4. */
export const MAX_HOST_KEYS = 16;
export const MAX_PRINCIPALS = 64;
/** Host principals are host names or addresses: no spaces, commas or wildcard characters. */
const PRINCIPAL = /^[^\s,*?!\u0000-\u001f\u007f]{1,255}$/;

export interface SignedHostCertificate {
  id: string;
  certificate: string;
  serial: bigint;
  validBefore: string;
}

/**
 * The fleet's SSH host CA: signs guests' sshd host keys so that clients trust them through one
 * `@cert-authority` known_hosts line instead of on first use. Its keys live like the user CA's
 * (SshAuthority: sealed in the database, rotate / retire); a rotation or retirement here is
 * announced to the other controllers (NOTIFY), which reload, and every `syncMs` anyway.
 */
export class HostCertificates {
  private timer?: NodeJS.Timeout;
  private unlisten?: () => void;

  constructor(
    readonly authority: SshAuthority,
    private readonly store: HostCaStore,
    private readonly inventory: Inventory,
    private readonly db: Pick<Database, 'listen' | 'notify'>,
    private readonly clock: Clock,
    private readonly lifetimeSeconds: number,
    private readonly syncMs = 5_000,
    private readonly log: (msg: string, err?: unknown) => void = () => undefined,
  ) {}

  start(): void {
    const reload = () => void this.authority.reload().catch((err) => this.log('host CA reload failed', err));
    this.unlisten = this.db.listen(CHANNEL, reload);
    this.timer = setInterval(reload, this.syncMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unlisten?.();
  }

  /** Every key clients should trust (active and trusted, newest first). */
  trusted(): SshCaRecord[] {
    return this.authority.trusted().map(({ key: _, ...record }) => record);
  }

  /** known_hosts lines: one `@cert-authority *` line per trusted key. */
  knownHosts(): string {
    return this.trusted()
      .map((ca) => `@cert-authority * ${keyOnly(ca.publicKey)} ${KNOWN_HOSTS_COMMENT}\n`)
      .join('');
  }

  async rotate(keyType?: CaKeyType): Promise<SshCaRecord> {
    const ca = await this.authority.rotate(keyType);
    await this.announce();
    return ca;
  }

  async retire(id: number): Promise<void> {
    await this.authority.retire(id);
    await this.announce();
  }

  /** An admin's host certificate for a host outside libvirt: the principals it asks for. */
  async signForHost(
    publicKey: string,
    principals: string[],
    ttlSeconds: number = this.lifetimeSeconds,
  ): Promise<SignedHostCertificate> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < MIN_TTL_SECONDS || ttlSeconds > MAX_TTL_SECONDS)
      throw badRequest(
        'INVALID_TTL',
        `ttl_seconds must be a whole number between ${MIN_TTL_SECONDS} and ${MAX_TTL_SECONDS}, got ${ttlSeconds}`,
      );
    if (principals.length === 0 || principals.length > MAX_PRINCIPALS)
      throw badRequest(
        'INVALID_PRINCIPALS',
        `principals: give 1 to ${MAX_PRINCIPALS} host names or addresses`,
      );
    for (const p of principals)
      if (typeof p !== 'string' || !PRINCIPAL.test(p))
        throw badRequest(
          'INVALID_PRINCIPALS',
          `principals: ${JSON.stringify(String(p).slice(0, 40))} is not a host name or address`,
        );
    const [cert] = await this.sign([hostKey(publicKey, 'public_key')], [...new Set(principals)], ttlSeconds, {
      serverId: null,
      nodeId: null,
      keyId: `vmwarden-host ${principals[0]}`,
    });
    return cert!;
  }

  /**
   * Host certificates for the keys of an instance, asked for by the agent of the node that hosts it.
   * The principals are the controller's (the instance's name, UUID and address), never the agent's.
   */
  async signForInstance(
    node: Node,
    serverId: string,
    publicKeys: string[],
  ): Promise<{ certificates: string[]; principals: string[]; validBefore: string }> {
    const instance = await this.inventory.get(serverId).catch(() => undefined);
    if (!instance || instance.nodeId !== node.id)
      throw forbidden(`instance ${serverId} is not hosted by node ${node.id}`);
    if (publicKeys.length === 0 || publicKeys.length > MAX_HOST_KEYS)
      throw badRequest('INVALID_KEYS', `public_keys: give 1 to ${MAX_HOST_KEYS} host keys`);
    const keys = publicKeys.map((k, i) => hostKey(k, `public_keys[${i}]`));
    const principals = [
      ...new Set([instance.instanceName, instance.serverId, instance.ipAddress].filter(Boolean)),
    ];
    const certs = await this.sign(keys, principals, this.lifetimeSeconds, {
      serverId: instance.serverId,
      nodeId: node.id,
      keyId: `vmwarden-host ${instance.serverId}`,
    });
    return {
      certificates: certs.map((c) => c.certificate),
      principals,
      validBefore: certs[0]!.validBefore,
    };
  }

  private async sign(
    keys: Array<{ blob: Buffer; fingerprint: string }>,
    principals: string[],
    ttlSeconds: number,
    who: { serverId: string | null; nodeId: number | null; keyId: string },
  ): Promise<SignedHostCertificate[]> {
    const now = this.clock.now();
    const validBefore = new Date(now.getTime() + ttlSeconds * 1000);
    const ca = this.authority.active();
    const records: HostCertificateRecord[] = [];
    const out: SignedHostCertificate[] = [];
    for (const key of keys) {
      const id = uuidv7();
      const serial = randomSerial();
      const signed = signUserCertificate(ca.key, {
        kind: 'host',
        publicKey: key.blob,
        serial,
        keyId: who.keyId,
        principals,
        validAfter: new Date(now.getTime() - BACKDATE_MS),
        validBefore,
        comment: who.keyId.replace(/\s+/g, '-'),
      });
      records.push({
        id,
        serial,
        serverId: who.serverId,
        nodeId: who.nodeId,
        principals,
        publicKeyFingerprint: key.fingerprint,
        caId: ca.id,
        validBefore: validBefore.toISOString(),
        issuedAt: now.toISOString(),
      });
      out.push({ id, certificate: signed.line, serial, validBefore: validBefore.toISOString() });
    }
    await this.store.insertCertificates(records);
    return out;
  }

  private async announce(): Promise<void> {
    await this.db.notify(CHANNEL).catch((err) => this.log('host CA announce failed', err));
  }
}

const keyOnly = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');

function hostKey(text: string, field: string) {
  try {
    return parseUserPublicKey(text);
  } catch (err) {
    if (err instanceof KeyRejectedError) throw badRequest('INVALID_KEY', `${field} rejected: ${err.reason}`);
    throw err;
  }
}

function randomSerial(): bigint {
  let serial = 0n;
  while (serial === 0n) serial = pooledRandomBytes(8).readBigUInt64BE();
  return serial;
}
