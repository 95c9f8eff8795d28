/** A store that refuses audit writes, for the fail-closed tests: the real failure path, no hook in the code. */

/** Makes the database refuse every write to the audit table (a trigger); the returned function lifts it. */
export async function refuseAuditWrites(db: {
  exec(sql: string): Promise<unknown>;
}): Promise<() => Promise<void>> {
  await db.exec(
    "CREATE TRIGGER audit_off BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit disabled'); END",
  );
  return async () => {
    await db.exec('DROP TRIGGER audit_off');
  };
}
