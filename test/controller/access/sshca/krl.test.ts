import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signUserCertificate } from '../../../../controller/src/access/sshca/certificate.js';
import {
  generateCaKey,
  parseUserPublicKey,
  type CaKey,
} from '../../../../controller/src/access/sshca/keys.js';
import { buildKrl, type KrlInput } from '../../../../controller/src/access/sshca/krl.js';
import { SshReader } from '../../../../controller/src/access/sshca/wire.js';
import { keygen, makeUserKey, tempDir } from './fixtures.js';

let dir = '';
let cleanup = async () => {};
let caA: CaKey;
let caB: CaKey;
let userPub = '';
let n = 0;

test.before(async () => {
  ({ dir, cleanup } = await tempDir());
  caA = generateCaKey('ed25519');
  caB = generateCaKey('ecdsa-p256');
  userPub = (await makeUserKey(dir, 'user', 'ed25519')).pub;
});
test.after(() => cleanup());

/** Writes a certificate from `ca` with this serial/key id; returns its file path. */
async function cert(ca: CaKey, serial: bigint, keyId = `id-${serial}`): Promise<string> {
  const c = signUserCertificate(ca, {
    publicKey: parseUserPublicKey(userPub),
    serial,
    keyId,
    principals: ['vm-x'],
    validAfter: new Date(Date.now() - 60_000),
    validBefore: new Date(Date.now() + 600_000),
  });
  const file = join(dir, `c${n++}-cert.pub`);
  await writeFile(file, c.line + '\n');
  return file;
}

async function writeKrl(input: Omit<KrlInput, 'generatedAt' | 'version'>): Promise<string> {
  const file = join(dir, `krl${n++}`);
  await writeFile(file, buildKrl({ version: 3n, generatedAt: new Date(), ...input }));
  return file;
}

/** ssh-keygen -Q verdict per certificate file: 'REVOKED' or 'ok'. */
async function query(krl: string, files: string[]): Promise<string[]> {
  const r = await keygen(['-Q', '-f', krl, ...files]);
  const verdicts = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) \(.*\): (REVOKED|ok)$/.exec(line);
    if (m) verdicts.set(m[1], m[2]);
  }
  return files.map((f) => verdicts.get(f) ?? `?? ${r.stdout} ${r.stderr}`);
}

async function dump(krl: string): Promise<string> {
  const r = await keygen(['-Q', '-l', '-f', krl]);
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
}

const u64hex = (v: bigint) => v.toString(16).padStart(16, '0');

/** Certificate subsections [type, data] of a KRL with a single certificate section. */
function subsections(krl: Buffer): [number, Buffer][] {
  const r = new SshReader(krl);
  r.raw(8);
  r.uint32();
  r.uint64();
  r.uint64();
  r.uint64();
  r.string();
  r.string();
  assert.is(r.byte(), 0x01);
  const sect = new SshReader(r.string());
  r.end();
  sect.string();
  sect.string();
  const out: [number, Buffer][] = [];
  while (sect.remaining > 0) out.push([sect.byte(), sect.string()]);
  return out;
}

test('header layout', () => {
  const b = buildKrl({ version: 7n, generatedAt: new Date(1_700_000_000_000), comment: 'hi', sections: [] });
  assert.is(b.subarray(0, 8).toString('latin1'), 'SSHKRL\n\0');
  assert.is(b.readUInt32BE(8), 1);
  assert.is(b.readBigUInt64BE(12), 7n);
  assert.is(b.readBigUInt64BE(20), 1_700_000_000n);
  assert.is(b.readBigUInt64BE(28), 0n);
  assert.is(b.subarray(36).toString('hex'), '00000000' + '00000002' + Buffer.from('hi').toString('hex'));
});

