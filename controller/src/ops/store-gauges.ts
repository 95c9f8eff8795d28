import type { Database } from '../../../lib/store/database.js';
import type { Metrics } from './metrics.js';

/** The gauges of /metrics that are read from the store at scrape time. */
export function storeGauges(metrics: Metrics, db: Database): void {
  metrics.addGauge({
    name: 'vmwarden_ssh_sessions_active',
    help: 'SSH sessions reported as started and not yet ended.',
    collect: async () => [
      {
        labels: {},
        value: (await db.get<{ n: number }>(
          "SELECT count(*) AS n FROM access_sessions WHERE status = 'ACTIVE'",
        ))!.n,
      },
    ],
  });
  metrics.addGauge({
    name: 'vmwarden_api_sessions',
    help: 'API sessions in the store (idle ones are swept every minute).',
    collect: async () => [
      { labels: {}, value: (await db.get<{ n: number }>('SELECT count(*) AS n FROM api_sessions'))!.n },
    ],
  });
  metrics.addGauge({
    name: 'vmwarden_certificates',
    help: 'SSH certificates in the store, by status.',
    collect: async () =>
      (
        await db.all<{ status: string; n: number }>(
          'SELECT status, count(*) AS n FROM certificates GROUP BY status',
        )
      ).map((r) => ({ labels: { status: r.status }, value: r.n })),
  });
  metrics.addGauge({
    name: 'vmwarden_signatures',
    help: "Signatures in the catalogue, by verdict (is_valid: 'true', 'false', 'unknown').",
    collect: async () => {
      const rows = await db.all<{ v: string; n: number }>(
        'SELECT is_valid AS v, count(*) AS n FROM signatures GROUP BY is_valid',
      );
      return ['true', 'false', 'unknown'].map((v) => ({
        labels: { is_valid: v },
        value: rows.find((r) => r.v === v)?.n ?? 0,
      }));
    },
  });
}
