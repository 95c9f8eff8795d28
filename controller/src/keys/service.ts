import { ApiError, forbidden } from '../platform/errors.js';
import type { Clock } from '../../../lib/platform/clock.js';
import type { Identity } from '../identity/model.js';
import type { IdentityStore } from '../identity/store.js';
import { openSshLine, type ParsedKey } from './key-material.js';
import type { CoAuthenticator, SshKey, SshKeyAuthenticator, SshKeyStore, SshKeyTx } from './store.js';
import {
  authenticatorUnknown,
  invalidField,
  InvalidFieldsError,
  personUnknown,
  sshKeyUnknown,
} from './errors.js';

/** A validated SshKey request: who it is for, and the parsed key. */
export interface SshKeyRequest {
  personId: string;
  authenticatorId: number;
  key: ParsedKey;
  comment: string;
  /** The Id the body carried (a PUT may echo the object it got from GET). */
  id?: string;
}

/** The CO's authenticator and the per-person lock states (SshKeyAuthenticator rows) the caller may see. */
export interface AuthenticatorsView {
  co: CoAuthenticator;
  statuses: SshKeyAuthenticator[];
}

/** A registered key, ready for an access request (certificate signing). */
export interface UsableKey {
  /** OpenSSH one-line public key, `type base64` (no comment). */
  publicKey: string;
  /** OpenSSH SHA256 fingerprint, `SHA256:…`. */
  fingerprint: string;
  /** The key's type, e.g. `ssh-ed25519`. */
  type: string;
  /** The key's id, as the SshKey API renders it. */
  id: string;
}

const isAdmin = (caller: Identity) => caller.role === 'admin';
const lockedError = () =>
  new ApiError(
    403,
    'AUTHENTICATOR_LOCKED',
    'The SSH key authenticator of this person is locked: its keys cannot be added, edited, deleted or used',
  );

/**
 * The SSH key registry (COmanage SshKey semantics): users manage their own keys, admins everyone's;
 * keys are soft-deleted; a locked authenticator freezes its person's keys.
 */
export class SshKeys {
  constructor(
    private readonly store: SshKeyStore,
    private readonly identities: IdentityStore,
    private readonly clock: Clock,
  ) {}

  private now() {
    return this.clock.now().toISOString();
  }

  /** Users (and agents) act only on themselves; admins on anyone. */
  private mayActFor(caller: Identity, personId: string) {
    if (caller.role === 'agent') throw forbidden('Agent identities have no SSH keys');
    if (!isAdmin(caller) && caller.id !== personId)
      throw forbidden('You may only manage your own SSH keys (this is another CO Person)');
  }

  /** The person a key request is for: must exist and be a person, not an agent. */
  private async person(personId: string): Promise<Identity> {
    const identity = await this.identities.getIdentity(personId);
    if (!identity) throw invalidField('Person', 'CO Person Unknown');
    if (identity.role === 'agent') throw invalidField('Person', 'Agent identities cannot hold SSH keys');
    return identity;
  }

  private ensureAuthenticator(identityId: string) {
    return this.store.transaction((tx) => tx.ensureAuthenticator(identityId, this.now()));
  }

  private coCache?: CoAuthenticator;

  /** The CO's SSH key authenticator: its id is the SshKeyAuthenticatorId of every request and key. */
  async co(): Promise<CoAuthenticator> {
    return (this.coCache ??= await this.store.coAuthenticator(this.now()));
  }

  /**
   * The request must name the CO's authenticator, or (as before there was one) the person's own
   * per-person authenticator id; a locked person is refused.
   */
  private checkAuthenticator(co: CoAuthenticator, a: SshKeyAuthenticator, req: SshKeyRequest) {
    if (req.authenticatorId !== co.id && req.authenticatorId !== a.id)
      throw invalidField(
        'SshKeyAuthenticatorId',
        `SshKeyAuthenticatorId ${req.authenticatorId} is not the CO's SSH key authenticator, which is ${co.id} (GET /ssh_key_authenticator/authenticators.json)`,
      );
    if (a.locked) throw lockedError();
  }

