import { join } from 'node:path';
import type { Clock } from '../../lib/platform/clock.js';
import type { ControllerConfig } from './config.js';
import type { Database } from '../../lib/store/database.js';
import type { InternalCa } from './pki/internal-ca.js';
import type { KeyEncryptionKey } from './pki/kek.js';
import { ApiSessions } from './identity/sessions.js';
import { Logins } from './identity/logins.js';
import { LoginThrottle, loginRules } from './identity/login-throttle.js';
import { DatabaseAttemptThrottle } from './identity/attempt-store.js';
import { Identities } from './identity/identities.js';
import { OwnAuthenticators } from './identity/authenticators.js';
import { SqliteIdentityStore, SqliteSessionStore, type IdentityStore } from './identity/store.js';
import { SshKeys } from './keys/service.js';
import { SshKeyStore } from './keys/store.js';
import { Inventory } from './inventory/service.js';
import { SqliteInventoryStore } from './inventory/store.js';
import { SqliteAccessStore } from './access/store.js';
import { SshAuthority } from './access/authority.js';
import { KrlPublisher } from './access/krl-publisher.js';
import { TrustSync } from './access/trust-sync.js';
import { HostCertificates } from './access/host-ca/service.js';
import { HostCaStore } from './access/host-ca/store.js';
import { AccessService } from './access/service.js';
import { AccessSessions } from './access/sessions.js';
import { GuestTrust } from './access/guest-trust.js';
import { GuestTrustStore } from './access/guest-trust-store.js';
import { Nodes } from './nodes/service.js';
import { NodeStore } from './nodes/store.js';
import { AgentClients } from './nodes/agent-clients.js';
import { SignService } from './sign/service.js';
import { SignStore } from './sign/store.js';
import { TaskRunner } from './sign/tasks.js';
import { AuditLog } from './ops/audit-log.js';
import { Metrics } from './ops/metrics.js';
import { storeGauges } from './ops/gauges.js';

/** On a shared store, how long a controller trusts its cached view of an API session. */
const SHARED_SESSION_REVALIDATE_MS = 1_000;

/** Everything the transports (REST, gRPC, cron) call into. Built once per controller. */
export interface ControllerServices {
  version: string;
  /** This running controller among the cluster's (task lease owner). */
  controllerId: string;
  config: ControllerConfig;
  clock: Clock;
  ca: InternalCa;
  identityStore: IdentityStore;
  sessions: ApiSessions;
  logins: Logins;
  /** The login throttle's counters (the cluster cron job deletes old ones). */
  loginAttempts: DatabaseAttemptThrottle;
  identities: Identities;
  authenticators: OwnAuthenticators;
  /** SSH key registry; resolveUsableKey() serves access requests. */
  sshKeys: SshKeys;
  inventory: Inventory;
  sshAuthority: SshAuthority;
  krl: KrlPublisher;
  /** CA keys and KRL kept in step with the other controllers on the store. */
  trustSync: TrustSync;
  hostCa: HostCertificates;
  access: AccessService;
  accessSessions: AccessSessions;
  /** Trust inside guests: bundle pushed to agents, per-instance status, observed sessions. */
  guestTrust: GuestTrust;
  nodes: Nodes;
  agents: AgentClients;
  sign: SignService;
  tasks: TaskRunner;
  /** The store itself (services own their queries; the controller closes it). */
  db: Database;
  /** Audit log of state-changing actions (fail closed: see ops/audit.ts). */
  audit: AuditLog;
  metrics: Metrics;
}

