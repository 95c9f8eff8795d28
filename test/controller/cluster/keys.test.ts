/**
 * Several controllers on one database share the SSH CA and the internal X.509 CA: their private keys
 * are sealed in the database with the cluster's key-encryption key (cluster.key). Two controllers are
 * two Database handles on one SQLite file, each with its own data dir, started concurrently.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../lib/platform/clock.js';
import { newKeyAndCsr, x509 } from '../../../lib/pki/x509.js';
import { Database, openDatabase } from '../../../lib/store/database.js';
import { sharedCluster } from '../../helpers/postgres.js';
import { migrate } from '../../../lib/store/migrations.js';
import { allMigrations } from '../../../controller/src/store/registry.js';
import { KeyEncryptionKey, KeyEncryptionKeyError } from '../../../controller/src/pki/kek.js';
import { InternalCa } from '../../../controller/src/pki/internal-ca.js';
import { SshAuthority } from '../../../controller/src/access/authority.js';
import { SqliteAccessStore } from '../../../controller/src/access/store.js';
import {
  caKeyToDer,
  generateCaKey,
  saveCaKey,
  type CaKey,
} from '../../../controller/src/access/sshca/keys.js';
import {
  parseCertificate,
  signUserCertificate,
  verifyCertificateSignature,
} from '../../../controller/src/access/sshca/certificate.js';
import { Identities } from '../../../controller/src/identity/identities.js';
import { SqliteIdentityStore } from '../../../controller/src/identity/store.js';
import type { ApiSessions } from '../../../controller/src/identity/sessions.js';

const temps: string[] = [];
const dbs: Database[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-cluster-keys-'));
  temps.push(dir);
  return dir;
}

test.after.each(async () => {
  for (const db of dbs.splice(0)) await db.close().catch(() => undefined);
});
test.after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/**
 * One shared database (a SQLite file; a PostgreSQL database in the runner's PostgreSQL pass),
 * migrated once (concurrent migrations are the store layer's concern, tested there).
 */
async function sharedDatabase(): Promise<string> {
  const cluster = sharedCluster();
  const location = cluster ? await cluster.createDatabase('keys') : join(tempDir(), 'cluster.db');
  const db = await openDatabase(location);
  await migrate(db, allMigrations);
  await db.close();
  return location;
}

async function openDb(location: string): Promise<Database> {
  const db = await openDatabase(location);
  dbs.push(db);
  return db;
}

/** A controller's data dir, holding `kek` as its cluster.key (0600) when given. */
function dataDir(kek?: Buffer): { dir: string; kekFile: string } {
  const dir = tempDir();
  mkdirSync(join(dir, 'pki'), { mode: 0o700 });
  const kekFile = join(dir, 'cluster.key');
  if (kek) writeFileSync(kekFile, `${kek.toString('base64')}\n`, { mode: 0o600 });
  return { dir, kekFile };
}

interface Node {
  db: Database;
  dir: string;
  kek: KeyEncryptionKey;
  ca: InternalCa;
  ssh: SshAuthority;
}

/** What server.ts does with the keys at start, for one controller. */
async function startNode(dbFile: string, d: { dir: string; kekFile: string }): Promise<Node> {
  const db = await openDb(dbFile);
  const kek = await KeyEncryptionKey.open(db, d.kekFile, systemClock);
  const ca = await InternalCa.openOrCreate(db, kek, join(d.dir, 'pki'), systemClock);
  const ssh = await SshAuthority.open(new SqliteAccessStore(db), kek, systemClock, 'ed25519');
  return { db, dir: d.dir, kek, ca, ssh };
}

const userKey = () => generateCaKey('ed25519').publicBlob;

/** A certificate signed with `ca`, parsed back; its signature checked. */
function signWith(ca: CaKey) {
  const now = Date.now();
  const signed = signUserCertificate(ca, {
    publicKey: userKey(),
    serial: 7n,
    keyId: 'k',
    principals: ['vm-x'],
    validAfter: new Date(now - 60_000),
    validBefore: new Date(now + 60_000),
  });
  const parsed = parseCertificate(signed.line);
  assert.ok(verifyCertificateSignature(parsed));
  return parsed;
}

