import { pooledRandomBytes, uuidv7 } from '../platform/random.js';
import type { Clock } from '../../../lib/platform/clock.js';
import { badRequest, forbidden, notFound, conflict } from '../platform/errors.js';
import type { Principal } from '../identity/model.js';
import type { IdentityStore } from '../identity/store.js';
import type { Inventory } from '../inventory/service.js';
import type { Instance } from '../inventory/model.js';
import { KeyRejectedError, parseUserPublicKey, type UserPublicKey } from './sshca/keys.js';
import { signUserCertificate } from './sshca/certificate.js';
import type { SshAuthority } from './authority.js';
import type { KrlPublisher } from './krl-publisher.js';
import { criticalOptions, ttlMinutes, type AccessPolicy } from './policy.js';
import type { CertificateQuery, CertificateRecord, SshCaRecord } from './model.js';
import type { AccessStore } from './store.js';
import type { Tx } from '../../../lib/store/database.js';
import { encodeKeyId, instancePrincipal } from '../../../lib/ssh/identity.js';
import type { Metrics } from '../ops/metrics.js';
import type { CaKeyType } from './sshca/keys.js';

export interface AccessRequest {
  sandbox_id: string;
  user_id?: string;
  public_key?: string;
  ssh_key_id?: string;
  ttl_minutes?: number;
}

export interface IssuedAccess {
  record: CertificateRecord;
  certificate: string;
  instance: Instance;
}

/** Looks up a registered key by id for an identity (the SSH key registry provides it). */
export type RegisteredKeyResolver = (identityId: string, keyId: string) => Promise<{ publicKey: string }>;

/** Issues, lists and revokes the short-lived SSH certificates that open exactly one instance. */
export class AccessService {
  resolveRegisteredKey?: RegisteredKeyResolver;

  constructor(
    private readonly store: AccessStore,
    private readonly authority: SshAuthority,
    private readonly krl: KrlPublisher,
    private readonly inventory: Inventory,
    private readonly identities: IdentityStore,
    private readonly policy: AccessPolicy,
    private readonly clock: Clock,
    private readonly counters?: Pick<Metrics, 'certificatesIssued' | 'certificatesRevoked'>,
  ) {}

  /** A new active CA key; the previous one stays trusted (published) until retired. */
  async rotateCa(keyType?: CaKeyType): Promise<SshCaRecord> {
    const ca = await this.authority.rotate(keyType);
    await this.krl.changed();
    return ca;
  }

  /** Stops trusting an old CA key (the active one cannot be retired). */
  async retireCa(id: number): Promise<void> {
    await this.authority.retire(id);
    await this.krl.changed();
  }

  /** Certificates in the store, by status (the /metrics gauge). */
  countByStatus(): Promise<Array<{ status: string; count: number }>> {
    return this.store.countCertificatesByStatus();
  }

  /** `audit` writes the audit row in the certificate's own transaction (no row, no certificate). */
  async request(
    caller: Principal,
    req: AccessRequest,
    callerIp: string,
    audit?: (tx: Tx, record: CertificateRecord) => unknown,
  ): Promise<IssuedAccess> {
    const userId = await this.requester(caller, req.user_id);
    if (this.locked.has(userId)) throw forbidden(`identity ${userId} is disabled or deleted`);
    // The inventory store keeps instances in memory (invalidated by its own writes): no I/O here.
    // sandbox_id: the server_id or the libvirt name (resolved by the inventory, as every route does).
    const instance = await this.inventory.resolve(req.sandbox_id);
    if (caller.identity.role !== 'admin') await this.inventory.getFor(caller, instance.serverId);
    if (instance.state !== 'running') {
      throw conflict(
        'INSTANCE_NOT_RUNNING',
        `instance ${instance.instanceName} is ${instance.state}, not running`,
      );
    }
    const ttl = ttlMinutes(this.policy, req.ttl_minutes);
    const userKey = await this.userKey(userId, req);

    const now = this.clock.now();
    const id = uuidv7();
    const serial = randomSerial();
    const validAfter = new Date(now.getTime() - 60_000);
    const validBefore = new Date(now.getTime() + ttl * 60_000);
    const principals = [instancePrincipal(instance.serverId)];
    const keyId = encodeKeyId({
      userId,
      instanceName: instance.instanceName,
      serverId: instance.serverId,
      certificateId: id,
    });
    const ca = this.authority.active();
    const signed = signUserCertificate(ca.key, {
      publicKey: userKey.blob,
      serial,
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions: criticalOptions(this.policy, callerIp),
      extensions: this.policy.extensions,
      comment: keyId,
    });
    const record: CertificateRecord = {
      id,
      serial,
      sandboxId: instance.serverId,
      userId,
      vmName: instance.instanceName,
      keyId,
      principals,
      publicKeyFingerprint: userKey.fingerprint,
      sshKeyId: req.ssh_key_id ?? null,
      caId: ca.id,
      validAfter: validAfter.toISOString(),
      validBefore: validBefore.toISOString(),
      issuedAt: now.toISOString(),
      status: 'ACTIVE',
      revokedAt: null,
      revokeReason: null,
    };
    // Committed before the certificate leaves: a certificate we cannot list is one we cannot revoke.
    await this.store.insertCertificate(record, audit && ((tx) => audit(tx, record)));
    if (this.locked.has(userId)) {
      // Disabled or deleted while this request was in flight, after the sweep saw no such certificate.
      await this.store.revokeCertificate(id, 'identity-locked', this.clock.now().toISOString());
      await this.krl.changed();
      throw forbidden(`identity ${userId} is disabled or deleted`);
    }
    this.counters?.certificatesIssued.inc();
    return { record, certificate: signed.line, instance };
  }