test('empty KRL: valid, nothing revoked', async () => {
  const krl = await writeKrl({ sections: [], comment: 'empty' });
  assert.match(await dump(krl), /# KRL version 3\n/);
  assert.equal(await query(krl, [await cert(caA, 1n), await cert(caB, 2n)]), ['ok', 'ok']);
  const krl2 = await writeKrl({ sections: [{ caPublicBlob: caA.publicBlob, serials: [] }] });
  assert.equal(await query(krl2, [await cert(caA, 1n)]), ['ok']);
});

test('serial list: exactly the listed serials are revoked', async () => {
  const krl = await writeKrl({ sections: [{ caPublicBlob: caA.publicBlob, serials: [9n, 5n, 5n] }] });
  assert.match(await dump(krl), /serial: 5\nserial: 9\n/);
  const files = await Promise.all([4n, 5n, 6n, 8n, 9n, 10n].map((s) => cert(caA, s)));
  assert.equal(await query(krl, files), ['ok', 'REVOKED', 'ok', 'ok', 'REVOKED', 'ok']);
});

test('consecutive serials become a range; lone ones stay in the list', async () => {
  const serials = [200n, 100n, 101n, 102n, 103n, 104n, 105n, 106n, 107n, 108n, 109n, 110n, 300n, 301n];
  const krl = await writeKrl({ sections: [{ caPublicBlob: caA.publicBlob, serials }] });
  const text = await dump(krl);
  assert.match(text, /serial: 100-110\n/);
  assert.match(text, /serial: 200\n/);
  assert.match(text, /serial: 300-301\n/);
  // On the wire: one list (200, 300, 301) and one range (100-110).
  const wire = subsections(await readFile(krl));
  assert.equal(
    wire.map(([t, d]) => [t, d.toString('hex')]),
    [
      [0x20, [200n, 300n, 301n].map(u64hex).join('')],
      [0x21, u64hex(100n) + u64hex(110n)],
    ],
  );
  const probe = [99n, 100n, 105n, 110n, 111n, 199n, 200n, 300n, 301n, 302n];
  const files = await Promise.all(probe.map((s) => cert(caA, s)));
  assert.equal(await query(krl, files), [
    'ok',
    'REVOKED',
    'REVOKED',
    'REVOKED',
    'ok',
    'ok',
    'REVOKED',
    'REVOKED',
    'REVOKED',
    'ok',
  ]);
  const big = await writeKrl({
    sections: [{ caPublicBlob: caA.publicBlob, serials: [0xffff_ffff_ffff_fffen, 0xffff_ffff_ffff_ffffn] }],
  });
  assert.equal(
    await query(big, [await cert(caA, 0xffff_ffff_ffff_ffffn), await cert(caA, 0xffff_ffff_ffff_fffdn)]),
    ['REVOKED', 'ok'],
  );
});

test('range encoding is smaller than a list for long runs', () => {
  const run = Array.from({ length: 50 }, (_, i) => BigInt(1000 + i));
  const ranged = buildKrl({
    version: 1n,
    generatedAt: new Date(0),
    sections: [{ caPublicBlob: caA.publicBlob, serials: run }],
  });
  const header = buildKrl({ version: 1n, generatedAt: new Date(0), sections: [] }).length;
  assert.ok(ranged.length - header < 50 * 8, `${ranged.length - header}`);
});

test('key id revocation', async () => {
  const krl = await writeKrl({ sections: [{ caPublicBlob: caA.publicBlob, keyIds: ['mallory:req-9'] }] });
  assert.match(await dump(krl), /id: mallory:req-9\n/);
  const files = [
    await cert(caA, 50n, 'mallory:req-9'),
    await cert(caA, 51n, 'alice:req-1'),
    await cert(caB, 52n, 'mallory:req-9'),
  ];
  assert.equal(await query(krl, files), ['REVOKED', 'ok', 'ok']);
});

test('two CA sections revoke only their own certificates', async () => {
  const krl = await writeKrl({
    comment: 'two CAs',
    sections: [
      { caPublicBlob: caA.publicBlob, serials: [7n] },
      { caPublicBlob: caB.publicBlob, serials: [8n], keyIds: ['b-only'] },
    ],
  });
  const files = [
    await cert(caA, 7n),
    await cert(caB, 7n),
    await cert(caA, 8n),
    await cert(caB, 8n),
    await cert(caA, 9n, 'b-only'),
    await cert(caB, 9n, 'b-only'),
  ];
  assert.equal(await query(krl, files), ['REVOKED', 'ok', 'ok', 'REVOKED', 'ok', 'REVOKED']);
  const text = await dump(krl);
  assert.ok(text.includes(caA.fingerprint) && text.includes(caB.fingerprint), text);
});

test('sections for the same CA are merged', async () => {
  const krl = await writeKrl({
    sections: [
      { caPublicBlob: caA.publicBlob, serials: [11n] },
      { caPublicBlob: caA.publicBlob, serials: [13n] },
    ],
  });
  assert.equal(await query(krl, [await cert(caA, 11n), await cert(caA, 12n), await cert(caA, 13n)]), [
    'REVOKED',
    'ok',
    'REVOKED',
  ]);
});

test('serial 0 and out-of-range serials are refused', () => {
  const build = (s: bigint) => () =>
    buildKrl({
      version: 1n,
      generatedAt: new Date(),
      sections: [{ caPublicBlob: caA.publicBlob, serials: [s] }],
    });
  assert.throws(build(0n), /serial/);
  assert.throws(build(-1n), /serial/);
  assert.throws(build(1n << 64n), /serial/);
});

test.run();
