/**
 * `vmwarden ssh`, `ls` and `config-ssh` end to end: the CLI as a separate process logs into a real
 * loopback sshd (TrustedUserCAKeys from the controller, AuthorizedPrincipalsFile with vm-<uuid>)
 * registered as an instance, with the real ssh, ssh-keygen and ssh-agent.
 *
 * Host keys by the controller's host CA only: the sshd's host key is certified through
 * POST /v1/access/host-certificate (principals: the instance name, UUID and address, as the agent asks
 * for), and the CLI's known_hosts holds nothing but the `@cert-authority` line(s) of
 * GET /v1/access/host-ca-pubkeys, with StrictHostKeyChecking=yes; no test passes its own known_hosts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { currentUser, run, startSshd, type Sshd } from '../../helpers/sshd.js';
import { grant, tempDir } from '../access/util.js';
import { waitFor, watchdog } from '../../helpers/wait.js';

watchdog(240);

const CLI = fileURLToPath(new URL('../../../controller/src/cli/main.js', import.meta.url));
const me = currentUser();

let c: TestController;
let sshd: Sshd;
let dir = '';
let cleanup = async () => {};
let unsigned: Sshd;
/** GET /v1/access/host-ca-pubkeys' known_hosts text: what the CLI must write, and nothing else. */
let hostCaLines = '';
let agent: ChildProcess | undefined;
const ids = {
  web: randomUUID(),
  other: randomUUID(),
  stopped: randomUUID(),
  noaddr: randomUUID(),
  unsigned: randomUUID(),
};

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const adminHome = () => join(dir, 'cfg-admin');
const userHome = () => join(dir, 'cfg-user');

