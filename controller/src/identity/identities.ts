import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Clock } from '../../../lib/platform/clock.js';
import { badRequest, conflict, notFound } from '../platform/errors.js';
import { conflictOnDuplicate } from '../store/constraint.js';
import { writePrivateFile } from '../../../lib/platform/private-file.js';
import { hashPassword, newPassword } from '../platform/secrets.js';
import { CsrError, type InternalCa } from '../pki/internal-ca.js';
import { identityUri } from '../../../lib/pki/san-uris.js';
import type { JsonGeneralName } from '@peculiar/x509';
import type { Authenticator, Identity, Page, Principal, Role } from './model.js';
import type { ApiSessions } from './sessions.js';
import type { IdentityStore, ListWindow } from './store.js';
import { defaultAttributes, type IdentityAttributes } from './ziti-identity.js';

export interface NewIdentity {
  name: string;
  role: Role;
  password?: string;
  /** The password's username (OpenZiti's `enrollment.updb`); the identity's name by default. */
  username?: string;
  attributes?: IdentityAttributes;
}

export interface IdentityPatch {
  name?: string;
  role?: Role;
  disabled?: boolean;
  attributes?: IdentityAttributes;
}

/** Why an identity lost its access: the revocation reason of its certificates. */
export type LockReason = 'identity-disabled' | 'identity-deleted';

/**
 * Told when an identity is disabled or deleted (after its API sessions ended): revokes what else it
 * holds (its SSH certificates). Wired in services.ts, so identity/ does not depend on access/. A
 * failure fails the PATCH/DELETE, which can be sent again (the hook is idempotent).
 */
export type IdentityLockHook = (identity: Identity, reason: LockReason, actor?: Principal) => Promise<void>;

/** Admin management of identities, and the first-start bootstrap of `admin`. */
export class Identities {
  onLocked?: IdentityLockHook;
  onUnlocked?: (identity: Identity) => void;

  constructor(
    private readonly store: IdentityStore,
    private readonly sessions: ApiSessions,
    private readonly ca: InternalCa,
    private readonly clock: Clock,
    private readonly clientCertDays: number,
  ) {}

  /**
   * On an empty store: identity `admin` with a random password in `<dataDir>/admin-password` (0600).
   * Of controllers starting together on one empty database, only the one whose insert finds the
   * store still empty creates it (and writes the file); the others find the cluster initialised.
   */
  async bootstrapAdmin(dataDir: string): Promise<string | undefined> {
    if ((await this.store.countIdentities()) > 0) return undefined;
    const password = newPassword();
    const { identity, updb } = await this.newIdentity({ name: 'admin', role: 'admin', password }, true);
    if (!(await this.store.insertFirstIdentity(identity, updb!))) return undefined;
    writePrivateFile(join(dataDir, 'admin-password'), `${password}\n`);
    return password;
  }

  async create(input: NewIdentity, isDefaultAdmin = false): Promise<Identity> {
    const duplicate = () => conflict('DUPLICATE_NAME', `an identity named '${input.name}' already exists`);
    if (await this.store.getIdentityByName(input.name)) throw duplicate();
    const username = input.username ?? input.name;
    if (input.password !== undefined && (await this.store.findUpdbByUsername(username))) {
      throw conflict('DUPLICATE_NAME', `the username '${username}' is taken`);
    }
    const { identity, updb } = await this.newIdentity(input, isDefaultAdmin);
    // A concurrent create of the same name passed the checks above too: the store's index decides.
    await conflictOnDuplicate(() => this.store.insertIdentity(identity, updb), duplicate);
    return identity;
  }

  /** The rows of a new identity (and its password authenticator when it has a password). */
  private async newIdentity(
    input: NewIdentity,
    isDefaultAdmin: boolean,
  ): Promise<{ identity: Identity; updb?: Authenticator }> {
    const now = this.clock.now().toISOString();
    const identity: Identity = {
      id: randomUUID(),
      name: input.name,
      role: input.role,
      isDefaultAdmin,
      disabled: false,
      attributes: input.attributes ?? defaultAttributes(),
      createdAt: now,
      updatedAt: now,
    };
    if (input.password === undefined) return { identity };
    const updb = blankAuthenticator(identity.id, 'updb', now);
    updb.username = input.username ?? input.name;
    updb.passwordHash = await hashPassword(input.password);
    return { identity, updb };
  }

