import { join } from 'node:path';
import { FailureLimiter } from './platform/rate-limit.js';
import { ApiSessions } from './identity/sessions.js';
import { Logins } from './identity/logins.js';
import { Identities } from './identity/identities.js';
import { OwnAuthenticators } from './identity/authenticators.js';
import { SqliteIdentityStore, SqliteSessionStore } from './identity/store.js';
import { SshKeys } from './keys/service.js';
import { SshKeyStore } from './keys/store.js';
import { Inventory } from './inventory/service.js';
import { SqliteInventoryStore } from './inventory/store.js';
import { SqliteAccessStore } from './access/store.js';
import { SshAuthority } from './access/authority.js';
import { KrlPublisher } from './access/krl-publisher.js';
import { AccessService } from './access/service.js';
import { AccessSessions } from './access/sessions.js';
import { Nodes } from './nodes/service.js';
import { NodeStore } from './nodes/store.js';
import { AgentClients } from './nodes/agent-clients.js';
import { SignService } from './sign/service.js';
import { SignStore } from './sign/store.js';
import { TaskRunner } from './sign/tasks.js';
export async function createServices(config, db, ca, clock, version) {
    const identityStore = new SqliteIdentityStore(db);
    const sessions = new ApiSessions(new SqliteSessionStore(db), identityStore, clock, config.sessionIdleSeconds * 1000);
    const windowMs = config.loginFailureWindowSeconds * 1000;
    const logins = new Logins(identityStore, sessions, {
        byUsername: new FailureLimiter(config.loginMaxFailuresPerUsername, windowMs, clock),
        byAddress: new FailureLimiter(config.loginMaxFailuresPerAddress, windowMs, clock),
    });
    const sshKeys = new SshKeys(new SshKeyStore(db), identityStore, clock);
    const inventory = new Inventory(new SqliteInventoryStore(db), identityStore, clock);
    const accessStore = new SqliteAccessStore(db);
    const sshAuthority = await SshAuthority.open(join(config.dataDir, 'ssh-ca'), accessStore, clock, config.sshCaKeyType);
    const krl = new KrlPublisher(accessStore, sshAuthority, clock);
    const policy = {
        defaultTtlMinutes: config.certDefaultTtlMinutes,
        maxTtlMinutes: config.certMaxTtlMinutes,
        extensions: config.certExtensions,
        forceCommand: config.certForceCommand,
        sourceAddress: config.certSourceAddress,
    };
    const access = new AccessService(accessStore, sshAuthority, krl, inventory, identityStore, policy, clock);
    access.resolveRegisteredKey = (identityId, keyId) => sshKeys.resolveUsableKey(identityId, keyId);
    const identities = new Identities(identityStore, sessions, ca, clock, config.clientCertDays);
    const nodes = new Nodes(new NodeStore(db), identities, inventory, clock, config.defaultLoginUser, ca.fingerprint);
    const controllerClient = await ca.controllerClientCredentials(join(config.dataDir, 'pki'));
    const agents = new AgentClients({ ca: ca.certPem, ...controllerClient });
    const signStore = new SignStore(db);
    const sign = new SignService(signStore, nodes, inventory, agents, clock);
    const tasks = new TaskRunner(signStore, clock, (action) => sign.taskWork(action));
    return {
        version,
        config,
        clock,
        ca,
        identityStore,
        sessions,
        logins,
        identities,
        authenticators: new OwnAuthenticators(identityStore, ca, clock, config.clientCertDays),
        sshKeys,
        inventory,
        sshAuthority,
        krl,
        access,
        accessSessions: new AccessSessions(accessStore, inventory, clock),
        nodes,
        agents,
        sign,
        tasks,
    };
}
//# sourceMappingURL=services.js.map