  private readonly parsedKeys = new Map<string, UserPublicKey>();

  async get(caller: Principal, id: string): Promise<CertificateRecord> {
    const cert = await this.store.getCertificate(id, this.clock.now().toISOString());
    if (!cert) throw notFound(`no certificate with id ${id}`);
    if (caller.identity.role !== 'admin' && cert.userId !== caller.identity.id) {
      throw forbidden(`certificate ${id} belongs to another identity`);
    }
    return cert;
  }

  async list(caller: Principal, query: CertificateQuery) {
    query = await resolveFilters(this.inventory, this.identities, query);
    if (caller.identity.role !== 'admin') {
      if (query.userId !== undefined && query.userId !== caller.identity.id) {
        throw forbidden('only admins can list certificates of other identities');
      }
      query = { ...query, userId: caller.identity.id };
    }
    return this.store.listCertificates(query, this.clock.now().toISOString());
  }

  /** Revokes: status, live sessions and the KRL change in one transaction; then listeners hear of it. */
  async revoke(
    caller: Principal,
    id: string,
    reason: string,
  ): Promise<{ endedSessions: string[]; krlVersion: number }> {
    const cert = await this.get(caller, id);
    if (cert.status === 'REVOKED')
      throw badRequest('ALREADY_REVOKED', `certificate ${id} is already revoked`);
    const result = await this.store.revokeCertificate(id, reason, this.clock.now().toISOString());
    if (!result.revoked) throw badRequest('ALREADY_REVOKED', `certificate ${id} is already revoked`);
    await this.krl.changed();
    this.counters?.certificatesRevoked.inc();
    return result;
  }

  /**
   * Identities disabled or deleted in this process: no certificate is issued to them, and one that a
   * request in flight committed after the sweep below is revoked at once (see request()).
   */
  private readonly locked = new Set<string>();

  /**
   * An identity was disabled or deleted: every certificate of it still valid is revoked, its live
   * sessions end, and the KRL moves (pushed to the agents, which kill the sessions in the guests):
   * the same path as DELETE /v1/access/certificate/{id}, in one transaction for all of them.
   * `audit` writes one row per certificate in that transaction. Idempotent.
   */
  async revokeAllOf(
    userId: string,
    reason: string,
    audit?: (tx: Tx, revoked: Array<{ id: string; serial: bigint }>) => unknown,
  ): Promise<{
    revoked: Array<{ id: string; serial: bigint }>;
    endedSessions: string[];
    krlVersion: number;
  }> {
    this.locked.add(userId);
    const result = await this.store.revokeActiveOfUser(userId, reason, this.clock.now().toISOString(), audit);
    if (result.revoked.length) await this.krl.changed();
    this.counters?.certificatesRevoked.inc({}, result.revoked.length);
    return result;
  }

  /** The identity was enabled again: it may be issued certificates again. */
  unlock(userId: string): void {
    this.locked.delete(userId);
  }

  async markExpired(): Promise<number> {
    return this.store.markExpired(this.clock.now().toISOString());
  }

  private async requester(caller: Principal, userId: string | undefined): Promise<string> {
    const self = caller.identity;
    if (userId === undefined || userId === '' || userId === self.id || userId === self.name) return self.id;
    if (self.role !== 'admin') {
      throw forbidden('only admins can request access on behalf of another identity');
    }
    const identity = await findIdentity(this.identities, userId);
    if (!identity) throw notFound(`no identity ${userId}`);
    if (identity.disabled) throw forbidden(`identity ${identity.name} is disabled`);
    return identity.id;
  }

  private async userKey(userId: string, req: AccessRequest): Promise<UserPublicKey> {
    if ((req.public_key === undefined) === (req.ssh_key_id === undefined)) {
      throw badRequest('INVALID_KEY', 'send exactly one of public_key or ssh_key_id');
    }
    let text = req.public_key;
    if (req.ssh_key_id !== undefined) {
      if (!this.resolveRegisteredKey)
        throw badRequest('INVALID_KEY', 'the SSH key registry is not available');
      text = (await this.resolveRegisteredKey(userId, req.ssh_key_id)).publicKey;
    }
    const cached = this.parsedKeys.get(text!);
    if (cached) return cached;
    try {
      const key = parseUserPublicKey(text!);
      // The same few keys come back again and again: skip re-parsing them.
      if (this.parsedKeys.size >= 1024) this.parsedKeys.clear();
      this.parsedKeys.set(text!, key);
      return key;
    } catch (err) {
      if (err instanceof KeyRejectedError)
        throw badRequest('INVALID_KEY', `public_key rejected: ${err.reason}`);
      throw err;
    }
  }
}

/** An identity by id or name. */
export async function findIdentity(identities: IdentityStore, ref: string) {
  return (await identities.getIdentity(ref)) ?? (await identities.getIdentityByName(ref));
}

/**
 * Listing filters as stored ids: `sandbox_id` a server_id or libvirt name, `user_id` an identity id or
 * name. An unknown value stays as sent (it matches nothing).
 */
export async function resolveFilters<Q extends { sandboxId?: string; userId?: string }>(
  inventory: Inventory,
  identities: IdentityStore,
  query: Q,
): Promise<Q> {
  const next = { ...query };
  if (next.sandboxId !== undefined) next.sandboxId = await inventory.resolveFilter(next.sandboxId);
  if (next.userId !== undefined)
    next.userId = (await findIdentity(identities, next.userId))?.id ?? next.userId;
  return next;
}

/** Random, non-zero 64-bit serial (zero cannot be revoked by serial in a KRL). */
function randomSerial(): bigint {
  let serial = 0n;
  while (serial === 0n) serial = pooledRandomBytes(8).readBigUInt64BE();
  return serial;
}
