/**
 * Values as SQL literals, for the one place statements are sent without bound parameters (a whole
 * group commit in one `exec`, see JobTx). Nothing can break out of its place: text is quoted with
 * SQLite's only escape (`'` doubled; there are no backslash escapes), text containing NUL (which would
 * end the C string the script is passed as) goes as hex bytes (`CAST(X'…' AS TEXT)`), numbers must be
 * finite, anything else is refused.
 */
export function sqlLiteral(v: unknown): string {
  switch (typeof v) {
    case 'string':
      if (v.includes('\0')) return `CAST(X'${Buffer.from(v, 'utf8').toString('hex')}' AS TEXT)`;
      return `'${v.replaceAll("'", "''")}'`;
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`not a finite number: ${v}`);
      return String(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? '1' : '0';
    case 'undefined':
      return 'NULL';
    case 'object':
      if (v === null) return 'NULL';
      if (v instanceof Uint8Array)
        return `X'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'`;
  }
  throw new TypeError(`no SQL literal for a ${typeof v}`);
}

/** `head (row literal), (row literal), …` for a multi-row INSERT. */
export function insertScript(head: string, rows: unknown[][]): string {
  return `${head} ${rows.map((r) => `(${r.map(sqlLiteral).join(', ')})`).join(', ')}`;
}

/**
 * The same for PostgreSQL (its group commit in one simple-protocol query, see PostgresDatabase). Text
 * holding a backslash goes as an escape string (`E'…'`, backslashes doubled), so it reads the same
 * whatever standard_conforming_strings says; text holding NUL (which PostgreSQL's text cannot hold)
 * goes as its UTF-8 bytes converted on the server, which fails there as a bound parameter would (the
 * job is then sent again with bound parameters, for the exact error); bytes go as `decode(hex)`.
 */
export function pgLiteral(v: unknown): string {
  if (typeof v === 'string') {
    if (v.includes('\0'))
      return `convert_from(decode('${Buffer.from(v, 'utf8').toString('hex')}', 'hex'), 'UTF8')`;
    const quoted = v.replaceAll("'", "''");
    return v.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
  }
  if (v instanceof Uint8Array)
    return `decode('${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}', 'hex')`;
  return sqlLiteral(v);
}

/** `head (row literal), …` in PostgreSQL's literals. */
export function pgInsertScript(head: string, rows: unknown[][]): string {
  return `${head} ${rows.map((r) => `(${r.map(pgLiteral).join(', ')})`).join(', ')}`;
}
