// SignatureService: signs an instance (manifest over its canonical definition, boot artifacts and
// sealed writable disks, signed with the node key) and verifies it later against that baseline.
//
// Every file is hashed through the HashEngine with the cached previous digest of that path, so an
// unchanged instance is re-checked from file identities alone (no bytes read), also after a restart.
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../controller/src/platform/clock.js';
import { AgentStore } from '../store/agent-store.js';
import { domainArtifacts } from './artifacts.js';
import { configDigest } from './canonical-xml.js';
import { AlreadySignedError, ArtifactError, DomainStateError, NotFoundError, NotSignedError, } from './errors.js';
import { HashEngine, diffChunks } from './hashing/engine.js';
import { fileDigest, isSealed, } from './manifest.js';
import { NodeKey } from './node-key.js';
function errorReason(e) {
    const err = e;
    if (err?.code === 'ENOENT')
        return { reason: 'missing', missing: true };
    return { reason: `unreadable: ${err?.message ?? String(e)}`, missing: false };
}
export class SignatureService {
    hv;
    store;
    key;
    engine;
    clock;
    node;
    qemuImg;
    ownsEngine;
    ownsStore = false;
    locks = new Map();
    constructor(opts) {
        this.hv = opts.hypervisor;
        this.store = opts.store;
        this.key = opts.key;
        this.ownsEngine = !opts.engine;
        this.engine = opts.engine ?? new HashEngine();
        this.clock = opts.clock ?? systemClock;
        this.node = opts.node ?? hostname();
        this.qemuImg = opts.qemuImg ?? 'qemu-img';
    }
    /** A service over `<dataDir>/agent.db` and `<dataDir>/node-key.pem` (both created when absent). */
    static async open(opts) {
        const key = NodeKey.loadOrCreate(opts.dataDir);
        const store = await AgentStore.open(join(opts.dataDir, 'agent.db'));
        const svc = new SignatureService({ ...opts, store, key });
        svc.ownsStore = true;
        return svc;
    }
    get publicKeyPem() {
        return this.key.publicKeyPem;
    }
    /** Ends the hash workers and the store when this service created them (not the hypervisor). */
    async close() {
        if (this.ownsEngine)
            await this.engine.close();
        if (this.ownsStore)
            await this.store.close();
    }
    // --- public API ---
    async get(uuid) {
        const s = await this.store.getSignature(uuid);
        return s && toRecord(s);
    }
    async list() {
        return (await this.store.listSignatures()).map(toRecord);
    }
    /** Signs an instance. Without `replace` an existing baseline is an AlreadySignedError. */
    sign(uuid, opts = {}) {
        return this.locked(uuid, () => this.signNow(uuid, opts.replace ?? false));
    }
    verify(uuid) {
        return this.locked(uuid, () => this.verifyNow(uuid));
    }
    /** Hashes the writable disks of a shut-off instance into its baseline (re-signed, updatedAt set). */
    sealDisks(uuid) {
        return this.locked(uuid, () => this.sealNow(uuid));
    }
    /**
     * Signs every defined domain that has no baseline yet; returns how many were signed. A domain
     * that cannot be signed (e.g. a missing kernel) is reported to `onError` and skipped.
     */
    async signUnsigned(onProgress, onError) {
        const domains = await this.hv.listDomains();
        const todo = [];
        for (const d of domains)
            if (!(await this.store.getSignature(d.uuid)))
                todo.push(d);
        let done = 0;
        let signed = 0;
        onProgress?.(0, todo.length);
        for (const d of todo) {
            try {
                await this.sign(d.uuid, { replace: false });
                signed++;
            }
            catch (e) {
                if (!(e instanceof AlreadySignedError))
                    onError?.(d.uuid, e);
            }
            onProgress?.(++done, todo.length);
        }
        return signed;
    }
    async setValidation(active) {
        await this.store.setValidation(active, this.now());
        return this.store.validation();
    }
    validation() {
        return this.store.validation();
    }
    // --- internals ---
    now() {
        return this.clock.now().toISOString();
    }
    /** Runs operations on one instance one after another. */
    async locked(uuid, fn) {
        const prev = this.locks.get(uuid) ?? Promise.resolve();
        const run = prev.then(fn, fn);
        const tail = run.catch(() => undefined);
        this.locks.set(uuid, tail);
        try {
            return await run;
        }
        finally {
            if (this.locks.get(uuid) === tail)
                this.locks.delete(uuid);
        }
    }
    async domain(uuid) {
        const d = await this.hv.getDomain(uuid);
        if (!d)
            throw new NotFoundError(uuid);
        return d;
    }
    /** Digest of the definition plus the files it points at; files that are not regular go to unsupported. */
    async coverage(uuid) {
        const xml = await this.hv.inactiveXml(uuid);
        const found = await domainArtifacts(xml, { qemuImg: this.qemuImg });
        const unsupported = [...found.unsupported];
        const hashable = async (path, what) => {
            try {
                const st = await stat(path);
                if (st.isFile())
                    return true;
                unsupported.push(`${what} ${path} is not a regular file and is not hashed`);
                return false;
            }
            catch {
                return true; // missing/unreadable: reported when hashing
            }
        };
        const boot = [];
        for (const a of found.boot)
            if (await hashable(a.path, a.role))
                boot.push(a);
        const disks = [];
        for (const d of found.disks)
            if (await hashable(d.path, `disk ${d.target}`))
                disks.push(d);
        return { config: configDigest(xml), boot, disks, unsupported };
    }
    /** Hashes files with their cached previous digests and refreshes the cache. */
    async hashAll(paths) {
        const unique = [...new Set(paths)];
        const results = await Promise.all(unique.map(async (path) => {
            try {
                const previous = await this.store.cachedDigest(path);
                return { ok: true, file: await this.engine.hashFile(path, { previous }) };
            }
            catch (e) {
                return { ok: false, path, ...errorReason(e) };
            }
        }));
        const files = results.filter((r) => r.ok).map((r) => r.file);
        await this.store.cacheDigests(files, this.now());
        for (const r of results)
            if (!r.ok && r.missing)
                await this.store.forgetDigest(r.path);
        return new Map(unique.map((p, i) => [p, results[i]]));
    }
    async signNow(uuid, replace) {
        const dom = await this.domain(uuid);
        const existing = await this.store.getSignature(uuid);
        if (existing && !replace)
            throw new AlreadySignedError(uuid);
        const cov = await this.coverage(uuid);
        const seal = dom.state === 'shut off';
        const hashed = await this.hashAll([
            ...cov.boot.map((b) => b.path),
            ...(seal ? cov.disks.map((d) => d.path) : []),
        ]);
        const problems = [];
        const files = [];
        const boot = [];
        for (const a of cov.boot) {
            const r = hashed.get(a.path);
            if (!r.ok)
                problems.push({ path: a.path, reason: r.reason });
            else {
                files.push(r.file);
                boot.push({ role: a.role, path: a.path, size: r.file.size, digest: fileDigest(r.file.digest) });
            }
        }
        // The instance may have started while its disks were being read: then they are in use.
        const stillOff = seal && (await this.hv.getDomain(uuid))?.state === 'shut off';
        const now = this.now();
        const disks = [];
        for (const d of cov.disks) {
            if (!stillOff) {
                disks.push({ target: d.target, path: d.path, state: 'in-use' });
                continue;
            }
            const r = hashed.get(d.path);
            if (!r.ok)
                problems.push({ path: d.path, reason: r.reason });
            else {
                files.push(r.file);
                disks.push({
                    target: d.target,
                    path: d.path,
                    size: r.file.size,
                    digest: fileDigest(r.file.digest),
                    sealedAt: now,
                });
            }
        }
        if (problems.length)
            throw new ArtifactError(uuid, problems);
        const manifest = {
            version: 1,
            serverId: dom.uuid,
            instanceName: dom.name,
            node: this.node,
            createdAt: now,
            config: { digest: cov.config },
            boot,
            disks,
        };
        if (cov.unsupported.length)
            manifest.unsupported = cov.unsupported;
        const stored = {
            serverId: dom.uuid,
            instanceName: dom.name,
            manifest,
            signature: this.key.sign(manifest),
            createdAt: existing?.createdAt ?? now,
            updatedAt: existing ? now : null,
            lastVerdict: 'true',
            lastVerifiedAt: now,
        };
        if (!(await this.store.putSignature(stored, files, { replace })))
            throw new AlreadySignedError(uuid);
        return toRecord(stored);
    }
    async verifyNow(uuid) {
        const t0 = performance.now();
        const dom = await this.domain(uuid);
        const baseline = await this.store.getSignature(uuid);
        if (!baseline)
            return { serverId: uuid, isValid: 'unknown', checkedAt: this.now(), differences: [] };
        const m = baseline.manifest;
        const differences = [];
        const skipped = [];
        const cov = await this.coverage(uuid);
        if (cov.config !== m.config.digest) {
            differences.push({ component: 'config', expected: m.config.digest, actual: cov.config });
        }
        const known = new Set(m.boot.map((b) => b.path));
        const extra = cov.boot.filter((b) => !known.has(b.path));
        const sealedNow = dom.state === 'shut off';
        const sealed = m.disks.filter(isSealed);
        for (const d of m.disks) {
            if (!sealedNow)
                skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'in-use' });
            else if (!isSealed(d))
                skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'not-sealed' });
        }
        const diskPaths = sealedNow ? sealed.map((d) => d.path) : [];
        const hashed = await this.hashAll([
            ...m.boot.map((b) => b.path),
            ...extra.map((b) => b.path),
            ...diskPaths,
        ]);
        for (const b of m.boot) {
            const diff = await this.compare(uuid, b.path, b.digest, hashed.get(b.path));
            if (diff)
                differences.push({ component: 'boot', role: b.role, ...diff });
        }
        for (const b of extra) {
            const r = hashed.get(b.path);
            differences.push({
                component: 'boot',
                role: b.role,
                path: b.path,
                ...(r.ok ? { actual: fileDigest(r.file.digest) } : {}),
                reason: 'not in baseline',
            });
        }
        if (sealedNow) {
            // Started while we were reading? Then its disks are in use, not tampered.
            const stillOff = (await this.hv.getDomain(uuid))?.state === 'shut off';
            for (const d of sealed) {
                if (!stillOff) {
                    skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'in-use' });
                    continue;
                }
                const diff = await this.compare(uuid, d.path, d.digest, hashed.get(d.path));
                if (diff)
                    differences.push({ component: 'disk', target: d.target, ...diff });
            }
        }
        const results = [...hashed.values()].filter((r) => r.ok);
        const verdict = {
            serverId: uuid,
            isValid: differences.length ? 'false' : 'true',
            checkedAt: this.now(),
            differences,
            stats: {
                files: results.length,
                reused: results.filter((r) => r.file.reused).length,
                bytesRead: results.reduce((n, r) => n + r.file.stats.bytesRead, 0),
                ms: Math.round((performance.now() - t0) * 1000) / 1000,
            },
        };
        if (skipped.length)
            verdict.skipped = skipped;
        await this.store.recordVerdict(uuid, verdict.isValid, verdict.checkedAt);
        return verdict;
    }
    /** undefined when the file still has the expected digest. */
    async compare(uuid, path, expected, r) {
        if (!r.ok)
            return { path, expected, reason: r.reason };
        const actual = fileDigest(r.file.digest);
        if (actual === expected)
            return undefined;
        const diff = { path, expected, actual };
        const base = await this.store.baselineFile(uuid, path);
        if (base && fileDigest(base.digest) === expected && base.chunkSize === r.file.chunkSize) {
            diff.chunks = diffChunks({ ...r.file, chunks: base.chunks }, r.file);
        }
        if (base && base.size !== r.file.size)
            diff.reason = `size changed from ${base.size} to ${r.file.size}`;
        return diff;
    }
    async sealNow(uuid) {
        const dom = await this.domain(uuid);
        const baseline = await this.store.getSignature(uuid);
        if (!baseline)
            throw new NotSignedError(uuid);
        if (dom.state !== 'shut off')
            throw new DomainStateError(uuid, dom.state);
        const m = baseline.manifest;
        const hashed = await this.hashAll(m.disks.map((d) => d.path));
        if ((await this.hv.getDomain(uuid))?.state !== 'shut off')
            throw new DomainStateError(uuid, 'running');
        const now = this.now();
        const problems = [];
        const files = [];
        const disks = [];
        for (const d of m.disks) {
            const r = hashed.get(d.path);
            if (!r.ok)
                problems.push({ path: d.path, reason: r.reason });
            else {
                files.push(r.file);
                disks.push({
                    target: d.target,
                    path: d.path,
                    size: r.file.size,
                    digest: fileDigest(r.file.digest),
                    sealedAt: now,
                });
            }
        }
        if (problems.length)
            throw new ArtifactError(uuid, problems);
        const manifest = { ...m, disks };
        const signature = this.key.sign(manifest);
        await this.store.updateManifest(uuid, manifest, signature, now, files);
        return toRecord({ ...baseline, manifest, signature, updatedAt: now });
    }
}
function toRecord(s) {
    return {
        serverId: s.serverId,
        instanceName: s.instanceName,
        manifest: s.manifest,
        signature: s.signature,
        createdAt: s.createdAt,
        updatedAt: s.updatedAt,
        lastVerdict: s.lastVerdict,
        lastVerifiedAt: s.lastVerifiedAt,
    };
}
//# sourceMappingURL=service.js.map