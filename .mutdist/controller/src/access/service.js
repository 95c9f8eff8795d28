import { randomBytes, randomUUID } from 'node:crypto';
import { badRequest, forbidden, notFound, conflict } from '../platform/errors.js';
import { KeyRejectedError, parseUserPublicKey } from './sshca/keys.js';
import { signUserCertificate } from './sshca/certificate.js';
import { criticalOptions, ttlMinutes } from './policy.js';
export const instancePrincipal = (serverId) => `vm-${serverId}`;
/** Issues, lists and revokes the short-lived SSH certificates that open exactly one instance. */
export class AccessService {
    store;
    authority;
    krl;
    inventory;
    identities;
    policy;
    clock;
    resolveRegisteredKey;
    constructor(store, authority, krl, inventory, identities, policy, clock) {
        this.store = store;
        this.authority = authority;
        this.krl = krl;
        this.inventory = inventory;
        this.identities = identities;
        this.policy = policy;
        this.clock = clock;
    }
    async request(caller, req, callerIp) {
        const userId = await this.requester(caller, req.user_id);
        const instance = await this.inventory.get(req.sandbox_id);
        if (caller.identity.role !== 'admin')
            await this.inventory.getFor(caller, req.sandbox_id);
        if (instance.state !== 'running') {
            throw conflict('INSTANCE_NOT_RUNNING', `instance ${instance.instanceName} is ${instance.state}, not running`);
        }
        const ttl = ttlMinutes(this.policy, req.ttl_minutes);
        const userKey = await this.userKey(userId, req);
        const now = this.clock.now();
        const id = randomUUID();
        const serial = randomSerial();
        const validAfter = new Date(now.getTime() - 60_000);
        const validBefore = new Date(now.getTime() + ttl * 60_000);
        const principals = [instancePrincipal(instance.serverId)];
        const keyId = `user:${userId}-vm:${instance.instanceName}-sbx:${instance.serverId}-cert:${id}`;
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
        const record = {
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
        await this.store.insertCertificate(record);
        return { record, certificate: signed.line, instance };
    }
    async get(caller, id) {
        const cert = await this.store.getCertificate(id, this.clock.now().toISOString());
        if (!cert)
            throw notFound(`no certificate with id ${id}`);
        if (caller.identity.role !== 'admin' && cert.userId !== caller.identity.id) {
            throw forbidden(`certificate ${id} belongs to another identity`);
        }
        return cert;
    }
    list(caller, query) {
        if (caller.identity.role !== 'admin') {
            if (query.userId !== undefined && query.userId !== caller.identity.id) {
                throw forbidden('only admins can list certificates of other identities');
            }
            query = { ...query, userId: caller.identity.id };
        }
        return this.store.listCertificates(query, this.clock.now().toISOString());
    }
    /** Revokes: status, live sessions and the KRL change in one transaction; then listeners hear of it. */
    async revoke(caller, id, reason) {
        const cert = await this.get(caller, id);
        if (cert.status === 'REVOKED')
            throw badRequest('ALREADY_REVOKED', `certificate ${id} is already revoked`);
        const result = await this.store.revokeCertificate(id, reason, this.clock.now().toISOString());
        if (!result.revoked)
            throw badRequest('ALREADY_REVOKED', `certificate ${id} is already revoked`);
        await this.krl.changed();
        return result;
    }
    async markExpired() {
        return this.store.markExpired(this.clock.now().toISOString());
    }
    async requester(caller, userId) {
        if (userId === undefined || userId === '' || userId === caller.identity.id)
            return caller.identity.id;
        if (caller.identity.role !== 'admin') {
            throw forbidden('only admins can request access on behalf of another identity');
        }
        const identity = (await this.identities.getIdentity(userId)) ?? (await this.identities.getIdentityByName(userId));
        if (!identity)
            throw notFound(`no identity ${userId}`);
        return identity.id;
    }
    async userKey(userId, req) {
        if ((req.public_key === undefined) === (req.ssh_key_id === undefined)) {
            throw badRequest('INVALID_KEY', 'send exactly one of public_key or ssh_key_id');
        }
        let text = req.public_key;
        if (req.ssh_key_id !== undefined) {
            if (!this.resolveRegisteredKey)
                throw badRequest('INVALID_KEY', 'the SSH key registry is not available');
            text = (await this.resolveRegisteredKey(userId, req.ssh_key_id)).publicKey;
        }
        try {
            return parseUserPublicKey(text);
        }
        catch (err) {
            if (err instanceof KeyRejectedError)
                throw badRequest('INVALID_KEY', `public_key rejected: ${err.reason}`);
            throw err;
        }
    }
}
/** Random, non-zero 64-bit serial (zero cannot be revoked by serial in a KRL). */
function randomSerial() {
    let serial = 0n;
    while (serial === 0n)
        serial = randomBytes(8).readBigUInt64BE();
    return serial;
}
//# sourceMappingURL=service.js.map