const csr = async () => (await newKeyAndCsr('CN=someone')).csrPem;

const activeRows = async (db: Database) =>
  db.all<{ id: number; fingerprint: string }>("SELECT id, fingerprint FROM ssh_cas WHERE status = 'active'");

async function expectKekError(p: Promise<unknown>, pattern: RegExp): Promise<KeyEncryptionKeyError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, KeyEncryptionKeyError, String(err));
    assert.match((err as Error).message, pattern);
    assert.not.match((err as Error).message, /\n/, 'one line');
    return err as KeyEncryptionKeyError;
  }
  assert.unreachable('expected a KeyEncryptionKeyError');
  throw new Error('unreachable');
}

test('first controller on an empty database: cluster.key created 0600, 32 random bytes as base64', async () => {
  const dbFile = await sharedDatabase();
  const d = dataDir();
  await startNode(dbFile, d);
  assert.is(statSync(d.kekFile).mode & 0o777, 0o600);
  const text = readFileSync(d.kekFile, 'utf8').trim();
  assert.is(Buffer.from(text, 'base64').length, 32);
  assert.is(Buffer.from(text, 'base64').toString('base64'), text);
  assert.ok(existsSync(join(d.dir, 'pki', 'ca.crt')), 'the public CA certificate is still written');
  assert.not.ok(existsSync(join(d.dir, 'pki', 'ca.key')), 'the CA private key is not');
});

test('two controllers sharing cluster.key start together: one SSH CA, one X.509 CA, both sign with them', async () => {
  const dbFile = await sharedDatabase();
  const kek = randomBytes(32);
  const [a, b] = await Promise.all([startNode(dbFile, dataDir(kek)), startNode(dbFile, dataDir(kek))]);

  const rows = await activeRows(a.db);
  assert.is(rows.length, 1, 'exactly one active SSH CA key');
  assert.is((await a.db.all('SELECT id FROM ssh_cas')).length, 1, 'and no second one trusted');
  assert.is(a.ssh.active().key.fingerprint, rows[0]!.fingerprint);
  assert.is(b.ssh.active().key.fingerprint, rows[0]!.fingerprint);
  assert.equal(signWith(a.ssh.active().key).signatureKey, signWith(b.ssh.active().key).signatureKey);

  assert.is(a.ca.fingerprint, b.ca.fingerprint, 'one internal CA');
  assert.is(
    readFileSync(join(a.dir, 'pki', 'ca.crt'), 'utf8'),
    readFileSync(join(b.dir, 'pki', 'ca.crt'), 'utf8'),
  );
  const fromB = await b.ca.issueClientCert(await csr(), { days: 1 });
  assert.ok(await a.ca.verifyIssued(fromB.pem), "A trusts B's certificates");
  // Each controller keeps its own server and client certificates, from the shared CA.
  const serverA = await a.ca.serverCredentials(join(a.dir, 'pki'), ['localhost']);
  const clientB = await b.ca.controllerClientCredentials(join(b.dir, 'pki'));
  assert.ok(await b.ca.verifyIssued(serverA.cert));
  assert.ok(await a.ca.verifyIssued(clientB.cert));
  assert.is.not(serverA.key, readFileSync(join(b.dir, 'pki', 'controller-client.key'), 'utf8'));
});

test('the database holds sealed keys only: no PEM, no OpenSSH or DER private key, no key file', async () => {
  const dbFile = await sharedDatabase();
  const kek = randomBytes(32);
  const a = await startNode(dbFile, dataDir(kek));
  await a.ssh.rotate('rsa');
  await a.ssh.rotate('ecdsa-p256');
  const rows = await a.db.all<{ id: number; key_file: string; private_key_sealed: string }>(
    'SELECT id, key_file, private_key_sealed FROM ssh_cas ORDER BY id',
  );
  assert.is(rows.length, 3);
  const ca = await a.db.get<{ private_key_sealed: string }>('SELECT private_key_sealed FROM internal_ca');
  for (const sealed of [...rows.map((r) => r.private_key_sealed), ca!.private_key_sealed]) {
    assert.match(sealed, /^v1:[A-Za-z0-9+/]+=*$/);
    assert.not.match(sealed, /PRIVATE KEY|openssh/i);
  }
  for (const r of rows) {
    assert.is(r.key_file, '');
    const der = caKeyToDer(a.ssh.keyFor(r.id)!);
    const raw = Buffer.from(r.private_key_sealed.slice(3), 'base64');
    assert.is(raw.indexOf(der.subarray(-32)), -1, 'the private key bytes are not in the clear');
  }
  assert.not.ok(readdirSync(a.dir).includes('ssh-ca'), 'no SSH CA key directory');
});

