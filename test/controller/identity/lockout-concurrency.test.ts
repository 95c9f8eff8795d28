/**
 * The login lockout under concurrency (issue 12, section 2). Every burst is sent on pre-opened
 * sockets: N raw TCP connections are opened first, then all N requests are written in one go, so
 * they reach the controller together and scrypt (async) is running for the first ones while the rest
 * are checked. Evaluations are counted as 401s (a wrong password that was checked); refusals as 429s.
 * Source addresses other than 127.0.0.1 come from binding the client socket inside 127.0.0.0/8; the
 * controller uses the socket's address (no proxy headers are trusted).
 */
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { ManualClock } from '../../../lib/platform/clock.js';
import { issueCert, type ClientCert } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(600); // a bound for a hung file only: scrypt bursts are slow on a loaded machine

interface RawRequest {
  method?: string;
  path?: string;
  body: unknown;
  token?: string;
  /** Source address of the client socket (default 127.0.0.1). */
  from?: string;
}

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: any;
}

const password = (username: string, pw: string, from?: string): RawRequest => ({
  body: { username, password: pw },
  from,
});

function hostPort(c: TestController) {
  const [host, port] = c.controller.endpoints.http!.split(':') as [string, string];
  return { host, port: Number(port) };
}

function open(c: TestController, from?: string): Promise<Socket> {
  const { host, port } = hostPort(c);
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress: from });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function read(s: Socket): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.setTimeout(60_000, () => s.destroy(new Error('no reply within 60 s')));
    s.on('data', (d) => chunks.push(d));
    s.once('error', reject);
    s.once('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m || split < 0) return reject(new Error(`not an HTTP reply: ${JSON.stringify(text)}`));
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, split).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const raw = text.slice(split + 4);
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        /* not JSON */
      }
      resolve({ status: Number(m[1]), headers, body });
    });
  });
}

