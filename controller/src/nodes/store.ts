import type { Database } from '../../../lib/store/database.js';
import type { Node } from './model.js';

type Row = Record<string, unknown>;
const toNode = (r: Row): Node => ({
  id: r.id as number,
  name: r.name as string,
  identityId: (r.identity_id as string) ?? null,
  tokenHash: (r.token_hash as string) ?? null,
  tokenExpiresAt: (r.token_expires_at as string) ?? null,
  enrolledAt: (r.enrolled_at as string) ?? null,
  publicKeyPem: (r.public_key_pem as string) ?? null,
  agentAddress: (r.agent_address as string) ?? null,
  hostname: (r.hostname as string) ?? null,
  libvirtUri: (r.libvirt_uri as string) ?? null,
  validationActive: r.validation_active === 1,
  lastSeenAt: (r.last_seen_at as string) ?? null,
  createdAt: r.created_at as string,
});

export class NodeStore {
  constructor(private readonly db: Database) {}

  async create(name: string, tokenHash: string, expiresAt: string, now: string): Promise<Node> {
    const id = await this.db.write(async (tx) => {
      const r = await tx.get<{ id: number }>(
        'INSERT INTO nodes (name, token_hash, token_expires_at, created_at) VALUES (?, ?, ?, ?) RETURNING id',
        [name, tokenHash, expiresAt, now],
      );
      return r!.id;
    });
    return (await this.get(id))!;
  }

  async get(id: number) {
    const r = await this.db.get<Row>('SELECT * FROM nodes WHERE id = ?', [id]);
    return r && toNode(r);
  }

  async byName(name: string) {
    const r = await this.db.get<Row>('SELECT * FROM nodes WHERE name = ?', [name]);
    return r && toNode(r);
  }

  async byTokenHash(hash: string) {
    const r = await this.db.get<Row>('SELECT * FROM nodes WHERE token_hash = ?', [hash]);
    return r && toNode(r);
  }

  async byIdentity(identityId: string) {
    const r = await this.db.get<Row>('SELECT * FROM nodes WHERE identity_id = ?', [identityId]);
    return r && toNode(r);
  }

  async list(): Promise<Node[]> {
    return (await this.db.all<Row>('SELECT * FROM nodes ORDER BY id')).map(toNode);
  }

  /** Consumes the one-time token: succeeds only for the first caller. */
  async completeEnrollment(
    id: number,
    tokenHash: string,
    e: { identityId: string; publicKeyPem: string; agentAddress: string; hostname: string; at: string },
  ): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE nodes SET token_hash = NULL, token_expires_at = NULL, identity_id = ?, public_key_pem = ?,
         agent_address = ?, hostname = ?, enrolled_at = ?, last_seen_at = ? WHERE id = ? AND token_hash = ?`,
      [e.identityId, e.publicKeyPem, e.agentAddress, e.hostname, e.at, e.at, id, tokenHash],
    );
    return r.changes > 0;
  }

  async seen(
    id: number,
    s: { agentAddress: string; validationActive: boolean; libvirtUri: string; at: string },
  ) {
    await this.db.run(
      'UPDATE nodes SET agent_address = ?, validation_active = ?, libvirt_uri = ?, last_seen_at = ? WHERE id = ?',
      [s.agentAddress, s.validationActive ? 1 : 0, s.libvirtUri, s.at, id],
    );
  }

  async setValidation(id: number, active: boolean) {
    await this.db.run('UPDATE nodes SET validation_active = ? WHERE id = ?', [active ? 1 : 0, id]);
  }
}
