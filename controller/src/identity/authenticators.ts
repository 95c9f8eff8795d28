import type { Clock } from '../../../lib/platform/clock.js';
import { badRequest, conflict, notFound, unauthorized } from '../platform/errors.js';
import { hashPassword, verifyPassword } from '../platform/secrets.js';
import {
  allowsServerAuth,
  certFingerprint,
  CsrError,
  parseCsr,
  subjectAltNames,
  type InternalCa,
} from '../pki/internal-ca.js';
import type { LoginThrottle } from './login-throttle.js';
import type { Authenticator, Page, Principal } from './model.js';
import type { IdentityStore, ListWindow } from './store.js';

export interface CredentialsChange {
  username?: string | null;
  password?: string | null;
  currentPassword: string;
}

/** /current-identity/authenticators: what an identity may do with its own authenticators. */
export class OwnAuthenticators {
  constructor(
    private readonly store: IdentityStore,
    private readonly ca: InternalCa,
    private readonly clock: Clock,
    private readonly clientCertDays: number,
    private readonly throttle: LoginThrottle,
  ) {}

  async list(caller: Principal, window: ListWindow): Promise<Page<Authenticator>> {
    const { rows, total } = await this.store.listAuthenticators(caller.identity.id, window);
    return { rows, total, limit: window.limit, offset: window.offset };
  }

  /** Another identity's authenticator is "not found": its existence must not leak. */
  async get(caller: Principal, id: string): Promise<Authenticator> {
    const a = await this.store.getAuthenticator(id);
    if (!a || a.identityId !== caller.identity.id) throw notFound(`no authenticator with id ${id}`);
    return a;
  }

  /**
   * currentPassword is checked under the same throttle and counters as logins for this username and
   * the caller's address: it is the same secret, and a stolen session token must not buy a second
   * guessing budget.
   */
  async changeCredentials(
    caller: Principal,
    id: string,
    change: CredentialsChange,
    ip: string,
  ): Promise<void> {
    const a = await this.get(caller, id);
    if (a.method !== 'updb') {
      throw conflict(
        'CAN_NOT_UPDATE_AUTHENTICATOR',
        'only updb (username/password) authenticators can be updated',
      );
    }
    const correct = await this.throttle.password(a.username ?? '', ip, async () =>
      (await verifyPassword(change.currentPassword, a.passwordHash ?? '')) ? true : undefined,
    );
    if (!correct) {
      throw unauthorized('UNAUTHORIZED', 'the current password is not correct', {
        field: 'currentPassword',
        reason: 'does not match the current password',
      });
    }
    if (change.username && change.username !== a.username) {
      const taken = await this.store.findUpdbByUsername(change.username);
      if (taken) throw conflict('DUPLICATE_NAME', `the username '${change.username}' is taken`);
      a.username = change.username;
    }
    if (change.password) a.passwordHash = await hashPassword(change.password);
    a.updatedAt = this.clock.now().toISOString();
    await this.store.updateAuthenticator(a);
  }

  /**
   * Issues a new certificate for a CSR. The caller must present the authenticator's current certificate
   * over mTLS. The old certificate keeps working until extendVerify confirms receipt of the new one.
   */
  async extend(
    caller: Principal,
    id: string,
    csrPem: string,
    presented: string | undefined,
  ): Promise<{ clientCert: string; ca: string }> {
    const a = await this.get(caller, id);
    if (a.method !== 'cert' || !a.certPem) {
      throw conflict('CAN_NOT_UPDATE_AUTHENTICATOR', 'only certificate authenticators can be extended');
    }
    if (!presented || presented !== a.fingerprint) {
      throw unauthorized(
        'INVALID_AUTH',
        'extend requires the current client certificate of this authenticator over TLS',
      );
    }
    let issued;
    try {
      const csr = parseCsr(csrPem);
      issued = await this.ca.issueClientCert(csrPem, {
        days: this.clientCertDays,
        subject: csr.subject,
        sans: subjectAltNames(a.certPem),
        serverAuth: allowsServerAuth(a.certPem),
      });
      a.lastExtendRolledKeys = !samePublicKey(csr.publicKey.rawData, a.certPem);
    } catch (err) {
      if (err instanceof CsrError)
        throw badRequest('COULD_NOT_PROCESS_CSR', `could not process CSR: ${err.message}`);
      throw err;
    }
    a.pendingCertPem = issued.pem;
    a.pendingFingerprint = issued.fingerprint;
    a.extendRequestedAt = this.clock.now().toISOString();
    a.updatedAt = a.extendRequestedAt;
    await this.store.updateAuthenticator(a);
    return { clientCert: issued.pem, ca: this.ca.certPem };
  }

  /** Confirms the new certificate: from now on only it authenticates. */
  async extendVerify(caller: Principal, id: string, clientCertPem: string): Promise<void> {
    const a = await this.get(caller, id);
    if (a.method !== 'cert') {
      throw conflict('CAN_NOT_UPDATE_AUTHENTICATOR', 'only certificate authenticators can be extended');
    }
    let fingerprint: string | undefined;
    try {
      fingerprint = certFingerprint(clientCertPem.trim());
    } catch {
      fingerprint = undefined;
    }
    if (!a.pendingFingerprint || fingerprint !== a.pendingFingerprint) {
      throw badRequest('INVALID_CLIENT_CERT', 'the client certificate does not match the pending extension', {
        field: 'clientCert',
        reason: a.pendingFingerprint ? 'not the certificate issued by extend' : 'no extension is pending',
      });
    }
    a.certPem = a.pendingCertPem;
    a.fingerprint = a.pendingFingerprint;
    a.pendingCertPem = null;
    a.pendingFingerprint = null;
    a.extendRequestedAt = null;
    a.updatedAt = this.clock.now().toISOString();
    await this.store.updateAuthenticator(a);
  }
}

function samePublicKey(csrSpki: ArrayBuffer, certPem: string): boolean {
  const spki = Buffer.from(csrSpki);
  const certDer = Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return certDer.includes(spki);
}