/** Opens one socket per request, then writes every request at once; returns the replies in order. */
async function burst(c: TestController, requests: RawRequest[]): Promise<RawReply[]> {
  const sockets = await Promise.all(requests.map((r) => open(c, r.from)));
  const replies = sockets.map(read);
  const wire = requests.map((r) => {
    const body = JSON.stringify(r.body);
    return (
      `${r.method ?? 'POST'} ${r.path ?? '/authenticate?method=password'} HTTP/1.1\r\n` +
      `Host: ${c.controller.endpoints.http}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      (r.token ? `zt-session: ${r.token}\r\n` : '') +
      'Connection: close\r\n\r\n' +
      body
    );
  });
  // no await between the writes: all requests are on the wire before the controller answers any
  sockets.forEach((s, i) => s.write(wire[i]!));
  return Promise.all(replies);
}

function count(replies: RawReply[]) {
  const n = { ok: 0, evaluated: 0, limited: 0, other: [] as number[] };
  for (const r of replies) {
    if (r.status === 200) n.ok++;
    else if (r.status === 401) n.evaluated++;
    else if (r.status === 429) {
      n.limited++;
      assert.is(r.body?.error?.code, 'RATE_LIMITED', JSON.stringify(r.body));
      assert.type(r.body?.meta, 'object');
      assert.match(r.headers['retry-after'] ?? '', /^[1-9]\d*$/, 'Retry-After on every 429');
    } else n.other.push(r.status);
  }
  assert.equal(n.other, [], 'only 200, 401 and 429');
  return n;
}

async function loginFrom(c: TestController, username: string, pw: string, from: string) {
  const [r] = await burst(c, [password(username, pw, from)]);
  return r!;
}

test('40 logins on pre-opened sockets, limit 10: 10 evaluated, the right password sent 40th is refused', async () => {
  const clock = new ManualClock();
  const c = await startTestController(
    { loginMaxFailuresPerUsername: 10, loginMaxFailuresPerAddress: 1000, loginFailureWindowSeconds: 60 },
    clock,
  );
  try {
    await c.createUser('victim-user', 'user', 'victim-password');
    const requests = Array.from({ length: 39 }, (_, i) => password('victim-user', `wrong-${i}`));
    requests.push(password('victim-user', 'victim-password'));
    const replies = await burst(c, requests);
    const n = count(replies);
    assert.is(n.evaluated, 10, `evaluated ${n.evaluated}, limit 10`);
    assert.is(n.limited, 30);
    assert.is(n.ok, 0);
    assert.is(replies[39]!.status, 429, 'the right password, sent 40th, while locked');

    // the lock is the limiter's, not a broken password: after the window the same password works
    clock.advance(61_000);
    assert.is((await loginFrom(c, 'victim-user', 'victim-password', '127.0.0.1')).status, 200);
  } finally {
    await c.destroy();
  }
});

test('bursts of 100: each evaluates exactly the limit left', async () => {
  const clock = new ManualClock();
  const c = await startTestController(
    { loginMaxFailuresPerUsername: 10, loginMaxFailuresPerAddress: 1000, loginFailureWindowSeconds: 60 },
    clock,
  );
  try {
    await c.createUser('burst-user', 'user', 'burst-password');
    const wrong = (n: number) => Array.from({ length: n }, (_, i) => password('burst-user', `wrong-${i}`));
    let n = count(await burst(c, wrong(100)));
    assert.is(n.evaluated, 10);
    assert.is(n.limited, 90);
    n = count(await burst(c, wrong(100)));
    assert.is(n.evaluated, 0, 'a second burst while locked evaluates nothing');
    assert.is(n.limited, 100);
    // half the window later nothing has expired yet; after it, a new burst gets a full budget again
    clock.advance(30_000);
    assert.is(count(await burst(c, wrong(100))).evaluated, 0);
    clock.advance(31_000);
    n = count(await burst(c, wrong(100)));
    assert.is(n.evaluated, 10);
    assert.is(n.limited, 90);
  } finally {
    await c.destroy();
  }
});

test('300 usernames from one address evaluate at most the per-address limit (50); others and certificates unaffected', async () => {
  const c = await startTestController({
    loginMaxFailuresPerUsername: 10,
    loginMaxFailuresPerAddress: 50,
  });
  try {
    const user = await c.createUser('cert-holder', 'user', 'cert-holder-password');
    const cert = await issueCert(c, user.id, '/CN=cert-holder');
    const requests = Array.from({ length: 300 }, (_, i) => password(`spray-${i}`, 'password1', '127.0.0.2'));
    const n = count(await burst(c, requests));
    assert.is(n.evaluated, 50, `evaluated ${n.evaluated}, per-address limit 50`);
    assert.is(n.limited, 250);

    // the spraying address is locked for every username, even with the right password
    assertLimited(await loginFrom(c, 'admin', c.adminPassword, '127.0.0.2'));
    // another address is not
    assert.is((await loginFrom(c, 'admin', c.adminPassword, '127.0.0.3')).status, 200);
    // a certificate login from the locked address is not limited by wrong passwords
    const byCert = await certLoginFrom(c, cert, '127.0.0.2');
    assert.is(byCert.status, 200, byCert.text);
  } finally {
    await c.destroy();
  }
});

/** POST /authenticate?method=cert over HTTPS with a client certificate, from a chosen source address. */
function certLoginFrom(c: TestController, cert: ClientCert, from: string) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpsRequest(
      `${c.httpsBase}/authenticate?method=cert`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ca: c.caPem,
        cert: cert.cert,
        key: cert.key,
        localAddress: from,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
}

function assertLimited(r: RawReply) {
  assert.is(r.status, 429, JSON.stringify(r.body));
  assert.is(r.body.error.code, 'RATE_LIMITED');
}

test("a stranger's failures for admin from one address do not lock admin out from another", async () => {
  const clock = new ManualClock();
  const c = await startTestController(
    {
      loginMaxFailuresPerUsername: 10,
      loginMaxFailuresPerAddress: 1000,
      loginFailureWindowSeconds: 60,
      loginMaxFailuresPerUsernameAnyAddress: 25,
      loginAnyAddressWindowSeconds: 600,
    },
    clock,
  );
  try {
    const stranger = Array.from({ length: 30 }, (_, i) => password('admin', `guess-${i}`, '127.0.0.2'));
    const n = count(await burst(c, stranger));
    assert.is(n.evaluated, 10);
    assert.is(n.limited, 20);
    assertLimited(await loginFrom(c, 'admin', c.adminPassword, '127.0.0.2'));
    // the admin, elsewhere, logs in (and this success does not unlock the stranger)
    assert.is((await loginFrom(c, 'admin', c.adminPassword, '127.0.0.1')).status, 200);
    assertLimited(await loginFrom(c, 'admin', c.adminPassword, '127.0.0.2'));

    // guessing spread over many addresses meets the slower per-username ceiling (25 here):
    // 10 more addresses × 10 guesses at once evaluate only the 15 the ceiling has left
    const spread = [];
    for (let a = 10; a < 20; a++)
      for (let i = 0; i < 10; i++) spread.push(password('admin', `spread-${a}-${i}`, `127.0.1.${a}`));
    const s = count(await burst(c, spread));
    assert.is(s.evaluated, 15, `evaluated ${s.evaluated}, ceiling 25 with 10 used`);
    assert.is(s.limited, 85);
    assertLimited(await loginFrom(c, 'admin', c.adminPassword, '127.0.0.1'));
    // the ceiling's window is its own: past the short window it still holds, past its own it lifts
    clock.advance(61_000);
    assertLimited(await loginFrom(c, 'admin', c.adminPassword, '127.0.0.1'));
    clock.advance(540_000);
    assert.is((await loginFrom(c, 'admin', c.adminPassword, '127.0.0.1')).status, 200);
  } finally {
    await c.destroy();
  }
});

test('currentPassword checks (password change) are throttled with the login counters', async () => {
  const clock = new ManualClock();
  const c = await startTestController(
    { loginMaxFailuresPerUsername: 10, loginMaxFailuresPerAddress: 1000, loginFailureWindowSeconds: 60 },
    clock,
  );
  try {
    const pat = await c.createUser('pat-user', 'user', 'pat-password');
    const list = await c.call('GET', '/current-identity/authenticators', { token: pat.token });
    const updb = (list.body.data as { id: string; method: string }[]).find((a) => a.method === 'updb')!;
    const change = (current: string, from?: string): RawRequest => ({
      method: 'PATCH',
      path: `/current-identity/authenticators/${updb.id}`,
      token: pat.token,
      body: { currentPassword: current, password: 'stolen-new-password' },
      from,
    });
    const requests = Array.from({ length: 29 }, (_, i) => change(`guess-${i}`));
    requests.push(change('pat-password'));
    const replies = await burst(c, requests);
    const n = count(replies);
    assert.is(n.evaluated, 10, `evaluated ${n.evaluated}, limit 10`);
    for (const r of replies.filter((r) => r.status === 401)) assert.is(r.body.error.code, 'UNAUTHORIZED');
    assert.is(n.limited, 20);
    assert.is(replies[29]!.status, 429, 'the right current password, sent last, while locked');

    // same counters as logins: the login from this address is locked too, another address is not,
    // and the password was not changed
    assertLimited(await loginFrom(c, 'pat-user', 'pat-password', '127.0.0.1'));
    assert.is((await loginFrom(c, 'pat-user', 'pat-password', '127.0.0.2')).status, 200);
    assert.is((await loginFrom(c, 'pat-user', 'stolen-new-password', '127.0.0.2')).status, 401);

    clock.advance(61_000);
    const [ok] = await burst(c, [change('pat-password')]);
    assert.is(ok!.status, 200, JSON.stringify(ok!.body));
    assert.is((await loginFrom(c, 'pat-user', 'stolen-new-password', '127.0.0.2')).status, 200);
  } finally {
    await c.destroy();
  }
});

test.run();
