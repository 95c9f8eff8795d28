/**
 * Bad input never crashes the group: malformed JSON, wrong types, unknown fields, oversized bodies,
 * wrong content types, unknown routes — always a 4xx in the OpenZiti error envelope, never a 500.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { assertError, randomUuid } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(90);

let c: TestController;
let user: { id: string; token: string; password: string };
let updbId: string;

test.before(async () => {
  c = await startTestController();
  user = await c.createUser('rita', 'user', 'rita-password');
  updbId = (await c.call('GET', '/current-identity/authenticators', { token: user.token })).body.data[0].id;
});
test.after(async () => c.destroy());

const json = { 'content-type': 'application/json' };

test('malformed JSON → 400 in the envelope', async () => {
  for (const raw of ['{', '{"username": "rita",}', 'nope', '{"a":1}}', '\u0000']) {
    const r = await c.call('POST', '/authenticate?method=password', { raw, headers: json });
    assertError(r, 400);
  }
  const r = await c.call('PATCH', `/current-identity/authenticators/${updbId}`, {
    token: user.token,
    raw: '{"currentPassword": ',
    headers: json,
  });
  assertError(r, 400);
  assert.is(r.body.error.code, 'COULD_NOT_PARSE_BODY');
});

test('empty body with a JSON content type on a route whose body is required → 400', async () => {
  assertError(
    await c.call('POST', '/identities', { token: await c.adminToken(), raw: '', headers: json }),
    400,
  );
});

test('wrong JSON types → 400 COULD_NOT_VALIDATE naming the field', async () => {
  const r = await c.call('POST', '/authenticate?method=password', {
    body: { username: 'rita', password: 12345 },
  });
  assertError(r, 400, 'COULD_NOT_VALIDATE');
  assert.is(r.body.error.cause.field, 'password');
  for (const body of [
    null,
    'rita',
    42,
    true,
    ['rita', 'rita-password'],
    { username: ['rita'], password: 'x' },
  ]) {
    assertError(await c.call('POST', '/authenticate?method=password', { body }), 400);
  }
  const t = await c.call('POST', '/identities', {
    token: await c.adminToken(),
    body: { name: 'typed-user', role: ['user'] },
  });
  assertError(t, 400, 'COULD_NOT_VALIDATE');
  assert.is(t.body.error.cause.field, 'role');
});

test('unknown fields where the schema forbids them → 400 naming the field', async () => {
  const r = await c.call('PATCH', `/current-identity/authenticators/${updbId}`, {
    token: user.token,
    body: { currentPassword: 'rita-password', password: 'new-password', isAdmin: true },
  });
  assertError(r, 400, 'COULD_NOT_VALIDATE');
  assert.is(r.body.error.cause.field, 'isAdmin');
  // and the password was not changed on the way
  assert.ok(await c.login('rita', 'rita-password'));
  const id = await c.call('POST', '/identities', {
    token: await c.adminToken(),
    body: { name: 'field-user', role: 'user', extra: 1 },
  });
  assertError(id, 400, 'COULD_NOT_VALIDATE');
});

test('a body over 1 MiB → 413', async () => {
  const big = JSON.stringify({ username: 'rita', password: 'x'.repeat(1024 * 1024) });
  const r = await c.call('POST', '/authenticate?method=password', { raw: big, headers: json });
  assertError(r, 413);
  const r2 = await c.call('POST', '/identities', {
    token: await c.adminToken(),
    raw: JSON.stringify({ name: 'big-user', role: 'user', tags: { x: 'y'.repeat(1100 * 1024) } }),
    headers: json,
  });
  assertError(r2, 413);
  // just under the limit is parsed (then refused by validation, not by size)
  const under = JSON.stringify({ username: 'rita', password: 'x'.repeat(1000 * 1024) });
  assertError(await c.call('POST', '/authenticate?method=password', { raw: under, headers: json }), 400);
});

test('wrong content type → 415 (or 400), in the envelope', async () => {
  for (const ct of [
    'text/plain',
    'application/xml',
    'application/x-www-form-urlencoded',
    'multipart/form-data',
  ]) {
    const r = await c.call('POST', '/authenticate?method=password', {
      raw: ct.includes('json') ? '{}' : 'username=rita&password=rita-password',
      headers: { 'content-type': ct },
    });
    assert.ok(r.status === 415 || r.status === 400, `${ct}: ${r.status}`);
    assertError(r, r.status);
    assert.not.ok(r.headers['zt-session']);
  }
});

test('unknown routes and methods → 404 in the envelope', async () => {
  assertError(await c.call('GET', '/no-such-route'), 404, 'NOT_FOUND');
  assertError(await c.call('GET', '/no-such-route', { token: user.token }), 404, 'NOT_FOUND');
  assertError(await c.call('PUT', '/current-api-session', { token: user.token, body: {} }), 404);
  assertError(
    await c.call('POST', `/current-identity/authenticators/${randomUuid()}/nope`, {
      token: user.token,
      body: {},
    }),
    404,
  );
});

test('bad query strings → 400', async () => {
  const token = user.token;
  const list = (qs: string) => c.call('GET', `/current-identity/authenticators${qs}`, { token });
  assertError(await list('?limit=1.5'), 400);
  assertError(await list(`?filter=${'a'.repeat(5000)}`), 400);
  assertError(await list(`?filter=${encodeURIComponent('"')}`), 400, 'INVALID_FILTER');
  assertError(await list(`?filter=${encodeURIComponent('id = "' + 'x'.repeat(10) + '" and (((((')}`), 400);
  // an exotic but valid filter does not crash either
  const deep = `${'('.repeat(200)}method = "updb"${')'.repeat(200)}`;
  const r = await list(`?filter=${encodeURIComponent(deep)}`);
  assert.ok(r.status === 200 || r.status === 400, `${r.status} ${r.text.slice(0, 200)}`);
});

/** Raw request (fetch refuses some of these). */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  const [host, port] = c.controller.endpoints.http!.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not json */
        }
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as Record<string, string>,
          body: parsed,
          text,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a Content-Length that lies, and a GET with a body, are handled', async () => {
  const r = await raw(
    'POST',
    '/authenticate?method=password',
    { ...json, 'content-length': String(2 * 1024 * 1024) },
    '{}',
  );
  // the server either refuses the announced size at once or sees the client close; never a 500
  assert.ok(r.status === 413 || r.status === 400, String(r.status));
  const g = await raw('GET', '/current-api-session', { ...json, 'zt-session': user.token }, '{"x":1}');
  assert.ok(g.status < 500, String(g.status));
});