  private async refuseDuplicate(tx: SshKeyTx, personId: string, fingerprint: string, exceptId?: number) {
    const dup = await tx.findLiveDuplicate(personId, fingerprint, exceptId);
    if (dup !== undefined)
      throw invalidField(
        'Skey',
        `This key (${fingerprint}) is already registered for this CO Person as SshKey ${dup}`,
      );
  }

  private material(req: SshKeyRequest) {
    return { type: req.key.type, skey: req.key.skey, comment: req.comment, fingerprint: req.key.fingerprint };
  }

  async add(caller: Identity, req: SshKeyRequest): Promise<number> {
    this.mayActFor(caller, req.personId);
    await this.person(req.personId);
    const co = await this.co();
    const a = await this.ensureAuthenticator(req.personId);
    this.checkAuthenticator(co, a, req);
    return this.writeMappingDuplicate(() =>
      this.store.transaction(async (tx) => {
        const current = (await tx.getAuthenticator(a.id))!;
        this.checkAuthenticator(co, current, req);
        await this.refuseDuplicate(tx, req.personId, req.key.fingerprint);
        return tx.insertKey(req.personId, a.id, this.material(req), this.now());
      }),
    );
  }

  async edit(caller: Identity, id: number, req: SshKeyRequest): Promise<void> {
    const existing = await this.visible(caller, id);
    if (existing.deleted) throw sshKeyUnknown();
    if (req.id !== undefined && req.id !== String(id))
      throw invalidField('Id', `Id ${req.id.slice(0, 20)} does not match the SshKey in the URL (${id})`);
    if (req.personId !== existing.identityId)
      throw invalidField('Person', 'An SshKey cannot be moved to another CO Person');
    const co = await this.co();
    await this.writeMappingDuplicate(() =>
      this.store.transaction(async (tx) => {
        const key = await tx.getKey(id);
        if (!key || key.deleted) throw sshKeyUnknown();
        const a = (await tx.getAuthenticator(key.authenticatorId))!;
        this.checkAuthenticator(co, a, req);
        await this.refuseDuplicate(tx, key.identityId, req.key.fingerprint, id);
        await tx.updateKey(id, this.material(req), this.now());
      }),
    );
  }

  async remove(caller: Identity, id: number): Promise<void> {
    const existing = await this.visible(caller, id);
    if (existing.deleted) throw sshKeyUnknown();
    await this.store.transaction(async (tx) => {
      const key = await tx.getKey(id);
      if (!key || key.deleted) throw sshKeyUnknown();
      const a = (await tx.getAuthenticator(key.authenticatorId))!;
      if (a.locked) throw lockedError();
      await tx.softDelete(id, this.now());
    });
  }

  /** One key, deleted ones included (they stay viewable by id). */
  get(caller: Identity, id: number): Promise<SshKey> {
    return this.visible(caller, id);
  }

  /** Live keys: every key for an admin, one's own for others. */
  list(caller: Identity): Promise<SshKey[]> {
    if (caller.role === 'agent') throw forbidden('Agent identities have no SSH keys');
    return this.store.listLive(isAdmin(caller) ? undefined : caller.id);
  }

  /** Live keys of one CO Person. */
  async listForPerson(caller: Identity, personId: string): Promise<SshKey[]> {
    this.mayActFor(caller, personId);
    if (!(await this.identities.getIdentity(personId))) throw personUnknown();
    return this.store.listLive(personId);
  }

  /** A person's lock state (their per-person authenticator row, created on first use). */
  private async statusOf(caller: Identity, personId: string): Promise<SshKeyAuthenticator> {
    this.mayActFor(caller, personId);
    const identity = await this.identities.getIdentity(personId);
    if (!identity) throw personUnknown();
    if (identity.role === 'agent') throw forbidden('Agent identities have no SSH key authenticator');
    return (await this.store.authenticatorOf(personId)) ?? this.ensureAuthenticator(personId);
  }

