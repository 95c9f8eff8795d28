/**
 * @store once — about SQLite itself (round trips on its connections, WAL, literals); the behaviour
 * every store shares is in store-contract.test.ts, which runs on both.
 * The SQLite store: group commit (a job's promise settles after COMMIT; a failing job rolls back
 * alone), appended rows (one round trip for a job that only appends; exact errors when it fails),
 * and the SQL literals that round trip relies on.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../../../lib/store/database.js';
import { Connection } from '../../../lib/store/sqlite.js';
import { insertScript, sqlLiteral } from '../../../lib/store/sql-literal.js';
import { pooledRandomBytes, uuidv7 } from '../../../controller/src/platform/random.js';
import { sleep } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-store-'));
let db: Database;
const HEAD = 'INSERT INTO item (name, qty) VALUES';
const ROW = '(?, ?)';

/** Calls made to the writer connection (run / exec), to count round trips. */
const calls = { run: 0, exec: 0, get: 0 };
for (const m of ['run', 'exec', 'get'] as const) {
  const original = Connection.prototype[m] as (...a: unknown[]) => unknown;
  (Connection.prototype as unknown as Record<string, unknown>)[m] = function (
    this: unknown,
    ...a: unknown[]
  ) {
    calls[m]++;
    return original.apply(this, a);
  };
}
const resetCalls = () => Object.assign(calls, { run: 0, exec: 0, get: 0 });

const names = async () =>
  (await db.all<{ name: string }>('SELECT name FROM item ORDER BY id')).map((r) => r.name);

test.before(async () => {
  db = await Database.open(join(dir, 's.db'));
  await db.exec(
    'CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER CHECK (qty >= 0))',
  );
});
test.after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});
test.before.each(async () => {
  await db.run('DELETE FROM item');
  resetCalls();
});

test('a job that only appends rows commits them in one round trip', async () => {
  await db.write(async (tx) => {
    for (let i = 0; i < 50; i++) tx.append(HEAD, ROW, [`n${i}`, i]);
    tx.append('INSERT INTO item (name) VALUES', '(?)', ['other']);
  });
  assert.equal(calls, { run: 0, exec: 1, get: 0 });
  assert.is((await names()).length, 51);
});

test('a failing appended row rolls the whole job back, with the error its onError makes', async () => {
  await db.run('INSERT INTO item (name, qty) VALUES (?, ?)', ['taken', 1]);
  try {
    await db.write(async (tx) => {
      tx.append(HEAD, ROW, ['fresh', 1]);
      tx.append(HEAD, ROW, ['taken', 2], (err) => new Error(`refused: ${(err as Error).message}`));
    });
    assert.unreachable('the job must fail');
  } catch (err) {
    assert.match((err as Error).message, /^refused: .*UNIQUE constraint failed: item\.name/);
  }
  assert.equal(await names(), ['taken']);
  // The database is usable afterwards, in both paths.
  await db.write(async (tx) => tx.append(HEAD, ROW, ['after', 3]));
  await db.run('INSERT INTO item (name, qty) VALUES (?, ?)', ['after-run', 4]);
  assert.equal(await names(), ['taken', 'after', 'after-run']);
});

test('rows appended before a statement are in the table when the statement runs', async () => {
  const seen = await db.write(async (tx) => {
    tx.append(HEAD, ROW, ['a', 1]);
    tx.append(HEAD, ROW, ['b', 2]);
    const r = await tx.get<{ n: number }>('SELECT COUNT(*) AS n FROM item');
    tx.append(HEAD, ROW, ['c', 3]);
    return r!.n;
  });
  assert.is(seen, 2);
  assert.equal(await names(), ['a', 'b', 'c']);
});

test('a job that throws leaves nothing behind, and a job that does nothing costs nothing', async () => {
  await db
    .write(async (tx) => {
      tx.append(HEAD, ROW, ['x', 1]);
      await tx.run('INSERT INTO item (name, qty) VALUES (?, ?)', ['y', 1]);
      throw new Error('changed my mind');
    })
    .then(
      () => assert.unreachable('must reject'),
      (err: Error) => assert.is(err.message, 'changed my mind'),
    );
  assert.equal(await names(), []);
  resetCalls();
  assert.is(await db.write(async () => 42), 42);
  assert.equal(calls, { run: 0, exec: 0, get: 0 });
});

