// The agent's local SQLite: signature baselines, the file digest cache that lets the fast re-check
// survive restarts, and node state. Works without the controller.
import { Database, type Tx } from '../../../lib/store/database.js';
import { migrate } from '../../../lib/store/migrations.js';
import { algorithmOf, type FileDigest } from '../signature/hashing/engine.js';
import { chunkDigestsHex, isDigestAlgorithm, type DigestAlgorithm } from '../signature/hashing/digest.js';
import type { FileIdentity } from '../signature/hashing/identity.js';
import type { Manifest } from '../signature/manifest.js';
import { agentMigrations } from './migrations.js';

export type VerdictValue = 'true' | 'false' | 'unknown';

export interface StoredSignature {
  serverId: string;
  instanceName: string;
  manifest: Manifest;
  signature: string;
  createdAt: string;
  updatedAt: string | null;
  lastVerdict: VerdictValue;
  lastVerifiedAt: string | null;
}

/** Chunk list of a file as it was when the baseline was taken (for naming changed chunks). */
export interface BaselineFile {
  path: string;
  digest: string;
  size: number;
  chunkSize: number;
  algorithm: DigestAlgorithm;
  chunks: string[];
}

interface SignatureRow {
  server_id: string;
  instance_name: string;
  manifest: string;
  signature: string;
  created_at: string;
  updated_at: string | null;
  last_verdict: VerdictValue;
  last_verified_at: string | null;
}

interface DigestRow {
  path: string;
  identity: string;
  digest: string;
  size: number;
  chunk_size: number;
  algorithm: string;
  chunks: Buffer;
  stable: number;
}

const algorithmColumn = (v: string): DigestAlgorithm => (isDigestAlgorithm(v) ? v : 'sha256');

/** 32-byte digests back to back. */
export function packChunks(chunks: string[]): Buffer {
  return Buffer.from(chunks.join(''), 'hex');
}

export function unpackChunks(blob: Buffer | Uint8Array | null): string[] {
  return blob ? chunkDigestsHex(blob) : [];
}

function toSignature(r: SignatureRow): StoredSignature {
  return {
    serverId: r.server_id,
    instanceName: r.instance_name,
    manifest: JSON.parse(r.manifest) as Manifest,
    signature: r.signature,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastVerdict: r.last_verdict,
    lastVerifiedAt: r.last_verified_at,
  };
}

export class AgentStore {
  private constructor(readonly db: Database) {}