test('a rotation on A reaches B by reload(): B signs with the new key, keeps the old trusted, drops retired', async () => {
  const dbFile = await sharedDatabase();
  const kek = randomBytes(32);
  const a = await startNode(dbFile, dataDir(kek));
  const b = await startNode(dbFile, dataDir(kek));
  const old = b.ssh.active();

  const rotated = await a.ssh.rotate();
  assert.is(b.ssh.active().id, old.id, 'B learns of the rotation only when told');
  await b.ssh.reload();
  assert.is(b.ssh.active().id, rotated.id);
  assert.is(b.ssh.active().key.fingerprint, rotated.fingerprint);
  assert.equal(signWith(b.ssh.active().key).signatureKey, a.ssh.active().key.publicBlob);
  assert.is(b.ssh.keyFor(old.id), old.key, 'keys already loaded are kept');
  assert.equal(
    b.ssh.trusted().map((r) => r.id),
    [rotated.id, old.id],
  );

  await a.ssh.retire(old.id);
  await b.ssh.reload();
  assert.is(b.ssh.keyFor(old.id), undefined);
  assert.equal(
    b.ssh.trusted().map((r) => r.id),
    [rotated.id],
  );
});

test('two controllers rotating at once end with exactly one active key, which both sign with after reload', async () => {
  const dbFile = await sharedDatabase();
  const kek = randomBytes(32);
  const a = await startNode(dbFile, dataDir(kek));
  const b = await startNode(dbFile, dataDir(kek));
  await Promise.all([a.ssh.rotate(), b.ssh.rotate(), a.ssh.rotate(), b.ssh.rotate()]);
  const rows = await activeRows(a.db);
  assert.is(rows.length, 1);
  await Promise.all([a.ssh.reload(), b.ssh.reload()]);
  assert.is(a.ssh.active().id, rows[0]!.id);
  assert.is(b.ssh.active().id, rows[0]!.id);
  assert.is((await a.db.all("SELECT id FROM ssh_cas WHERE status = 'trusted'")).length, 4);
});

test('a controller with another cluster.key stops with a clear error; its file is left alone', async () => {
  const dbFile = await sharedDatabase();
  await startNode(dbFile, dataDir(randomBytes(32)));
  const other = dataDir(randomBytes(32));
  const before = readFileSync(other.kekFile, 'utf8');
  const db = await openDb(dbFile);
  const err = await expectKekError(
    KeyEncryptionKey.open(db, other.kekFile, systemClock),
    /sealed with a key-encryption key this controller does not have/,
  );
  assert.ok(
    err.message.includes(`copy cluster.key from a running controller to ${other.kekFile}`),
    err.message,
  );
  assert.is(readFileSync(other.kekFile, 'utf8'), before);
});

test('no cluster.key while the database holds sealed keys: clear error, no new key created', async () => {
  const dbFile = await sharedDatabase();
  await startNode(dbFile, dataDir(randomBytes(32)));
  const joiner = dataDir();
  const db = await openDb(dbFile);
  const err = await expectKekError(
    KeyEncryptionKey.open(db, joiner.kekFile, systemClock),
    /sealed with a key-encryption key and .* does not exist/,
  );
  assert.ok(
    err.message.includes(`copy cluster.key from a running controller to ${joiner.kekFile}`),
    err.message,
  );
  assert.not.ok(existsSync(joiner.kekFile));
});

