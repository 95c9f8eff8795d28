import type { Database } from '../../../lib/store/database.js';

/** The tick a cron run belongs to: its scheduled minute, as ISO text (sorts like time). */
export function minuteTick(at: Date): string {
  const d = new Date(at.getTime());
  d.setUTCSeconds(0, 0);
  return d.toISOString();
}

/**
 * Every controller schedules the same cron jobs; the first to claim a job's tick runs it, the others
 * skip it. One write job (writes are serialized across the cluster), so exactly one claimer sees its
 * UPDATE change the row. A later tick is claimable again; a tick older than the last run never is.
 */
export async function claimTick(db: Database, name: string, tick: string): Promise<boolean> {
  return db.write(async (tx) => {
    await tx.run(
      'INSERT INTO cluster_jobs (name, last_tick) VALUES (?, NULL) ON CONFLICT (name) DO NOTHING',
      [name],
    );
    const r = await tx.run(
      'UPDATE cluster_jobs SET last_tick = ? WHERE name = ? AND (last_tick IS NULL OR last_tick < ?)',
      [tick, name, tick],
    );
    return r.changes === 1;
  });
}

/** Runs job for this tick if no other controller has; errors are the job's to report (swallowed here). */
export async function runOncePerTick(
  db: Database,
  name: string,
  scheduledAt: Date,
  job: () => Promise<unknown>,
): Promise<boolean> {
  if (!(await claimTick(db, name, minuteTick(scheduledAt)))) return false;
  await job();
  return true;
}
