/**
 * `vmwarden ssh` and `config-ssh` verifying host keys by a host CA only: the loopback sshd presents a
 * host certificate (principals: the instance name, UUID, address) and the CLI's known_hosts holds
 * nothing but the `@cert-authority` line of GET /v1/access/host-ca-pubkeys, StrictHostKeyChecking=yes.
 *
 * The controller's host CA is built elsewhere: until it lands, a stand-in in front of the controller
 * answers that route with a host CA made here by ssh-keygen and forwards every other request. When the
 * controller has the route: drop the stand-in, log the CLI into the controller itself and sign the
 * sshd's host key with the controller's host CA.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { currentUser, run, startSshd, type Sshd } from '../../helpers/sshd.js';
import { tempDir } from '../access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

const CLI = fileURLToPath(new URL('../../../controller/src/cli/main.js', import.meta.url));
const me = currentUser();
const ids = { web: randomUUID(), impostor: randomUUID() };

let c: TestController;
let sshd: Sshd;
let standIn: Server;
let dir = '';
let cleanup = async () => {};
/** What the stand-in answers: the known_hosts text of the host CA. */
let hostCaLine = '';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, XDG_CONFIG_HOME: join(dir, 'cfg'), SSH_AUTH_SOCK: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
const cli = (args: string[]) => exec(process.execPath, [CLI, ...args]);
const ok = (r: Result) => {
  assert.is(r.code, 0, `exit ${r.code}: ${r.stderr}\n--- sshd:\n${sshd?.logs.slice(-1500)}`);
  return r;
};

async function keygen(args: string[]) {
  const r = await run('ssh-keygen', args);
  assert.is(r.code, 0, r.stderr);
}

async function makeHostCa(name: string): Promise<string> {
  const file = join(dir, name);
  await keygen(['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  return file;
}

/** Forwards everything to the controller but GET /v1/access/host-ca-pubkeys. */
function startStandIn(target: URL): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/access/host-ca-pubkeys') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ public_keys: [], known_hosts: hostCaLine }));
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-cli-host-ca-'));
  c = await startTestController();
  const trusted = join(dir, 'trusted_user_ca_keys');
  writeFileSync(trusted, (await c.call('GET', '/v1/access/ca-pubkeys')).body.trusted_user_ca_keys);

  // The sshd's certified host key (ECDSA beside its plain ed25519 one: ssh prefers certificates).
  const hostCa = await makeHostCa('host_ca');
  const hostKey = join(dir, 'host_ecdsa');
  await keygen(['-q', '-t', 'ecdsa', '-N', '', '-f', hostKey]);
  await keygen(['-q', '-s', hostCa, '-I', 'web', '-h', '-n', `web,${ids.web},127.0.0.1`, `${hostKey}.pub`]);
  hostCaLine = `@cert-authority * ${readFileSync(`${hostCa}.pub`, 'utf8').trim()}\n`;
  sshd = await startSshd({
    trustedCaKeysFile: trusted,
    authorizedPrincipals: [`vm-${ids.web}`, `vm-${ids.impostor}`],
    extraConfig: [`HostKey ${hostKey}`, `HostCertificate ${hostKey}-cert.pub`],
  });
  for (const [name, id] of Object.entries(ids)) {
    const r = await c.call('POST', '/v1/instances', {
      token: await c.adminToken(),
      body: {
        server_id: id,
        instance_name: name,
        ip_address: '127.0.0.1',
        ssh_port: sshd.port,
        login_user: me,
        state: 'running',
      },
    });
    assert.is(r.status, 201, r.text);
  }
  standIn = await startStandIn(new URL(c.httpBase));
  const url = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
  ok(await cli(['login', '--url', url, '--username', 'admin', '--password', c.adminPassword]));
});

test.after(async () => {
  standIn?.close();
  await sshd?.stop();
  await c?.destroy();
  await cleanup();
});

test('vmwarden ssh trusts the host certificate through the CA line alone, no warning', async () => {
  const r = ok(await cli(['ssh', '-o', 'BatchMode=yes', 'web', '--', 'echo', 'host-ca']));
  assert.is(r.stdout, 'host-ca\n');
  assert.not.match(r.stderr, /warning/);
  assert.is(readFileSync(join(dir, 'cfg', 'vmwarden', 'known_hosts'), 'utf8'), hostCaLine);
});

test('a host certificate that does not name the instance is refused', async () => {
  const r = await cli(['ssh', '-o', 'BatchMode=yes', 'impostor', '--', 'echo', 'should-not-run']);
  assert.is(r.code, 255);
  assert.not.match(r.stdout, /should-not-run/);
  assert.match(r.stderr, /Host key verification failed/);
});

test('config-ssh with the host CA: plain ssh -F logs in with StrictHostKeyChecking=yes', async () => {
  const file = join(dir, 'cfg', 'vmwarden', 'ssh_config');
  ok(await cli(['config-ssh']));
  const text = readFileSync(file, 'utf8');
  assert.match(text, /StrictHostKeyChecking yes/);
  assert.match(text, /UserKnownHostsFile ".*vmwarden\/known_hosts"/);
  const r = ok(await exec('ssh', ['-F', file, '-o', 'BatchMode=yes', 'web.vmw', 'echo', 'via-config']));
  assert.is(r.stdout, 'via-config\n');
});

test('a host key signed by another CA is refused', async () => {
  hostCaLine = `@cert-authority * ${readFileSync(`${await makeHostCa('other_ca')}.pub`, 'utf8').trim()}\n`;
  const r = await cli(['ssh', '-o', 'BatchMode=yes', 'web', '--', 'echo', 'should-not-run']);
  assert.is(r.code, 255);
  assert.not.match(r.stdout, /should-not-run/);
  assert.match(r.stderr, /Host key verification failed/);
});

test.run();