  findByName(name: string): Promise<Identity | undefined> {
    return this.store.getIdentityByName(name);
  }

  async get(id: string): Promise<Identity> {
    const identity = await this.store.getIdentity(id);
    if (!identity) throw notFound(`no identity with id ${id}`);
    return identity;
  }

  async list(window: ListWindow): Promise<Page<Identity>> {
    const { rows, total } = await this.store.listIdentities(window);
    return { rows, total, limit: window.limit, offset: window.offset };
  }

  async update(id: string, patch: IdentityPatch, actor?: Principal): Promise<Identity> {
    const current = await this.get(id);
    if (current.isDefaultAdmin && (patch.disabled || (patch.role && patch.role !== 'admin'))) {
      throw conflict('CAN_NOT_UPDATE_DEFAULT_ADMIN', 'the default admin cannot be disabled or demoted');
    }
    if (patch.name && patch.name !== current.name && (await this.store.getIdentityByName(patch.name))) {
      throw conflict('DUPLICATE_NAME', `an identity named '${patch.name}' already exists`);
    }
    const next: Identity = { ...current, ...defined(patch), updatedAt: this.clock.now().toISOString() };
    await this.store.updateIdentity(next);
    if (next.disabled || next.role !== current.role) await this.sessions.endAllFor(id);
    else this.sessions.refreshIdentity(next);
    // Disabled (again: a retry after a failed revocation sweeps what is left) → like a lock.
    if (next.disabled) await this.onLocked?.(next, 'identity-disabled', actor);
    else if (current.disabled) this.onUnlocked?.(next);
    return next;
  }

  /** Ends the identity's API sessions and revokes its certificates (onLocked), then deletes it. */
  async remove(id: string, actor?: Principal): Promise<void> {
    const identity = await this.get(id);
    if (identity.isDefaultAdmin)
      throw conflict('CAN_NOT_DELETE_DEFAULT_ADMIN', 'the default admin cannot be deleted');
    await this.sessions.endAllFor(id);
    await this.onLocked?.(identity, 'identity-deleted', actor);
    await this.store.deleteIdentity(id);
  }

  /** Signs a CSR for the identity and adds a `cert` authenticator for it. */
  async issueCertificate(
    id: string,
    csrPem: string,
    extra: { sans?: JsonGeneralName[]; serverAuth?: boolean } = {},
  ): Promise<{ authenticator: Authenticator; certPem: string }> {
    const identity = await this.get(id);
    let issued;
    try {
      issued = await this.ca.issueClientCert(csrPem, {
        days: this.clientCertDays,
        sans: [{ type: 'url', value: identityUri(identity.id) }, ...(extra.sans ?? [])],
        serverAuth: extra.serverAuth,
      });
    } catch (err) {
      if (err instanceof CsrError) throw badRequest('COULD_NOT_PROCESS_CSR', err.message);
      throw err;
    }
    const now = this.clock.now().toISOString();
    const authenticator = blankAuthenticator(identity.id, 'cert', now);
    authenticator.certPem = issued.pem;
    authenticator.fingerprint = issued.fingerprint;
    await this.store.insertAuthenticator(authenticator);
    return { authenticator, certPem: issued.pem };
  }
}

export function blankAuthenticator(
  identityId: string,
  method: Authenticator['method'],
  now: string,
): Authenticator {
  return {
    id: randomUUID(),
    identityId,
    method,
    username: null,
    passwordHash: null,
    certPem: null,
    fingerprint: null,
    pendingCertPem: null,
    pendingFingerprint: null,
    extendRequestedAt: null,
    lastExtendRolledKeys: false,
    createdAt: now,
    updatedAt: now,
  };
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