function exec(
  cmd: string,
  args: string[],
  opts: { home?: string; env?: Record<string, string> } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: {
        ...process.env,
        XDG_CONFIG_HOME: opts.home ?? adminHome(),
        SSH_AUTH_SOCK: '',
        NO_COLOR: '1',
        ...opts.env,
      },
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

const cli = (args: string[], opts: { home?: string; env?: Record<string, string> } = {}) =>
  exec(process.execPath, [CLI, ...args], opts);

/** Never a prompt: a host key ssh cannot verify fails instead of asking. */
const batch = ['-o', 'BatchMode=yes'];

const ok = (r: Result) => {
  assert.is(r.code, 0, `exit ${r.code}: ${r.stderr}\n--- sshd:\n${sshd?.logs.slice(-1500)}`);
  return r;
};

const oneLineError = (r: Result, pattern: RegExp) => {
  assert.ok(r.code === 1 || r.code === 2, `expected exit 1 or 2, got ${r.code}: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^vmwarden: /);
  assert.match(lines[0]!, pattern);
};

async function register(serverId: string, name: string, fields: Record<string, unknown>) {
  const r = await c.call('POST', '/v1/instances', {
    token: await c.adminToken(),
    body: { server_id: serverId, instance_name: name, login_user: me, state: 'running', ...fields },
  });
  assert.is(r.status, 201, r.text);
}

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-cli-ssh-'));
  c = await startTestController();
  const trusted = join(dir, 'trusted_user_ca_keys');
  writeFileSync(trusted, (await c.call('GET', '/v1/access/ca-pubkeys')).body.trusted_user_ca_keys);
  // The host certificate names web only: `other` (same sshd, its principal accepted) is an impostor.
  sshd = await startSshd({
    trustedCaKeysFile: trusted,
    authorizedPrincipals: [`vm-${ids.web}`, `vm-${ids.other}`],
    extraConfig: ['Subsystem sftp internal-sftp'],
    hostCertificate: async (publicKey) => {
      const r = await c.call('POST', '/v1/access/host-certificate', {
        token: await c.adminToken(),
        body: { public_key: publicKey, principals: ['web', ids.web, '127.0.0.1'] },
      });
      assert.is(r.status, 200, r.text);
      return r.body.certificate as string;
    },
  });
  // A host key the host CA never signed.
  unsigned = await startSshd({ trustedCaKeysFile: trusted, authorizedPrincipals: [`vm-${ids.unsigned}`] });
  const local = { ip_address: '127.0.0.1', ssh_port: sshd.port };
  await register(ids.web, 'web', local);
  await register(ids.other, 'other', local);
  await register(ids.stopped, 'stopped', { ...local, state: 'shut off' });
  await register(ids.noaddr, 'noaddr', { ssh_port: 22 });
  await register(ids.unsigned, 'unsigned', { ip_address: '127.0.0.1', ssh_port: unsigned.port });
  const user = await c.createUser('ssh-user', 'user', 'user-password-1');
  await grant(c, ids.web, user.id);

  const cas = await c.call('GET', '/v1/access/host-ca-pubkeys');
  assert.is(cas.status, 200, cas.text);
  hostCaLines = cas.body.known_hosts;
  assert.match(hostCaLines, /^(@cert-authority \* ssh-\S+ \S+ vmwarden-host-ca\n)+$/);

  const login = (home: string, name: string, pw: string) =>
    cli(['login', '--url', c.httpBase, '--username', name, '--password', pw], { home });
  ok(await login(adminHome(), 'admin', c.adminPassword));
  ok(await login(userHome(), 'ssh-user', 'user-password-1'));
});

test.after(async () => {
  agent?.kill();
  await sshd?.stop();
  await unsigned?.stop();
  await c?.destroy();
  await cleanup();
});

test('vmwarden ssh NAME -- echo hi: generated key (0600), certificate beside it (0600), ssh exit 0', async () => {
  const r = ok(await cli(['ssh', ...batch, 'web', '--', 'echo', 'hi']));
  assert.is(r.stdout, 'hi\n');
  assert.not.match(r.stderr, /warning/);
  // The host was verified by the host CA line(s) alone.
  const knownHosts = join(adminHome(), 'vmwarden', 'known_hosts');
  assert.is(readFileSync(knownHosts, 'utf8'), hostCaLines);
  assert.is(statSync(knownHosts).mode & 0o777, 0o600);
  const key = join(adminHome(), 'vmwarden', 'id_ed25519');
  assert.is(statSync(key).mode & 0o777, 0o600);
  assert.is(statSync(`${key}-cert.pub`).mode & 0o777, 0o600);
  const listed = await run('ssh-keygen', ['-L', '-f', `${key}-cert.pub`]);
  assert.match(listed.stdout, new RegExp(`vm-${ids.web}`));
});

test('a UUID and user@ work; the remote exit code is ours', async () => {
  assert.is(
    ok(await cli(['ssh', ...batch, `${me}@${ids.web}`, '--', 'echo', 'by-uuid'])).stdout,
    'by-uuid\n',
  );
  // After --, dashes belong to the remote command, not to vmwarden or ssh.
  const dashes = ok(await cli(['ssh', ...batch, 'web', '--', 'printf', '%s', '-v', '--json']));
  assert.is(dashes.stdout, '-v--json');
  const r = await cli(['ssh', ...batch, 'web', '--', 'exit', '7']);
  assert.is(r.code, 7, r.stderr);
});

const refused = (r: Result) => {
  assert.is(r.code, 255, r.stderr);
  assert.not.match(r.stdout, /should-not-run/);
  assert.match(r.stderr, /Host key verification failed/);
};

test('a host key the host CA did not sign is refused', async () => {
  refused(await cli(['ssh', ...batch, 'unsigned', '--', 'echo', 'should-not-run']));
});

test('a host certificate that does not name the instance is refused', async () => {
  // `other` is served by web's sshd: its certificate is genuine, but for web, UUID and address only.
  refused(await cli(['ssh', ...batch, 'other', '--', 'echo', 'should-not-run']));
});

test('one-line errors: unknown, not running, no address, no grant', async () => {
  oneLineError(await cli(['ssh', 'nosuch', '--', 'true']), /unknown instance nosuch/);
  oneLineError(await cli(['ssh', 'stopped', '--', 'true']), /instance stopped is shut off, not running/);
  oneLineError(await cli(['ssh', 'noaddr', '--', 'true']), /instance noaddr has no known address/);
  const home = userHome();
  oneLineError(await cli(['ssh', 'other', '--', 'true'], { home }), /no access to instance other: .*grant/);
  oneLineError(await cli(['ssh', ids.other, '--', 'true'], { home }), /no access to instance/);
  oneLineError(await cli(['ssh', 'nosuch', '--', 'true'], { home }), /unknown instance nosuch/);
  // The granted one opens for the user.
  assert.is(ok(await cli(['ssh', ...batch, 'web', '--', 'echo', 'user-in'], { home })).stdout, 'user-in\n');
});

test('with a running ssh-agent the key and certificate are added to it', async () => {
  const sock = join(dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  await waitFor('the ssh-agent socket', () => existsSync(sock), { timeoutMs: 5000, intervalMs: 20 });
  const env = { SSH_AUTH_SOCK: sock };
  ok(await cli(['ssh', ...batch, 'web', '--', 'true'], { env }));
  const listed = await exec('ssh-add', ['-l'], { env });
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /ED25519-CERT/);
});

test('ls: admins see every instance; a user only the granted one', async () => {
  const all = JSON.parse(ok(await cli(['ls', '--json'])).stdout).instances;
  assert.equal(
    all.map((i: { name: string }) => i.name),
    ['noaddr', 'other', 'stopped', 'unsigned', 'web'],
  );
  const web = all.find((i: { name: string }) => i.name === 'web');
  assert.is(web.server_id, ids.web);
  assert.is(web.address, '127.0.0.1');
  assert.is(web.port, sshd.port);
  assert.is(web.state, 'running');
  assert.is(web.signature, 'none');
  const lines = ok(await cli(['ls']))
    .stdout.trimEnd()
    .split('\n');
  assert.equal(lines[0]!.split(/\s+/), ['NAME', 'STATE', 'ADDRESS', 'NODE', 'SIGNATURE']);
  assert.match(
    lines.find((l) => l.startsWith('web'))!,
    new RegExp(`^web\\s+running\\s+127\\.0\\.0\\.1:${sshd.port}\\s`),
  );

  const mine = JSON.parse(ok(await cli(['ls', '--json'], { home: userHome() })).stdout).instances;
  assert.equal(
    mine.map((i: { name: string }) => i.name),
    ['web'],
  );
});

test('config-ssh: a real ssh reads the block (ssh -G), then logs in through the ProxyCommand', async () => {
  const printed = ok(await cli(['config-ssh', '--print'])).stdout;
  const wrote = ok(await cli(['config-ssh']));
  assert.not.match(wrote.stderr, /warning/);
  const file = join(adminHome(), 'vmwarden', 'ssh_config');
  assert.match(wrote.stdout, new RegExp(`Include ${file}`));
  assert.is(readFileSync(file, 'utf8'), printed);
  // Every instance's block names it as the HostKeyAlias: host certificates carry the bare name.
  for (const name of ['noaddr', 'other', 'stopped', 'unsigned', 'web'])
    assert.ok(printed.includes(`Host ${name}.vmw\n  HostKeyAlias ${name}\n`), name);

  const g = ok(await exec('ssh', ['-F', file, '-G', 'web.vmw']));
  const effective = new Map(
    g.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as [string, string]),
  );
  assert.is(effective.get('user'), me);
  assert.is(effective.get('hostkeyalias'), 'web');
  assert.is(effective.get('identitiesonly'), 'yes');
  assert.match(effective.get('proxycommand')!, /main\.js' ssh-proxy --domain vmw /);
  assert.match(effective.get('certificatefile')!, /certs\/(%n|web\.vmw)-cert\.pub$/);
  assert.match(effective.get('identityfile')!, /vmwarden\/id_ed25519$/);
  assert.is(effective.get('stricthostkeychecking'), 'true');
  const knownHosts = join(adminHome(), 'vmwarden', 'known_hosts');
  assert.is(effective.get('userknownhostsfile'), knownHosts);
  assert.is(readFileSync(knownHosts, 'utf8'), hostCaLines);

  const login = () => exec('ssh', ['-F', file, ...batch, 'web.vmw', 'echo', 'via-proxy']);
  assert.is(ok(await login()).stdout, 'via-proxy\n');
  const cert = join(adminHome(), 'vmwarden', 'certs', 'web.vmw-cert.pub');
  assert.is(statSync(cert).mode & 0o777, 0o600);
  const first = readFileSync(cert, 'utf8');
  // Still valid for more than a minute: reused, not requested again.
  assert.is(ok(await login()).stdout, 'via-proxy\n');
  assert.is(readFileSync(cert, 'utf8'), first);

  // scp through the same block.
  const src = join(dir, 'payload.txt');
  writeFileSync(src, 'copied through vmwarden\n');
  ok(await exec('scp', ['-F', file, ...batch, '-q', src, `web.vmw:${join(dir, 'copied.txt')}`]));
  assert.is(readFileSync(join(dir, 'copied.txt'), 'utf8'), 'copied through vmwarden\n');

  // An instance the user may not reach: ssh fails, the reason is vmwarden's one line.
  const denied = await exec('ssh', ['-F', file, ...batch, 'other.vmw', 'true'], { home: userHome() });
  assert.is(denied.code, 255);
  assert.match(denied.stderr, /vmwarden: no access to instance other/);
});

test.run();