test('two controllers without cluster.key on an empty database: one initialises it, the other is told to copy', async () => {
  const dbFile = await sharedDatabase();
  const dirs = [dataDir(), dataDir()];
  const results = await Promise.allSettled(dirs.map((d) => startNode(dbFile, d)));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.is(ok.length, 1);
  assert.is(failed.length, 1);
  assert.instance(failed[0]!.reason, KeyEncryptionKeyError);
  assert.match(failed[0]!.reason.message, /copy cluster\.key/);
  const loser = dirs[results.indexOf(failed[0]!)]!;
  assert.not.ok(existsSync(loser.kekFile), 'the useless new key is removed, so a copy can take its place');
  // with a copy of the winner's key it starts and uses the same CAs
  const winner = dirs[results.indexOf(ok[0]!)]!;
  writeFileSync(loser.kekFile, readFileSync(winner.kekFile), { mode: 0o600 });
  const late = await startNode(dbFile, loser);
  const first = (ok[0] as PromiseFulfilledResult<Node>).value;
  assert.is(late.ca.fingerprint, first.ca.fingerprint);
  assert.is(late.ssh.active().key.fingerprint, first.ssh.active().key.fingerprint);
});

test('cluster.key readable by others, or not a key: refused', async () => {
  const dbFile = await sharedDatabase();
  const db = await openDb(dbFile);
  const d = dataDir(randomBytes(32));
  chmodSync(d.kekFile, 0o644);
  try {
    await KeyEncryptionKey.open(db, d.kekFile, systemClock);
    assert.unreachable('accepted a 0644 key file');
  } catch (err) {
    assert.match((err as Error).message, /chmod 600/);
  }
  writeFileSync(d.kekFile, 'too short\n', { mode: 0o600 });
  chmodSync(d.kekFile, 0o600);
  await expectKekError(KeyEncryptionKey.open(db, d.kekFile, systemClock), /is not a key-encryption key/);
  // 64 hex digits are accepted too
  writeFileSync(d.kekFile, `${randomBytes(32).toString('hex')}\n`);
  await KeyEncryptionKey.open(db, d.kekFile, systemClock);
});

test('a sealed value opens only under its own label and with its own key', async () => {
  const dbFile = await sharedDatabase();
  const db = await openDb(dbFile);
  const kek = await KeyEncryptionKey.open(db, dataDir(randomBytes(32)).kekFile, systemClock);
  const sealed = kek.seal('secret', 'vmwarden ssh-ca 3');
  assert.is(kek.open(sealed, 'vmwarden ssh-ca 3').toString(), 'secret');
  assert.is.not(kek.seal('secret', 'vmwarden ssh-ca 3'), sealed, 'a fresh nonce per seal');
  assert.throws(() => kek.open(sealed, 'vmwarden ssh-ca 4'), /does not open/);
  const raw = Buffer.from(sealed.slice(3), 'base64');
  raw[raw.length - 1]! ^= 1;
  assert.throws(() => kek.open(`v1:${raw.toString('base64')}`, 'vmwarden ssh-ca 3'), /does not open/);
});