test('concurrent jobs share a commit; each settles after COMMIT; a failing one rolls back alone', async () => {
  const reader = await Connection.open(join(dir, 's.db'));
  const visibleWhenSettled: boolean[] = [];
  const jobs = Array.from({ length: 20 }, (_, i) =>
    db
      .write(async (tx) => {
        tx.append(HEAD, ROW, [`j${i}`, i]);
        if (i === 7) await tx.run('INSERT INTO item (name, qty) VALUES (?, ?)', ['neg', -1]);
        return i;
      })
      .then(async (v) => {
        // Another connection sees the row as soon as the promise settles: it was committed.
        visibleWhenSettled.push(Boolean(await reader.get('SELECT 1 FROM item WHERE name = ?', [`j${v}`])));
        return v;
      }),
  );
  const results = await Promise.allSettled(jobs);
  await reader.close();
  assert.is(results.filter((r) => r.status === 'rejected').length, 1);
  assert.match(String((results[7] as PromiseRejectedResult).reason), /CHECK constraint failed/);
  assert.ok(visibleWhenSettled.every(Boolean));
  const all = await names();
  assert.is(all.length, 19);
  assert.not.ok(all.includes('j7'));
  assert.not.ok(all.includes('neg'));
});

test('a lone statement runs without BEGIN/COMMIT; its failure is its own', async () => {
  await db.run('INSERT INTO item (name, qty) VALUES (?, ?)', ['solo', 1]);
  assert.equal(calls, { run: 1, exec: 0, get: 0 });
  try {
    await db.run('INSERT INTO item (name, qty) VALUES (?, ?)', ['solo', 2]);
    assert.unreachable('duplicate must fail');
  } catch (err) {
    assert.match((err as Error).message, /UNIQUE constraint failed/);
  }
  assert.equal(await names(), ['solo']);
});

test('the WAL is checkpointed in the background, not by a commit', async () => {
  const file = join(dir, 's.db');
  const before = statSync(file).size;
  // ~700 KB: below SQLite's own autocheckpoint threshold (1000 pages), which is off anyway.
  for (let i = 0; i < 10; i++) {
    await db.write(async (tx) => {
      for (let j = 0; j < 300; j++) tx.append(HEAD, ROW, [`w${i}-${j}-${'x'.repeat(200)}`, j]);
    });
  }
  const until = Date.now() + 5000;
  while (statSync(file).size < before + 500_000 && Date.now() < until) await sleep(50);
  assert.ok(
    statSync(file).size >= before + 500_000,
    `database file ${statSync(file).size} bytes, was ${before}`,
  );
});

test('SQL literals: text of any content comes back exactly; numbers checked; others refused', async () => {
  const texts = [
    '',
    "it's",
    "'); DROP TABLE item; --",
    'a\u0000b',
    '\u0000',
    'naïve ☃ 🎉',
    '\\n not an escape',
    "''''",
    'x'.repeat(10_000),
  ];
  await db.exec('CREATE TABLE lit (t TEXT, n REAL, i INTEGER, b BLOB)');
  const rows = texts.map((t, k) => [
    t,
    k === 0 ? -1.5e-7 : k * 1.25,
    BigInt(2) ** BigInt(62) + BigInt(k),
    Buffer.from([0, k, 255]),
  ]);
  await db.exec(insertScript('INSERT INTO lit (t, n, i, b) VALUES', rows));
  const back = await db.all<{ t: string; n: number; i: string; b: Buffer }>(
    'SELECT t, n, CAST(i AS TEXT) AS i, b FROM lit ORDER BY rowid',
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
  assert.is(sqlLiteral(null), 'NULL');
  assert.is(sqlLiteral(true), '1');
  for (const bad of [NaN, Infinity, {}, [], () => 1, Symbol('s')]) {
    assert.throws(() => sqlLiteral(bad), TypeError, String(bad));
  }
  assert.equal(await db.all('SELECT COUNT(*) AS n FROM item'), [{ n: 0 }]);
});

test('ids: UUIDv7 (version and variant bits, time-ordered); pooled random bytes never repeat', () => {
  const a = uuidv7(1_700_000_000_000);
  const b = uuidv7(1_700_000_000_001);
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(a < b);
  assert.is(a.slice(0, 13).replace('-', ''), (1_700_000_000_000).toString(16).padStart(12, '0'));
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) seen.add(pooledRandomBytes(8).toString('hex'));
  assert.is(seen.size, 5000);
  assert.is(pooledRandomBytes(32).length, 32);
  assert.is(pooledRandomBytes(4096).length, 4096);
});

test.run();
