// Rows of seal_trust: per qcow2 disk, the image identity right after its last seal (bitmap just
// reset) and how far the instance got since: 'sealed' → 'starting' (the start check verified it)
// → 'running' (libvirt reported it started). `epoch` names the agent run that watched it.
import type { Database } from '../../../lib/store/database.js';
import type { FileIdentity } from '../signature/hashing/identity.js';

export type SealTrustState = 'sealed' | 'starting' | 'running';

export interface SealTrust {
  path: string;
  serverId: string;
  sealedIdentity: FileIdentity;
  state: SealTrustState;
  epoch: string;
  changedAt: string;
}

interface Row {
  path: string;
  server_id: string;
  sealed_identity: string;
  state: SealTrustState;
  epoch: string;
  changed_at: string;
}

const fromRow = (r: Row): SealTrust => ({
  path: r.path,
  serverId: r.server_id,
  sealedIdentity: JSON.parse(r.sealed_identity) as FileIdentity,
  state: r.state,
  epoch: r.epoch,
  changedAt: r.changed_at,
});

export class SealTrustStore {
  constructor(private readonly db: Database) {}

  async get(path: string): Promise<SealTrust | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM seal_trust WHERE path = ?', [path]);
    return r && fromRow(r);
  }

  async ofInstance(serverId: string): Promise<SealTrust[]> {
    const rows = await this.db.all<Row>('SELECT * FROM seal_trust WHERE server_id = ? ORDER BY path', [
      serverId,
    ]);
    return rows.map(fromRow);
  }

  async put(t: SealTrust): Promise<void> {
    await this.db.run(
      `INSERT INTO seal_trust (path, server_id, sealed_identity, state, epoch, changed_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET server_id = excluded.server_id, sealed_identity = excluded.sealed_identity,
         state = excluded.state, epoch = excluded.epoch, changed_at = excluded.changed_at`,
      [t.path, t.serverId, JSON.stringify(t.sealedIdentity), t.state, t.epoch, t.changedAt],
    );
  }

  async setState(path: string, state: SealTrustState, epoch: string, at: string): Promise<void> {
    await this.db.run('UPDATE seal_trust SET state = ?, epoch = ?, changed_at = ? WHERE path = ?', [
      state,
      epoch,
      at,
      path,
    ]);
  }

  async forget(path: string): Promise<void> {
    await this.db.run('DELETE FROM seal_trust WHERE path = ?', [path]);
  }
}
