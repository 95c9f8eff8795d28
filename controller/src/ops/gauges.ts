import type { Metrics } from './metrics.js';

/** What the gauges of /metrics read at scrape time, each from the concern that owns it. */
export interface GaugeSources {
  accessSessions: { countActive(): Promise<number> };
  sessions: { count(): Promise<number> };
  access: { countByStatus(): Promise<Array<{ status: string; count: number }>> };
  sign: { countByVerdict(): Promise<Array<{ verdict: string; count: number }>> };
}

export function storeGauges(metrics: Metrics, from: GaugeSources): void {
  metrics.addGauge({
    name: 'vmwarden_ssh_sessions_active',
    help: 'SSH sessions reported as started and not yet ended.',
    collect: async () => [{ labels: {}, value: await from.accessSessions.countActive() }],
  });
  metrics.addGauge({
    name: 'vmwarden_api_sessions',
    help: 'API sessions in the store (idle ones are swept every minute).',
    collect: async () => [{ labels: {}, value: await from.sessions.count() }],
  });
  metrics.addGauge({
    name: 'vmwarden_certificates',
    help: 'SSH certificates in the store, by status.',
    labelNames: ['status'],
    collect: async () =>
      (await from.access.countByStatus()).map((r) => ({ labels: { status: r.status }, value: r.count })),
  });
  metrics.addGauge({
    name: 'vmwarden_signatures',
    help: "Signatures in the catalogue, by verdict (is_valid: 'true', 'false', 'unknown').",
    labelNames: ['is_valid'],
    collect: async () => {
      const rows = await from.sign.countByVerdict();
      return ['true', 'false', 'unknown'].map((v) => ({
        labels: { is_valid: v },
        value: rows.find((r) => r.verdict === v)?.count ?? 0,
      }));
    },
  });
}
