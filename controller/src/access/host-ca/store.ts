import type { Database } from '../../../../lib/store/database.js';
import type { CaKeyRows } from '../authority.js';
import { toCa, type NewCa } from '../store.js';

/** A host certificate the host CA signed: for an instance (through its node's agent) or by an admin. */
export interface HostCertificateRecord {
  id: string;
  serial: bigint;
  /** The instance it was signed for; null for a host outside libvirt (admin route). */
  serverId: string | null;
  /** The node whose agent asked; null when an admin did. */
  nodeId: number | null;
  principals: string[];
  publicKeyFingerprint: string;
  caId: number;
  validBefore: string;
  issuedAt: string;
}

/** The host CA's keys (ssh_host_cas, same lifecycle as ssh_cas but no KRL) and its certificates. */
export class HostCaStore implements CaKeyRows {
  constructor(private readonly db: Database) {}

  async listCas() {
    return (await this.db.all<Record<string, unknown>>('SELECT * FROM ssh_host_cas ORDER BY id')).map(toCa);
  }

  addActiveCa(ca: NewCa, onlyIfNone = false) {
    return this.db.write(async (tx) => {
      if (onlyIfNone && (await tx.get("SELECT id FROM ssh_host_cas WHERE status = 'active'")))
        return undefined;
      await tx.run("UPDATE ssh_host_cas SET status = 'trusted' WHERE status = 'active'");
      const r = await tx.get<{ id: number }>(
        `INSERT INTO ssh_host_cas (key_type, public_key, fingerprint, key_file, private_key_sealed, status, created_at)
         VALUES (?, ?, ?, '', ?, 'active', ?) RETURNING id`,
        [ca.keyType, ca.publicKey, ca.fingerprint, ca.sealedKey, ca.createdAt],
      );
      return r!.id;
    });
  }

  /** Host CA rows are sealed from the start: there is no key file to import. */
  async sealCaKey() {
    return false;
  }

  async retireCa(id: number, at: string) {
    const r = await this.db.run(
      "UPDATE ssh_host_cas SET status = 'retired', retired_at = ? WHERE id = ? AND status = 'trusted'",
      [at, id],
    );
    return r.changes > 0;
  }

  async insertCertificates(certs: HostCertificateRecord[]): Promise<void> {
    if (certs.length === 0) return;
    await this.db.write(async (tx) => {
      for (const c of certs)
        await tx.run(
          `INSERT INTO host_certificates (id, serial, server_id, node_id, principals, public_key_fingerprint, ca_id, valid_before, issued_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            c.id,
            c.serial.toString(),
            c.serverId,
            c.nodeId,
            JSON.stringify(c.principals),
            c.publicKeyFingerprint,
            c.caId,
            c.validBefore,
            c.issuedAt,
          ],
        );
    });
  }
}
