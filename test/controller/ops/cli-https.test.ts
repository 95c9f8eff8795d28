/**
 * `vmwarden login https://…`: the controller's CA pinned by its fingerprint (or --ca-file) before a
 * password is sent, and a stored token sent only to the controller it came from. The "other
 * controllers" are real HTTP(S) servers on loopback that record every request they get.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { tempDir } from '../access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

const CLI = fileURLToPath(new URL('../../../controller/src/cli/main.js', import.meta.url));

interface Seen {
  method: string;
  url: string;
  token?: string;
}

interface Recorder {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** A server that answers 401 to everything and remembers what it was asked (and with which token). */
async function recorder(tls?: { key: string; cert: string; ca: string }): Promise<Recorder> {
  const seen: Seen[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', token: req.headers['zt-session'] as string });
    req.resume();
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"recorded"}}');
  };
  const server = tls ? createHttps(tls, handle) : createHttp(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

let c: TestController;
let dir = '';
let cleanup = async () => {};
let fingerprint = '';
let impostor: Recorder; // https, certificate from the controller's own CA
let plain: Recorder; // http

test.before(async () => {
  const t = await tempDir('vmwarden-cli-https-');
  dir = t.dir;
  cleanup = t.cleanup;
  c = await startTestController();
  fingerprint = `SHA256:${c.controller.services.ca.fingerprint}`;
  mkdirSync(join(dir, 'impostor'));
  const creds = await c.controller.services.ca.serverCredentials(join(dir, 'impostor'), ['127.0.0.1']);
  impostor = await recorder({ ...creds, ca: c.caPem });
  plain = await recorder();
});

test.after(async () => {
  await impostor?.close();
  await plain?.close();
  await c?.destroy();
  await cleanup();
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(home: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      // No system CA can vouch for the test CA: an unpinned https login must fail.
      env: { ...process.env, XDG_CONFIG_HOME: join(dir, home), NODE_EXTRA_CA_CERTS: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end('');
  });
}

const ok = (r: Result) => {
  assert.is(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
};
const fails = (r: Result, pattern: RegExp) => {
  assert.is(r.code, 1, `expected exit 1, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
};
const configOf = (home: string) => join(dir, home, 'vmwarden', 'config.json');
const login = (home: string, url: string, ...extra: string[]) =>
  cli(home, ['login', url, '--username', 'admin', '--password', c.adminPassword, ...extra]);
const sameCert = (a: string, b: string) =>
  new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;

test('the controller logs its CA fingerprint in the form login takes', () => {
  assert.match(fingerprint, /^SHA256:[0-9a-f]{64}$/);
  assert.is(
    new X509Certificate(c.caPem).fingerprint256.replace(/:/g, '').toLowerCase(),
    fingerprint.slice(7),
  );
});

test('login URL --fingerprint: the CA is pinned (0600) and every later call trusts only it', async () => {
  const r = ok(await login('pinned', c.httpsBase, '--fingerprint', fingerprint));
  assert.match(r.stdout, /logged in to https:.* as admin .*; controller CA pinned in /);
  assert.is(statSync(configOf('pinned')).mode & 0o777, 0o600);
  const cfg = JSON.parse(readFileSync(configOf('pinned'), 'utf8'));
  assert.is(cfg.url, c.httpsBase);
  assert.ok(sameCert(cfg.caPem, c.caPem));
  const who = JSON.parse(ok(await cli('pinned', ['whoami', '-o', 'json'])).stdout);
  assert.is(who.name, 'admin');
  assert.is(who.controller, c.httpsBase);
  // openssl's way of writing it works too (`openssl x509 -noout -fingerprint -sha256`)
  const openssl = new X509Certificate(c.caPem).fingerprint256;
  ok(await login('openssl', c.httpsBase, '--fingerprint', `sha256 Fingerprint=${openssl}`));
  // logging in again to the same controller keeps the pinned CA without the flag
  ok(await login('pinned', c.httpsBase));
  assert.ok(sameCert(JSON.parse(readFileSync(configOf('pinned'), 'utf8')).caPem, c.caPem));
});

test('a wrong fingerprint is refused before the password is sent', async () => {
  const wrong = `SHA256:${'ab'.repeat(32)}`;
  fails(
    await login('wrong', c.httpsBase, '--fingerprint', wrong),
    /did not present a CA with fingerprint SHA256:abab/,
  );
  assert.not.ok(existsSync(configOf('wrong')));
  // A server holding a certificate of the same CA: with a wrong fingerprint it gets no request at all…
  fails(await login('wrong', impostor.url, '--fingerprint', wrong), /did not present a CA/);
  assert.equal(impostor.seen, []);
  // …and with the right one it does get the login (so the check above could have failed).
  fails(await login('wrong', impostor.url, '--fingerprint', fingerprint), /401 recorded/);
  assert.equal(
    impostor.seen.map((s) => `${s.method} ${s.url}`),
    ['POST /authenticate?method=password'],
  );
  impostor.seen.length = 0;
  const usage = await login('wrong', c.httpsBase, '--fingerprint', 'SHA256:xyz');
  assert.is(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /64 hex digits/);
});

test('--ca-file pins a given CA; an https URL with neither is refused with a hint, nothing sent', async () => {
  const caFile = join(dir, 'controller-ca.pem');
  writeFileSync(caFile, c.caPem);
  ok(await login('cafile', c.httpsBase, '--ca-file', caFile));
  assert.ok(sameCert(JSON.parse(readFileSync(configOf('cafile'), 'utf8')).caPem, c.caPem));
  assert.is(JSON.parse(ok(await cli('cafile', ['whoami', '--json'])).stdout).name, 'admin');

  fails(await login('nothing', c.httpsBase), /cannot trust the controller .*--fingerprint/);
  fails(await login('nothing', impostor.url), /cannot trust the controller .*--fingerprint/);
  assert.equal(impostor.seen, []);
  assert.not.ok(existsSync(configOf('nothing')));
});

test('the stored token goes only to the controller it came from', async () => {
  ok(await login('scoped', c.httpsBase, '--fingerprint', fingerprint));
  const token = JSON.parse(readFileSync(configOf('scoped'), 'utf8')).token;
  assert.type(token, 'string');
  for (const other of [impostor, plain]) {
    fails(
      await cli('scoped', ['whoami', '--url', other.url]),
      /not logged in to .* \(the stored session is for https:/,
    );
    assert.equal(other.seen, []);
  }
  // the same controller's plain-HTTP port is another URL: no token there either
  fails(await cli('scoped', ['identities', 'list', '--url', c.httpBase]), /not logged in to http:/);
  // the same origin written differently is the same controller
  assert.is(
    JSON.parse(ok(await cli('scoped', ['whoami', '--json', '--url', `${c.httpsBase}/`])).stdout).name,
    'admin',
  );
  // a login elsewhere replaces the stored one: the first controller's token is not sent there
  fails(await cli('scoped', ['login', plain.url, '-u', 'admin', '-p', 'x']), /401 recorded/);
  assert.equal(
    plain.seen.map((s) => s.token),
    [undefined],
  );
});

test.run();
