/**
 * GET /v1/access/certificates and /v1/access/sessions: every filter alone and combined, pagination
 * with a correct total, and who sees what. A ManualClock makes some certificates EXPIRED.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { ManualClock } from '../../../lib/platform/clock.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  assertOk,
  createInstance,
  grant,
  issue,
  makeUserKey,
  rawSerials,
  tempDir,
  type TestInstance,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

interface CertModel {
  id: string;
  sandbox: string;
  user: string;
  status: 'ACTIVE' | 'EXPIRED' | 'REVOKED';
  serial: string;
}
interface SessionModel {
  id: string;
  cert: string;
  sandbox: string;
  user: string;
  status: 'ACTIVE' | 'ENDED' | 'REVOKED';
}

const clock = new ManualClock(new Date(Math.floor(Date.now() / 1000) * 1000));
let c: TestController;
let cleanup = async () => {};
let admin = '';
let u1: { id: string; token: string };
let u2: { id: string; token: string };
let A: TestInstance;
let B: TestInstance;
const certs: CertModel[] = [];
const sessions: SessionModel[] = [];
const byName: Record<string, CertModel> = {};

test.before(async () => {
  const t = await tempDir();
  cleanup = t.cleanup;
  const key = await makeUserKey(t.dir, 'id_ed', 'ed25519');
  c = await startTestController({}, clock);
  admin = await c.adminToken();
  u1 = await c.createUser('user-one');
  u2 = await c.createUser('user-two');
  A = await createInstance(c);
  B = await createInstance(c);
  for (const vm of [A, B]) for (const u of [u1, u2]) await grant(c, vm.serverId, u.id);

  const mint = async (name: string, vm: TestInstance, u: { id: string; token: string }, ttl: number) => {
    clock.advance(1000); // distinct issued_at, so the listing order is checkable
    const got = await issue(c, u.token, { sandbox_id: vm.serverId, public_key: key.pub, ttl_minutes: ttl });
    const m: CertModel = {
      id: got.id,
      sandbox: vm.serverId,
      user: u.id,
      status: 'ACTIVE',
      serial: got.serial,
    };
    certs.push(m);
    byName[name] = m;
  };
  const start = async (name: string, cert: CertModel) => {
    clock.advance(1000);
    const r = await c.call('POST', '/v1/access/session/start', {
      token: admin,
      body: { certificate_id: cert.id, source_ip: '203.0.113.9' },
    });
    assertOk(r, 'sessionStartResponse');
    const s: SessionModel = {
      id: r.body.session_id,
      cert: cert.id,
      sandbox: cert.sandbox,
      user: cert.user,
      status: 'ACTIVE',
    };
    sessions.push(s);
    return s;
  };

  // c1 (u1/A) and c7 (u2/B) will expire; the others live 10 minutes.
  await mint('c1', A, u1, 1);
  await mint('c7', B, u2, 1);
  const s6 = await start('s6', byName.c1!);
  void s6;
  clock.advance(2 * 60_000);
  byName.c1!.status = 'EXPIRED';
  byName.c7!.status = 'EXPIRED';
  await mint('c2', A, u1, 10);
  await mint('c3', A, u1, 10);
  await mint('c4', B, u1, 10);
  await mint('c5', A, u2, 10);
  await mint('c6', A, u2, 10);
  await mint('c8', B, u2, 10);

  await start('s1', byName.c2!);
  const s2 = await start('s2', byName.c2!);
  await start('s3', byName.c4!);
  await start('s4', byName.c5!);
  const s5 = await start('s5', byName.c3!);
  const s7 = await start('s7', byName.c6!);

  clock.advance(1000);
  const end = await c.call('POST', '/v1/access/session/end', { token: admin, body: { session_id: s2.id } });
  assert.is(end.status, 200, end.text);
  s2.status = 'ENDED';
  for (const name of ['c3', 'c6']) {
    const r = await c.call('DELETE', `/v1/access/certificate/${byName[name]!.id}`, { token: admin });
    assert.is(r.status, 200, r.text);
    byName[name]!.status = 'REVOKED';
  }
  s5.status = 'REVOKED';
  s7.status = 'REVOKED';
});

test.after(async () => {
  await c.destroy();
  await cleanup();
});

const qs = (q: Record<string, string | number | boolean | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

const newestFirst = <T extends { id: string }>(all: T[], xs: T[]) =>
  [...xs].sort((a, b) => all.indexOf(b) - all.indexOf(a)).map((x) => x.id);

type CertQ = { sandbox_id?: string; user_id?: string; status?: string; active_only?: boolean };

function expectedCerts(q: CertQ, onlyUser?: string): string[] {
  const rows = certs.filter(
    (m) =>
      (q.sandbox_id === undefined || m.sandbox === q.sandbox_id) &&
      (q.user_id === undefined || m.user === q.user_id) &&
      (onlyUser === undefined || m.user === onlyUser) &&
      (q.status === undefined || m.status === q.status) &&
      (!q.active_only || m.status === 'ACTIVE'),
  );
  return newestFirst(certs, rows);
}

async function listCerts(token: string, q: Record<string, string | number | boolean | undefined>) {
  const r = await c.call('GET', `/v1/access/certificates${qs(q)}`, { token });
  assertOk(r, 'listCertificatesResponse');
  return r;
}

const SANDBOXES = () => [undefined, A.serverId, B.serverId, randomUUID()];
const STATUSES = [undefined, 'ACTIVE', 'EXPIRED', 'REVOKED'];
const ACTIVE_ONLY = [undefined, true, false];

async function checkAllCertFilters(label: string) {
  let n = 0;
  for (const sandbox_id of SANDBOXES())
    for (const user_id of [undefined, u1.id, u2.id])
      for (const status of STATUSES)
        for (const active_only of ACTIVE_ONLY) {
          const q = { sandbox_id, user_id, status, active_only };
          const r = await listCerts(admin, { ...q, limit: 1000 });
          const want = expectedCerts(q);
          const got = r.body.certificates.map((x: { id: string }) => x.id);
          assert.equal(got, want, `${label} ${JSON.stringify(q)}`);
          assert.is(r.body.total, want.length, `${label} total ${JSON.stringify(q)}`);
          for (const row of r.body.certificates) {
            const m = certs.find((x) => x.id === row.id)!;
            assert.is(row.status, m.status);
            assert.is(row.is_expired, m.status === 'EXPIRED');
          }
          assert.equal(
            rawSerials(r.text),
            want.map((id) => certs.find((x) => x.id === id)!.serial),
          );
          n++;
        }
  assert.is(n, 4 * 3 * 4 * 3);
}

test('certificates: every filter alone and combined, as admin', async () => {
  // Sanity of the data set: each status is present.
  for (const s of ['ACTIVE', 'EXPIRED', 'REVOKED']) assert.ok(certs.some((m) => m.status === s));
  await checkAllCertFilters('before markExpired');
});

test('certificates: the expiry job changes nothing visible', async () => {
  const marked = await c.controller.services.access.markExpired();
  assert.is(marked, 2);
  await checkAllCertFilters('after markExpired');
});

test('certificates: limit/offset pagination with a correct total', async () => {
  for (const q of [
    {},
    { sandbox_id: A.serverId },
    { status: 'ACTIVE' },
    { user_id: u2.id, active_only: false },
  ]) {
    const want = expectedCerts(q);
    for (const limit of [1, 2, 3, 5, 50]) {
      const seen: string[] = [];
      for (let offset = 0; offset < want.length + limit; offset += limit) {
        const r = await listCerts(admin, { ...q, limit, offset });
        assert.is(r.body.total, want.length);
        assert.ok(r.body.certificates.length <= limit);
        seen.push(...r.body.certificates.map((x: { id: string }) => x.id));
      }
      assert.equal(seen, want, `${JSON.stringify(q)} limit ${limit}`);
    }
  }
  const beyond = await listCerts(admin, { offset: 500 });
  assert.equal(beyond.body.certificates, []);
  assert.is(beyond.body.total, certs.length);
  // Defaults: limit 50, offset 0.
  const all = await listCerts(admin, {});
  assert.is(all.body.certificates.length, certs.length);
});

test('certificates: users see only their own; asking for another user → 403', async () => {
  for (const u of [u1, u2]) {
    for (const sandbox_id of SANDBOXES())
      for (const status of STATUSES)
        for (const active_only of ACTIVE_ONLY) {
          const q = { sandbox_id, status, active_only };
          for (const withSelf of [false, true]) {
            const r = await listCerts(u.token, { ...q, user_id: withSelf ? u.id : undefined, limit: 1000 });
            const want = expectedCerts(q, u.id);
            assert.equal(
              r.body.certificates.map((x: { id: string }) => x.id),
              want,
            );
            assert.is(r.body.total, want.length);
          }
        }
    const other = u === u1 ? u2 : u1;
    const r = await c.call('GET', `/v1/access/certificates?user_id=${other.id}`, { token: u.token });
    assertAccessError(r, 403);
  }
});

test("certificate by id: own → 200, another user's → 403, unknown → 404, admin → any", async () => {
  const mine = byName.c2!;
  const theirs = byName.c5!;
  const get = (token: string, id: string) => c.call('GET', `/v1/access/certificate/${id}`, { token });
  assertOk(await get(u1.token, mine.id), 'certificateResponse');
  assertAccessError(await get(u1.token, theirs.id), 403);
  assertAccessError(await get(u2.token, mine.id), 403);
  assertAccessError(await get(u1.token, randomUUID()), 404);
  assertAccessError(await get(admin, randomUUID()), 404);
  for (const m of certs) {
    const r = await get(admin, m.id);
    assertOk(r, 'certificateResponse');
    assert.is(r.body.status, m.status);
    assert.equal(rawSerials(r.text), [m.serial]);
  }
  const revoked = await get(admin, byName.c3!.id);
  assert.ok(revoked.body.revoked_at);
  // A user cannot revoke someone else's certificate either.
  assertAccessError(await c.call('DELETE', `/v1/access/certificate/${theirs.id}`, { token: u1.token }), 403);
});

type SessQ = { sandbox_id?: string; certificate_id?: string; user_id?: string; active_only?: boolean };

function expectedSessions(q: SessQ, onlyUser?: string): string[] {
  const rows = sessions.filter(
    (s) =>
      (q.sandbox_id === undefined || s.sandbox === q.sandbox_id) &&
      (q.certificate_id === undefined || s.cert === q.certificate_id) &&
      (q.user_id === undefined || s.user === q.user_id) &&
      (onlyUser === undefined || s.user === onlyUser) &&
      (!q.active_only || s.status === 'ACTIVE'),
  );
  return newestFirst(sessions, rows);
}

async function listSessions(token: string, q: Record<string, string | number | boolean | undefined>) {
  const r = await c.call('GET', `/v1/access/sessions${qs(q)}`, { token });
  assertOk(r, 'listSessionsResponse');
  return r;
}

const CERT_FILTERS = () => [undefined, byName.c2!.id, byName.c4!.id, byName.c3!.id, randomUUID()];

test('sessions: every filter alone and combined (with and without sandbox_id), as admin', async () => {
  let n = 0;
  for (const sandbox_id of [undefined, A.serverId, B.serverId])
    for (const certificate_id of CERT_FILTERS())
      for (const user_id of [undefined, u1.id, u2.id])
        for (const active_only of ACTIVE_ONLY) {
          const q = { sandbox_id, certificate_id, user_id, active_only };
          const r = await listSessions(admin, { ...q, limit: 1000 });
          const want = expectedSessions(q);
          assert.equal(
            r.body.sessions.map((x: { id: string }) => x.id),
            want,
            JSON.stringify(q),
          );
          assert.is(r.body.total, want.length);
          for (const row of r.body.sessions) {
            const m = sessions.find((x) => x.id === row.id)!;
            assert.is(row.status, m.status);
            assert.is(row.certificate_id, m.cert);
            assert.is(row.sandbox_id, m.sandbox);
            assert.is(row.user_id, m.user);
            assert.is(row.source_ip, '203.0.113.9');
            assert.is(row.vm_ip_address, '192.0.2.10');
            assert.is(row.ended_at === '', m.status === 'ACTIVE');
          }
          n++;
        }
  assert.is(n, 3 * 5 * 3 * 3);
});

test('sessions: pagination with a correct total', async () => {
  for (const q of [{}, { active_only: true }, { user_id: u1.id }]) {
    const want = expectedSessions(q);
    for (const limit of [1, 2, 4]) {
      const seen: string[] = [];
      for (let offset = 0; offset < want.length + limit; offset += limit) {
        const r = await listSessions(admin, { ...q, limit, offset });
        assert.is(r.body.total, want.length);
        seen.push(...r.body.sessions.map((x: { id: string }) => x.id));
      }
      assert.equal(seen, want, `${JSON.stringify(q)} limit ${limit}`);
    }
  }
});

test('sessions: users see only their own; asking for another user → 403', async () => {
  for (const u of [u1, u2]) {
    for (const sandbox_id of [undefined, A.serverId, B.serverId])
      for (const certificate_id of CERT_FILTERS())
        for (const active_only of ACTIVE_ONLY) {
          const q = { sandbox_id, certificate_id, active_only };
          const r = await listSessions(u.token, { ...q, limit: 1000 });
          const want = expectedSessions(q, u.id);
          assert.equal(
            r.body.sessions.map((x: { id: string }) => x.id),
            want,
          );
          assert.is(r.body.total, want.length);
        }
    const own = await listSessions(u.token, { user_id: u.id });
    assert.is(own.body.total, expectedSessions({}, u.id).length);
    const other = u === u1 ? u2 : u1;
    assertAccessError(
      await c.call('GET', `/v1/access/sessions?user_id=${other.id}`, { token: u.token }),
      403,
    );
  }
});

test.run();