test('upgrade: the key files of a controller from before sealing are imported, then shared', async () => {
  // The schema and rows of an older controller: SSH CA key in a file, X.509 CA in pki/ca.key + ca.crt.
  const dbFile = join(tempDir(), 'old.db');
  const old = dataDir();
  {
    const db = await Database.open(dbFile);
    const sealing = new Set(['0007-ssh-ca-sealed-key', '0301-sealed-keys']);
    await migrate(
      db,
      allMigrations.filter((m) => !sealing.has(m.id)),
    );
    await db.close();
  }
  const sshKey = generateCaKey('ed25519');
  mkdirSync(join(old.dir, 'ssh-ca'), { mode: 0o700 });
  const sshKeyFile = join(old.dir, 'ssh-ca', 'ca-old.key');
  await saveCaKey(sshKey, sshKeyFile);
  {
    const db = await Database.open(dbFile);
    await db.run(
      `INSERT INTO ssh_cas (key_type, public_key, fingerprint, key_file, status, created_at)
       VALUES (?, ?, ?, ?, 'active', ?)`,
      [sshKey.sshType, sshKey.openssh, sshKey.fingerprint, sshKeyFile, new Date().toISOString()],
    );
    await db.close();
  }
  const pki = join(old.dir, 'pki');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(pki, 'ca.key'),
      '-out',
      join(pki, 'ca.crt'),
      '-days',
      '30',
      '-subj',
      '/CN=vmwarden internal CA',
    ],
    { stdio: 'ignore' },
  );
  chmodSync(join(pki, 'ca.key'), 0o600);
  const oldCert = readFileSync(join(pki, 'ca.crt'), 'utf8');

  const db = await openDb(dbFile);
  await migrate(db, allMigrations);
  const a = await startNode(dbFile, old);
  assert.is(a.ssh.active().key.fingerprint, sshKey.fingerprint, 'the SSH CA key is the one from the file');
  const row = await db.get<{ private_key_sealed: string | null; key_file: string }>('SELECT * FROM ssh_cas');
  assert.ok(row!.private_key_sealed?.startsWith('v1:'), 'and now sealed in the database');
  assert.is(row!.key_file, sshKeyFile);
  assert.is(readFileSync(join(pki, 'ca.crt'), 'utf8'), oldCert, 'the X.509 CA is the one from the files');
  const issued = await a.ca.issueClientCert(await csr(), { days: 1 });
  assert.ok(
    await new x509.X509Certificate(issued.pem).verify({
      publicKey: new x509.X509Certificate(oldCert).publicKey,
    }),
  );

  // A second controller, with a copy of cluster.key but none of the old files, uses the same keys.
  const b = await startNode(dbFile, dataDir(readKek(old.kekFile)));
  assert.is(b.ssh.active().key.fingerprint, sshKey.fingerprint);
  assert.is(b.ca.fingerprint, a.ca.fingerprint);
  assert.is(readFileSync(join(b.dir, 'pki', 'ca.crt'), 'utf8'), oldCert);
});

test('an unsealed key file missing on this controller: told to start the controller that has it', async () => {
  const dbFile = await sharedDatabase();
  const kek = randomBytes(32);
  const a = await startNode(dbFile, dataDir(kek));
  const key = generateCaKey('ed25519');
  await a.db.run(
    `INSERT INTO ssh_cas (key_type, public_key, fingerprint, key_file, status, created_at)
     VALUES (?, ?, ?, ?, 'trusted', ?)`,
    [key.sshType, key.openssh, key.fingerprint, '/nonexistent/ca.key', new Date().toISOString()],
  );
  await expectKekError(a.ssh.reload(), /is still in \/nonexistent\/ca\.key.*start that controller/);
});

function readKek(file: string): Buffer {
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
}

test('initial admin: of two controllers starting together on an empty database, one creates it', async () => {
  const dbFile = await sharedDatabase();
  const nodes = [await openDb(dbFile), await openDb(dbFile)].map((db) => ({
    db,
    dir: dataDir().dir,
    identities: new Identities(
      new SqliteIdentityStore(db),
      undefined as unknown as ApiSessions, // not used by bootstrapAdmin
      undefined as unknown as InternalCa,
      systemClock,
      90,
    ),
  }));
  const passwords = await Promise.all(nodes.map((n) => n.identities.bootstrapAdmin(n.dir)));
  assert.is(passwords.filter(Boolean).length, 1, String(passwords));
  const creator = nodes[passwords.findIndex(Boolean)]!;
  const other = nodes[passwords.findIndex((p) => !p)]!;
  const file = join(creator.dir, 'admin-password');
  assert.is(readFileSync(file, 'utf8').trim(), passwords.find(Boolean));
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.not.ok(existsSync(join(other.dir, 'admin-password')));
  const admins = await nodes[0]!.db.all<{ name: string }>('SELECT name FROM identities');
  assert.equal(admins, [{ name: 'admin' }]);
  // later starts find the cluster initialised
  assert.is(await other.identities.bootstrapAdmin(other.dir), undefined);
});

test.run();
