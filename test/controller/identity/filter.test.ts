/**
 * The OpenZiti filter subset (http/ziti-filter.ts), compiled to parameterised SQL: checked on its
 * own, and then run against a real SQLite table so the compiled SQL is known to mean what it says.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFilter } from '../../../controller/src/http/ziti-filter.js';
import { ApiError } from '../../../controller/src/platform/errors.js';
import { Database } from '../../../lib/store/database.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(30);

const fields = { name: 'name', role: 'role', n: 'n', createdAt: 'created_at' };

function invalid(filter: string) {
  try {
    compileFilter(filter, fields);
  } catch (err) {
    assert.instance(err, ApiError);
    assert.is((err as ApiError).status, 400);
    assert.is((err as ApiError).code, 'INVALID_FILTER');
    return (err as ApiError).message;
  }
  assert.unreachable(`filter '${filter}' was accepted`);
  return '';
}

test('empty filter matches everything', () => {
  assert.equal(compileFilter(undefined, fields), { where: '1=1', params: [], orderBy: '' });
  assert.equal(compileFilter('   ', fields), { where: '1=1', params: [], orderBy: '' });
});

test('values become parameters, fields map to columns', () => {
  const f = compileFilter('name = "a\\"b" and n >= 3', fields);
  assert.is(f.where, '(name = ? AND n >= ?)');
  assert.equal(f.params, ['a"b', 3]);
  const g = compileFilter(`name = "x' OR 1=1; DROP TABLE t; --"`, fields);
  assert.is(g.where, 'name = ?');
  assert.not.ok(g.where.includes('DROP'));
});

test('sort by, skip, limit', () => {
  const f = compileFilter('role = "user" sort by name desc, createdAt skip 5 limit 20', fields);
  assert.is(f.orderBy, 'name DESC, created_at ASC');
  assert.is(f.skip, 5);
  assert.is(f.limit, 20);
  const only = compileFilter('sort by n asc', fields);
  assert.is(only.where, '1=1');
  assert.is(only.orderBy, 'n ASC');
  const lim = compileFilter('limit 3', fields);
  assert.is(lim.limit, 3);
});

test('precedence: and binds tighter than or; parentheses and not', () => {
  assert.is(
    compileFilter('name = "a" or name = "b" and role = "c"', fields).where,
    '(name = ? OR (name = ? AND role = ?))',
  );
  assert.is(
    compileFilter('(name = "a" or name = "b") and not role = "c"', fields).where,
    '(((name = ? OR name = ?)) AND NOT (role = ?))',
  );
});

test('unknown fields, bad syntax and unsupported operators are refused', () => {
  assert.match(invalid('password = "x"'), /unknown field 'password'/);
  invalid('name');
  invalid('name =');
  invalid('name == "x"');
  invalid('name = "x" and');
  invalid('name = "x" or or name = "y"');
  invalid('(name = "x"');
  invalid('name = "x")');
  invalid('name = "unterminated');
  invalid('name ~ "x"');
  invalid('name in []');
  invalid('name < null');
  invalid('sort name');
  invalid('sort by nope');
  invalid('skip -1');
  invalid('skip 1.5');
  invalid('limit "5"');
  invalid('name = "x" sort by name sideways');
  invalid('name = name');
});

let db: Database;
let dir: string;
const rows: [string, string, number][] = [
  ['alpha', 'admin', 1],
  ['bravo', 'user', 2],
  ['charlie', 'user', 3],
  ['delta', 'agent', 4],
  ['Echo_%', 'user', 5],
];

async function names(filter: string): Promise<string[]> {
  const f = compileFilter(filter, fields);
  const sql = `SELECT name FROM t WHERE ${f.where} ORDER BY ${f.orderBy || 'n ASC'} LIMIT ? OFFSET ?`;
  const r = await db.all<{ name: string }>(sql, [...f.params, f.limit ?? 100, f.skip ?? 0]);
  return r.map((x) => x.name);
}

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmwarden-filter-'));
  db = await Database.open(join(dir, 'f.db'));
  await db.exec('CREATE TABLE t (name TEXT, role TEXT, n INTEGER, created_at TEXT)');
  for (const [name, role, n] of rows)
    await db.run('INSERT INTO t VALUES (?, ?, ?, ?)', [name, role, n, `2026-01-0${n}T00:00:00Z`]);
});
test.after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('against SQLite: comparison operators', async () => {
  assert.equal(await names('role = "user"'), ['bravo', 'charlie', 'Echo_%']);
  assert.equal(await names('role != "user"'), ['alpha', 'delta']);
  assert.equal(await names('n > 3'), ['delta', 'Echo_%']);
  assert.equal(await names('n <= 2'), ['alpha', 'bravo']);
  assert.equal(await names('createdAt >= "2026-01-04"'), ['delta', 'Echo_%']);
});

test('against SQLite: contains is case-sensitive, icontains is not; wildcards are literal', async () => {
  assert.equal(await names('name contains "ha"'), ['alpha', 'charlie']);
  assert.equal(await names('name contains "ECHO"'), []);
  assert.equal(await names('name icontains "ECHO"'), ['Echo_%']);
  assert.equal(await names('name icontains "%"'), ['Echo_%']);
  assert.equal(await names('name icontains "_"'), ['Echo_%']);
  assert.equal(await names('name not contains "a"'), ['Echo_%']);
});

test('against SQLite: in, and/or/not, sort, skip, limit', async () => {
  assert.equal(await names('role in ["admin", "agent"]'), ['alpha', 'delta']);
  assert.equal(await names('role not in ["user"]'), ['alpha', 'delta']);
  assert.equal(await names('role = "user" and n > 2'), ['charlie', 'Echo_%']);
  assert.equal(await names('role = "admin" or n = 4'), ['alpha', 'delta']);
  assert.equal(await names('not (role = "user")'), ['alpha', 'delta']);
  assert.equal(
    await names('true'),
    rows.map((r) => r[0]),
  );
  assert.equal(await names('false'), []);
  assert.equal(await names('sort by n desc'), rows.map((r) => r[0]).reverse());
  assert.equal(await names('role = "user" sort by n desc skip 1 limit 1'), ['charlie']);
  assert.equal(await names(`name = "x' OR '1'='1"`), []);
});

test.run();
