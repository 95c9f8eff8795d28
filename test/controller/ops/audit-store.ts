/** A store that refuses audit writes, for the fail-closed tests: the real failure path, no hook in the code. */
import type { Database } from '../../../lib/store/database.js';

/** Makes the database refuse every write to the audit table (a trigger); the returned function lifts it. */
export async function refuseAuditWrites(
  db: Pick<Database, 'exec' | 'dialect'>,
): Promise<() => Promise<void>> {
  if (db.dialect === 'postgres') {
    await db.exec(
      "CREATE FUNCTION audit_off() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit disabled'; END $$; " +
        'CREATE TRIGGER audit_off BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_off()',
    );
    return async () => {
      await db.exec('DROP TRIGGER audit_off ON audit; DROP FUNCTION audit_off()');
    };
  }
  await db.exec(
    "CREATE TRIGGER audit_off BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit disabled'); END",
  );
  return async () => {
    await db.exec('DROP TRIGGER audit_off');
  };
}