  static async open(path: string): Promise<AgentStore> {
    const db = await Database.open(path);
    await migrate(db, agentMigrations);
    return new AgentStore(db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // --- signatures ---

  async getSignature(serverId: string): Promise<StoredSignature | undefined> {
    const r = await this.db.get<SignatureRow>('SELECT * FROM signatures WHERE server_id = ?', [serverId]);
    return r && toSignature(r);
  }

  async listSignatures(): Promise<StoredSignature[]> {
    const rows = await this.db.all<SignatureRow>(
      'SELECT * FROM signatures ORDER BY instance_name, server_id',
    );
    return rows.map(toSignature);
  }

  /**
   * Stores a baseline with the chunk lists of the files it covers. With `replace` false the insert
   * fails (returns false) when a baseline exists; otherwise the old baseline files are replaced.
   */
  async putSignature(
    sig: StoredSignature,
    files: FileDigest[],
    opts: { replace: boolean },
  ): Promise<boolean> {
    return this.db.write(async (tx) => {
      const exists = await tx.get('SELECT 1 AS x FROM signatures WHERE server_id = ?', [sig.serverId]);
      if (exists && !opts.replace) return false;
      await tx.run(
        `INSERT INTO signatures (server_id, instance_name, manifest, signature, created_at, updated_at, last_verdict, last_verified_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (server_id) DO UPDATE SET instance_name = excluded.instance_name, manifest = excluded.manifest,
           signature = excluded.signature, created_at = excluded.created_at, updated_at = excluded.updated_at,
           last_verdict = excluded.last_verdict, last_verified_at = excluded.last_verified_at`,
        [
          sig.serverId,
          sig.instanceName,
          JSON.stringify(sig.manifest),
          sig.signature,
          sig.createdAt,
          sig.updatedAt,
          sig.lastVerdict,
          sig.lastVerifiedAt,
        ],
      );
      await tx.run('DELETE FROM baseline_files WHERE server_id = ?', [sig.serverId]);
      await insertBaselineFiles(tx, sig.serverId, files);
      return true;
    });
  }

  /** Replaces the manifest of an existing baseline (e.g. disks sealed) and adds baseline files. */
  async updateManifest(
    serverId: string,
    manifest: Manifest,
    signature: string,
    updatedAt: string,
    files: FileDigest[],
  ): Promise<void> {
    await this.db.write(async (tx) => {
      const r = await tx.run(
        'UPDATE signatures SET manifest = ?, signature = ?, updated_at = ? WHERE server_id = ?',
        [JSON.stringify(manifest), signature, updatedAt, serverId],
      );
      if (r.changes === 0) throw new Error(`no baseline for ${serverId}`);
      await insertBaselineFiles(tx, serverId, files);
    });
  }

  async deleteSignature(serverId: string): Promise<boolean> {
    const r = await this.db.run('DELETE FROM signatures WHERE server_id = ?', [serverId]);
    return r.changes > 0;
  }

  async recordVerdict(serverId: string, verdict: VerdictValue, at: string): Promise<void> {
    await this.db.run('UPDATE signatures SET last_verdict = ?, last_verified_at = ? WHERE server_id = ?', [
      verdict,
      at,
      serverId,
    ]);
  }

  /** Every verdict back to 'unknown' (validation activated: nothing is checked yet). */
  async resetVerdicts(): Promise<void> {
    await this.db.run("UPDATE signatures SET last_verdict = 'unknown', last_verified_at = NULL");
  }

  async baselineFile(serverId: string, path: string): Promise<BaselineFile | undefined> {
    const r = await this.db.get<{
      path: string;
      digest: string;
      size: number;
      chunk_size: number;
      algorithm: string;
      chunks: Buffer;
    }>(
      'SELECT path, digest, size, chunk_size, algorithm, chunks FROM baseline_files WHERE server_id = ? AND path = ?',
      [serverId, path],
    );
    return (
      r && {
        path: r.path,
        digest: r.digest,
        size: r.size,
        chunkSize: r.chunk_size,
        algorithm: algorithmColumn(r.algorithm),
        chunks: unpackChunks(r.chunks),
      }
    );
  }

  // --- file digest cache ---

  async cachedDigest(path: string): Promise<FileDigest | undefined> {
    const r = await this.db.get<DigestRow>('SELECT * FROM file_digests WHERE path = ?', [path]);
    if (!r) return undefined;
    return {
      path: r.path,
      size: r.size,
      chunkSize: r.chunk_size,
      algorithm: algorithmColumn(r.algorithm),
      digest: r.digest,
      chunks: unpackChunks(r.chunks),
      identity: JSON.parse(r.identity) as FileIdentity,
      reused: false,
      stable: r.stable === 1,
      stats: { bytesRead: 0, holeChunks: 0, zeroChunks: 0, ms: 0 },
    };
  }

  /** Remembers freshly hashed files (results reused from the cache are skipped). */
  async cacheDigests(files: FileDigest[], at: string): Promise<void> {
    const fresh = files.filter((f) => !f.reused);
    if (fresh.length === 0) return;
    await this.db.write(async (tx) => {
      for (const f of fresh) {
        await tx.run(
          `INSERT INTO file_digests (path, identity, digest, size, chunk_size, algorithm, chunks, stable, hashed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (path) DO UPDATE SET identity = excluded.identity, digest = excluded.digest, size = excluded.size,
             chunk_size = excluded.chunk_size, algorithm = excluded.algorithm, chunks = excluded.chunks,
             stable = excluded.stable, hashed_at = excluded.hashed_at`,
          [
            f.path,
            JSON.stringify(f.identity),
            f.digest,
            f.size,
            f.chunkSize,
            algorithmOf(f),
            packChunks(f.chunks),
            f.stable ? 1 : 0,
            at,
          ],
        );
      }
    });
  }

  async forgetDigest(path: string): Promise<void> {
    await this.db.run('DELETE FROM file_digests WHERE path = ?', [path]);
  }

  // --- node state ---

  async validation(): Promise<{ active: boolean; since: string | null }> {
    const r = await this.db.get<{ validation_active: number; validation_since: string | null }>(
      'SELECT validation_active, validation_since FROM node_state WHERE id = 1',
    );
    return {
      active: r?.validation_active === 1,
      since: r?.validation_active === 1 ? (r.validation_since ?? null) : null,
    };
  }

  /** Returns true when the state changed. Turning validation on resets every verdict to 'unknown'. */
  async setValidation(active: boolean, at: string): Promise<boolean> {
    return this.db.write(async (tx) => {
      const r = await tx.get<{ validation_active: number }>(
        'SELECT validation_active FROM node_state WHERE id = 1',
      );
      if ((r?.validation_active === 1) === active) return false;
      await tx.run('UPDATE node_state SET validation_active = ?, validation_since = ? WHERE id = 1', [
        active ? 1 : 0,
        active ? at : null,
      ]);
      if (active) await tx.run("UPDATE signatures SET last_verdict = 'unknown', last_verified_at = NULL");
      return true;
    });
  }
}

async function insertBaselineFiles(tx: Tx, serverId: string, files: FileDigest[]): Promise<void> {
  for (const f of files) {
    await tx.run(
      `INSERT INTO baseline_files (server_id, path, digest, size, chunk_size, algorithm, chunks)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (server_id, path) DO UPDATE SET digest = excluded.digest, size = excluded.size,
         chunk_size = excluded.chunk_size, algorithm = excluded.algorithm, chunks = excluded.chunks`,
      [serverId, f.path, f.digest, f.size, f.chunkSize, algorithmOf(f), packChunks(f.chunks)],
    );
  }
}