test('offsets beyond what SQLite can take → 400 INVALID_PAGINATION, not 500', async () => {
  const list = (qs: string) => c.call('GET', `/current-identity/authenticators${qs}`, { token: user.token });
  assertError(await list('?offset=99999999999999999999'), 400, 'INVALID_PAGINATION');
  assertError(
    await list(`?filter=${encodeURIComponent('skip 99999999999999999999')}`),
    400,
    'INVALID_PAGINATION',
  );
  assertError(await list('?offset=9007199254740992'), 400, 'INVALID_PAGINATION');
  const max = await list('?offset=9007199254740991');
  assert.is(max.status, 200, max.text);
  assert.is(max.body.data.length, 0);
  assertError(await c.call('GET', '/identities?offset=1e25', { token: await c.adminToken() }), 400);
});

/** Writes raw bytes on a TCP connection and returns everything the server sent before closing. */
function rawSocket(bytes: string): Promise<string> {
  const [host, port] = c.controller.endpoints.http!.split(':');
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), host!);
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.write(bytes);
  });
}

test('requests the HTTP parser rejects (bad request line, huge headers) get the envelope too', async () => {
  const bad = await rawSocket('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400 /);
  const body = JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4));
  assertError(
    { status: 400, headers: { 'content-type': 'application/json' }, body, text: '' },
    400,
    'BAD_REQUEST',
  );

  const long = await c.call('GET', `/current-identity/authenticators?filter=${'x'.repeat(20_000)}`, {
    token: user.token,
  });
  assertError(long, 431);
});

test('errors carry a unique requestId', async () => {
  const a = await c.call('GET', '/current-api-session');
  const b = await c.call('GET', '/current-api-session');
  assert.is.not(a.body.error.requestId, b.body.error.requestId);
});

test('the controller is still healthy after all of that', async () => {
  const r = await c.call('GET', '/current-api-session', { token: user.token });
  assert.is(r.status, 200);
});

test.run();