export async function createServices(
  config: ControllerConfig,
  db: Database,
  ca: InternalCa,
  kek: KeyEncryptionKey,
  clock: Clock,
  version: string,
  controllerId: string,
): Promise<ControllerServices> {
  const identityStore = new SqliteIdentityStore(db);
  const sessions = new ApiSessions(
    new SqliteSessionStore(db),
    identityStore,
    clock,
    config.sessionIdleSeconds * 1000,
    db.dialect === 'sqlite' ? Infinity : SHARED_SESSION_REVALIDATE_MS,
  );
  // One throttle for logins, HTTP Basic and password changes: they guess the same secrets. Its
  // counters are in the database, so the limits hold across every controller of the cluster.
  const loginAttempts = new DatabaseAttemptThrottle(db, loginRules(config), clock);
  const loginThrottle = new LoginThrottle(loginAttempts);
  const logins = new Logins(identityStore, sessions, loginThrottle);
  const sshKeys = new SshKeys(new SshKeyStore(db), identityStore, clock);
  const inventory = new Inventory(new SqliteInventoryStore(db), identityStore, clock);
  const accessStore = new SqliteAccessStore(db);
  const sshAuthority = await SshAuthority.open(accessStore, kek, clock, config.sshCaKeyType);
  const krl = new KrlPublisher(accessStore, sshAuthority, clock);
  const trustSync = new TrustSync(db, sshAuthority, krl, config.trustSyncSeconds * 1000);
  const policy = {
    defaultTtlMinutes: config.certDefaultTtlMinutes,
    maxTtlMinutes: config.certMaxTtlMinutes,
    extensions: config.certExtensions,
    forceCommand: config.certForceCommand,
    sourceAddress: config.certSourceAddress,
  };
  const metrics = new Metrics();
  const access = new AccessService(
    accessStore,
    sshAuthority,
    krl,
    inventory,
    identityStore,
    policy,
    clock,
    metrics,
  );
  access.resolveRegisteredKey = (identityId, keyId) => sshKeys.resolveUsableKey(identityId, keyId);
  const identities = new Identities(identityStore, sessions, ca, clock, config.clientCertDays);
  const audit = new AuditLog(db, clock, metrics);
  // Disabling or deleting an identity works like a lock: its API sessions end (Identities) and every
  // certificate it still holds is revoked through the KRL, one audit row per certificate.
  identities.onLocked = async (identity, reason, actor) => {
    await access.revokeAllOf(identity.id, reason, (tx, certs) => {
      for (const cert of certs)
        audit.recordIn(tx, {
          actorId: actor?.identity.id,
          actorName: actor?.identity.name,
          action: 'certificate.revoke',
          object: cert.id,
          outcome: 'success',
          detail: `${reason}: ${identity.name} (${identity.id})`,
        });
    });
  };
  identities.onUnlocked = (identity) => access.unlock(identity.id);
  const nodes = new Nodes(
    new NodeStore(db),
    identities,
    inventory,
    clock,
    config.defaultLoginUser,
    ca.fingerprint,
  );
  const controllerClient = await ca.controllerClientCredentials(join(config.dataDir, 'pki'));
  const agents = new AgentClients({ ca: ca.certPem, ...controllerClient });
  const signStore = new SignStore(db);
  const sign = new SignService(signStore, nodes, inventory, agents, clock);
  const tasks = new TaskRunner(signStore, clock, (action) => sign.taskWork(action), {
    controllerId,
    leaseMs: config.taskLeaseSeconds * 1000,
    pollMs: config.taskPollSeconds * 1000,
  });
  const hostCa = new HostCertificates(
    await SshAuthority.open(new HostCaStore(db), kek, clock, config.sshCaKeyType, {
      label: 'ssh-host-ca',
      name: 'SSH host CA',
      comment: 'vmwarden-host-ca',
    }),
    new HostCaStore(db),
    inventory,
    db,
    clock,
    config.hostCertDays * 86_400,
    config.trustSyncSeconds * 1000,
  );
  const accessSessions = new AccessSessions(accessStore, inventory, identityStore, clock);
  storeGauges(metrics, { accessSessions, sessions, access, sign });
  const guestTrust = new GuestTrust(
    krl,
    sshAuthority,
    agents,
    accessSessions,
    identityStore,
    inventory,
    new GuestTrustStore(db),
    clock,
    config.defaultLoginUser,
    undefined,
    config.signatureDigest,
  );
  return {
    version,
    controllerId,
    config,
    clock,
    ca,
    identityStore,
    sessions,
    logins,
    loginAttempts,
    identities,
    authenticators: new OwnAuthenticators(identityStore, ca, clock, config.clientCertDays, loginThrottle),
    sshKeys,
    inventory,
    sshAuthority,
    krl,
    trustSync,
    hostCa,
    access,
    accessSessions,
    guestTrust,
    nodes,
    agents,
    sign,
    tasks,
    db,
    audit,
    metrics,
  };
}