  /** The CO's authenticator with one person's lock state. */
  async authenticatorFor(caller: Identity, personId: string): Promise<AuthenticatorsView> {
    return { co: await this.co(), statuses: [await this.statusOf(caller, personId)] };
  }

  /** The CO's authenticator with every person's lock state (admins), or one's own. */
  async authenticators(caller: Identity): Promise<AuthenticatorsView> {
    if (isAdmin(caller)) return { co: await this.co(), statuses: await this.store.listAuthenticators() };
    return this.authenticatorFor(caller, caller.id);
  }

  /** The CO's authenticator (as the listing), or one person's lock state by its own (older) id. */
  async getAuthenticator(caller: Identity, id: number): Promise<AuthenticatorsView> {
    const co = await this.co();
    if (id === co.id) return this.authenticators(caller);
    const a = await this.store.getAuthenticator(id);
    if (!a) throw authenticatorUnknown();
    this.mayActFor(caller, a.identityId);
    return { co, statuses: [a] };
  }

  /**
   * Admins lock or unlock one person: `id` the CO's authenticator with `personId`, or the person's
   * own authenticator id (the older form).
   */
  async setLocked(
    caller: Identity,
    id: number,
    locked: boolean,
    personId?: string,
  ): Promise<AuthenticatorsView> {
    if (!isAdmin(caller))
      throw forbidden('Locking and unlocking SSH key authenticators needs the admin role');
    const co = await this.co();
    if (id === co.id) {
      if (personId === undefined)
        throw invalidField(
          'copersonid',
          `Locks are per CO Person: add ?copersonid=<id> to lock them on authenticator ${id}`,
        );
      id = (await this.statusOf(caller, personId)).id;
    }
    const status = await this.store.transaction(async (tx) => {
      const a = await tx.getAuthenticator(id);
      if (!a) throw authenticatorUnknown();
      if (a.locked !== locked) await tx.setLocked(id, locked, this.now());
      return (await tx.getAuthenticator(id))!;
    });
    return { co, statuses: [status] };
  }

  /**
   * For access requests (POST /v1/access/request): the registered key `keyId` of `identityId`, as an
   * OpenSSH line and fingerprint. ApiError 404 (SshKey Unknown) for an unknown, deleted, malformed
   * or someone else's key id; 403 when the person's SSH key authenticator is locked.
   */
  async resolveUsableKey(identityId: string, keyId: string | number): Promise<UsableKey> {
    const text = String(keyId).trim();
    const id = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
    const key = Number.isSafeInteger(id) && id > 0 ? await this.store.getKey(id) : undefined;
    if (!key || key.deleted || key.identityId !== identityId) throw sshKeyUnknown();
    const a = await this.store.getAuthenticator(key.authenticatorId);
    if (!a || a.locked) throw lockedError();
    return {
      publicKey: openSshLine(key.type, key.skey),
      fingerprint: key.fingerprint,
      type: key.type,
      id: String(key.id),
    };
  }

  /** Key `id`, if the caller may see it: 404 when it does not exist, 403 when it is someone else's. */
  private async visible(caller: Identity, id: number): Promise<SshKey> {
    if (caller.role === 'agent') throw forbidden('Agent identities have no SSH keys');
    const key = await this.store.getKey(id);
    if (!key) throw sshKeyUnknown();
    if (!isAdmin(caller) && key.identityId !== caller.id)
      throw forbidden('This SshKey belongs to another CO Person');
    return key;
  }

  /** Two concurrent adds of one key: the partial unique index catches the loser; report it as a duplicate. */
  private async writeMappingDuplicate<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof InvalidFieldsError || err instanceof ApiError) throw err;
      if (/UNIQUE constraint failed: ssh_keys/.test(String((err as Error)?.message)))
        throw invalidField('Skey', 'This key is already registered for this CO Person');
      throw err;
    }
  }
}
