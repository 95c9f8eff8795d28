/**
 * @store once (starts its own PostgreSQL) — PostgreSQL's group commit of appended rows, sent as ONE
 * script with the values as literals (BEGIN, the INSERTs, COMMIT): any text comes back exactly
 * (nothing in it is SQL or a placeholder); such a job does not wait for the cluster-wide write lock
 * (it reads nothing) while a job that runs a statement does; a row PostgreSQL cannot store fails the
 * job with PostgreSQL's own error, nothing written.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../helpers/postgres.js';
import { openDatabase, type Database } from '../../../lib/store/database.js';
import { pgLiteral } from '../../../lib/store/sql-literal.js';
import { cleanUp } from '../../helpers/cleanup.js';
import { sleep, watchdog } from '../../helpers/wait.js';

watchdog(120);

const WRITE_LOCK = 0x766d77;
const HEAD = 'INSERT INTO lit (t, n, i, b, s) VALUES';
const ROW = '(?, ?, ?, ?, ?)';

let cluster: PgCluster;
let url: string;
let db: Database;

test.before(async () => {
  cluster = startPostgres();
  url = await cluster.createDatabase('lit');
  db = await openDatabase(url);
  await db.exec(
    'CREATE TABLE lit (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, n REAL, i INTEGER, b BLOB, s TEXT)',
  );
});
test.after(() => cleanUp({ db: () => db?.close(), pg: () => cluster?.stop() }));
test.before.each(async () => {
  await db.run('DELETE FROM lit');
});

test('appended rows: text of any content, numbers, 64-bit integers and bytes come back exactly', async () => {
  const texts = [
    '',
    "it's",
    "'); DROP TABLE lit; --",
    'a ? b $1 $2',
    '\\n not an escape \\',
    "\\'); SELECT 1; --",
    "E'\\\\'",
    'naïve ☃ 🎉',
    "''''",
    'x'.repeat(10_000),
  ];
  const rows = texts.map((t, k) => [
    t,
    k === 0 ? -1.5e-7 : k * 1.25,
    BigInt(2) ** BigInt(62) + BigInt(k),
    Buffer.from([0, k, 255, 92, 39]),
    k, // a number into a TEXT column, as with bound parameters
  ]);
  await db.write(async (tx) => {
    for (const r of rows) tx.append(HEAD, ROW, r);
  });
  const back = await db.all<{ t: string; n: number; i: string; b: Buffer; s: string }>(
    'SELECT t, n, CAST(i AS TEXT) AS i, b, s FROM lit ORDER BY id',
  );
  assert.equal(
    back.map((r) => r.t),
    texts,
  );
  assert.equal(
    back.map((r) => r.n),
    rows.map((r) => r[1]),
  );
  assert.equal(
    back.map((r) => r.i),
    rows.map((r) => String(r[2])),
  );
  assert.ok(back.every((r, k) => r.b.equals(rows[k]![3] as Buffer)));
  assert.equal(
    back.map((r) => r.s),
    rows.map((r) => String(r[4])),
  );
  assert.is(pgLiteral('a\\b'), "E'a\\\\b'");
  assert.is(pgLiteral("a'b"), "'a''b'");
});

test('an append-only job commits while another holds the write lock; a job with a statement waits for it', async () => {
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    await other.query('SELECT pg_advisory_lock($1)', [WRITE_LOCK]);
    // Appends only: no lock, committed (and visible) before its promise settles.
    await db.write(async (tx) => {
      tx.append(HEAD, ROW, ['appended', 1, 1, null, null]);
    });
    assert.equal((await other.query("SELECT t FROM lit WHERE t = 'appended'")).rows, [{ t: 'appended' }]);
    // A statement: it waits for the lock; nothing is visible until it commits.
    let settled = false;
    const job = db
      .write(async (tx) => {
        await tx.run(`${HEAD} ${ROW}`, ['locked out', 2, 2, null, null]);
      })
      .then(() => (settled = true));
    await sleep(300);
    assert.is(settled, false, 'committed while another controller held the write lock');
    assert.is((await other.query("SELECT count(*)::int AS n FROM lit WHERE t = 'locked out'")).rows[0].n, 0);
    await other.query('SELECT pg_advisory_unlock($1)', [WRITE_LOCK]);
    await job;
    assert.is((await other.query("SELECT count(*)::int AS n FROM lit WHERE t = 'locked out'")).rows[0].n, 1);
  } finally {
    await other.end();
  }
});

test('a row PostgreSQL cannot store (text with NUL) fails the job with its error; nothing written', async () => {
  const err = await db
    .write(async (tx) => {
      tx.append(HEAD, ROW, ['fine', 1, 1, null, null]);
      tx.append(HEAD, ROW, ['a\u0000b', 2, 2, null, null]);
    })
    .then(
      () => undefined,
      (e: Error) => e,
    );
  assert.ok(err, 'the job succeeded');
  assert.match(String(err!.message), /0x00|null character|invalid byte sequence/i);
  assert.equal(await db.all('SELECT t FROM lit'), []);
  // The connection is usable afterwards (the failed script was rolled back).
  await db.write(async (tx) => {
    tx.append(HEAD, ROW, ['after', 3, 3, null, null]);
  });
  assert.equal(await db.all('SELECT t FROM lit'), [{ t: 'after' }]);
});

test.run();
