import type { Database } from '../../../lib/store/database.js';
import type { GuestTrustStatus } from './model.js';

interface Row {
  server_id: string;
  node_id: number;
  state: string;
  ca_fingerprints: string;
  krl_version: number;
  last_success: string | null;
  last_error: string | null;
  login_user: string;
  transport: string;
  reported_at: string;
}

const UPSERT = `INSERT INTO guest_trust_status (server_id, node_id, state, ca_fingerprints, krl_version, last_success,
  last_error, login_user, transport, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (server_id) DO UPDATE SET node_id = excluded.node_id, state = excluded.state,
  ca_fingerprints = excluded.ca_fingerprints, krl_version = excluded.krl_version,
  last_success = excluded.last_success, last_error = excluded.last_error, login_user = excluded.login_user,
  transport = excluded.transport, reported_at = excluded.reported_at`;

/** The per-instance trust statuses agents report (one row per instance, the latest report). */
export class GuestTrustStore {
  constructor(private readonly db: Database) {}

  /** One report's statuses in one transaction. */
  async save(statuses: GuestTrustStatus[]): Promise<void> {
    if (!statuses.length) return;
    await this.db.write(async (tx) => {
      for (const s of statuses)
        await tx.run(UPSERT, [
          s.serverId,
          s.nodeId,
          s.state,
          JSON.stringify(s.caFingerprints),
          s.krlVersion,
          s.lastSuccess,
          s.lastError,
          s.loginUser,
          s.transport,
          s.reportedAt,
        ]);
    });
  }

  async get(serverId: string): Promise<GuestTrustStatus | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM guest_trust_status WHERE server_id = ?', [serverId]);
    if (!r) return undefined;
    return {
      serverId: r.server_id,
      nodeId: r.node_id,
      state: r.state,
      caFingerprints: JSON.parse(r.ca_fingerprints) as string[],
      krlVersion: r.krl_version,
      lastSuccess: r.last_success,
      lastError: r.last_error,
      loginUser: r.login_user,
      transport: r.transport,
      reportedAt: r.reported_at,
    };
  }
}
