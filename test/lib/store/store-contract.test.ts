/**
 * What every store does, whichever backend: a SQLite file, or in the runner's PostgreSQL pass a
 * PostgreSQL database (the same SQL, translated in lib/store/postgres-sql.ts). Two handles on one
 * store stand in for two controllers: their write jobs are serialised, so read-then-write is atomic.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Database } from '../../../lib/store/database.js';
import { isInvalidText, uniqueViolationTable } from '../../../lib/store/errors.js';
import { sharedCluster } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-store-contract-'));
let a: Database;
let b: Database;

test.before(async () => {
  const cluster = sharedCluster();
  const location = cluster ? await cluster.createDatabase('contract') : join(dir, 'c.db');
  a = await openDatabase(location);
  b = await openDatabase(location);
  await a.exec(
    `CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, qty INTEGER, at_ms INTEGER,
       ratio REAL, raw BLOB);
     CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
     INSERT INTO counter (id, n) VALUES (1, 0)`,
  );
});
test.after(async () => {
  await a?.close();
  await b?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('types come back as SQLite gives them: 64-bit integers and counts as numbers, blobs as Buffers', async () => {
  const at = Date.now() * 1000; // beyond 32 bits
  const row = await a.write((tx) =>
    tx.get<{ id: number }>(
      'INSERT INTO item (name, qty, at_ms, ratio, raw) VALUES (?, ?, ?, ?, ?) RETURNING id',
      ['typed', true, at, 0.25, Buffer.from([0, 1, 255])],
    ),
  );
  assert.type(row!.id, 'number');
  const r = await b.get<any>('SELECT * FROM item WHERE id = ?', [row!.id]);
  assert.equal([r.qty, r.at_ms, r.ratio], [1, at, 0.25]);
  assert.ok(Buffer.from([0, 1, 255]).equals(r.raw));
  const n = await b.get<{ n: number; s: number }>('SELECT COUNT(*) AS n, SUM(qty) AS s FROM item');
  assert.equal(n, { n: 1, s: 1 });
});

test('a duplicate names its table; LIKE ignores ASCII case; instr finds text; ON CONFLICT DO NOTHING', async () => {
  await a.run('INSERT INTO item (name) VALUES (?)', ['Dup-Name']);
  const err = await a.run('INSERT INTO item (name) VALUES (?)', ['Dup-Name']).catch((e: unknown) => e);
  assert.is(uniqueViolationTable(err), 'item');
  const ignored = await a.run('INSERT INTO item (name) VALUES (?) ON CONFLICT DO NOTHING', ['Dup-Name']);
  assert.is(ignored.changes, 0);
  assert.is((await b.all("SELECT id FROM item WHERE name LIKE ? ESCAPE '\\'", ['%dup\\-name%'])).length, 1);
  assert.is((await b.all('SELECT id FROM item WHERE instr(name, ?) > 0', ['-Na'])).length, 1);
  // A question mark inside a literal is text, not a placeholder.
  assert.equal(await b.get("SELECT 'why?' AS q, ? AS p", ['x']), { q: 'why?', p: 'x' });
});

test('text PostgreSQL cannot hold is refused as bad input (SQLite stores it)', async () => {
  const outcome = await a.run('INSERT INTO item (name) VALUES (?)', ['nul\u0000byte']).then(
    () => 'stored',
    (e: unknown) => e,
  );
  if (a.dialect === 'postgres') assert.ok(isInvalidText(outcome), String(outcome));
  else assert.is(outcome, 'stored');
});

test('a failing job rolls back alone inside a shared commit; a job settles after its data is visible', async () => {
  const results = await Promise.allSettled([
    a.write((tx) => tx.run('INSERT INTO item (name) VALUES (?)', ['g1'])),
    a.write(async (tx) => {
      await tx.run('INSERT INTO item (name) VALUES (?)', ['g2']);
      await tx.run('INSERT INTO item (name) VALUES (?)', ['g2']); // duplicate: this job fails
    }),
    a.write(async (tx) => {
      tx.append('INSERT INTO item (name) VALUES', '(?)', ['g3']);
      tx.append('INSERT INTO item (name) VALUES', '(?)', ['g4']);
    }),
  ]);
  assert.equal(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  const names = (
    await b.all<{ name: string }>("SELECT name FROM item WHERE name LIKE 'g%' ORDER BY name")
  ).map((r) => r.name);
  assert.equal(names, ['g1', 'g3', 'g4']);
});

test('two handles (two controllers): read-then-write jobs never interleave', async () => {
  const bump = (db: Database) =>
    db.write(async (tx) => {
      const { n } = (await tx.get<{ n: number }>('SELECT n FROM counter WHERE id = 1'))!;
      await tx.run('UPDATE counter SET n = ? WHERE id = 1', [n + 1]);
    });
  await Promise.all(Array.from({ length: 60 }, (_, i) => bump(i % 2 ? a : b)));
  assert.is((await a.get<{ n: number }>('SELECT n FROM counter WHERE id = 1'))!.n, 60);
});

test('a notification reaches every handle listening on the channel, the sender included', async () => {
  const heard: string[] = [];
  const offA = a.listen('contract', (p) => heard.push(`a:${p}`));
  const offB = b.listen('contract', (p) => heard.push(`b:${p}`));
  try {
    // PostgreSQL: the listening connection comes up in the background; notify until both hear.
    await waitFor(
      'both handles to hear',
      async () => {
        await a.notify('contract', 'x');
        return heard.includes('a:x') && heard.includes('b:x');
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
  } finally {
    offA();
    offB();
  }
});

test('ping answers while the store is up', async () => {
  await a.ping();
  await b.ping();
});

test.run();
