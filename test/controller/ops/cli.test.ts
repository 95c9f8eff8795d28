/** The `vmwarden` CLI against a running controller, as a separate process with its own config dir. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { createInstance, grant, makeUserKey, run, tempDir } from '../access/util.js';
import { watchdog } from '../../helpers/wait.js';
import { parse as parseYaml } from 'yaml';
import { localTime } from '../../../controller/src/cli/output.js';

watchdog(180);

const CLI = fileURLToPath(new URL('../../../controller/src/cli/main.js', import.meta.url));

let c: TestController;
let dir = '';
let cleanup = async () => {};

test.before(async () => {
  const t = await tempDir('vmwarden-cli-test-');
  dir = t.dir;
  cleanup = t.cleanup;
  c = await startTestController();
});

test.after(async () => {
  await c?.destroy();
  await cleanup();
});

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], opts: { home?: string; stdin?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, XDG_CONFIG_HOME: opts.home ?? join(dir, 'cfg-admin'), NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

const ok = (r: Result) => {
  assert.is(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
};
const json = (r: Result) => JSON.parse(ok(r).stdout);
const oneLineError = (r: Result, pattern?: RegExp) => {
  assert.ok(r.code !== 0, `expected failure, got: ${r.stdout}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^vmwarden: /);
  if (pattern) assert.match(lines[0]!, pattern);
};

test('login with --password stores URL and token privately; whoami', async () => {
  const r = ok(
    await cli(['login', '--url', c.httpBase, '--username', 'admin', '--password', c.adminPassword]),
  );
  assert.match(r.stdout, /logged in to .* as admin/);
  const cfgDir = join(dir, 'cfg-admin', 'vmwarden');
  assert.is(statSync(cfgDir).mode & 0o777, 0o700);
  const file = join(cfgDir, 'config.json');
  assert.is(statSync(file).mode & 0o777, 0o600);
  const cfg = JSON.parse(readFileSync(file, 'utf8'));
  assert.is(cfg.url, c.httpBase);
  assert.type(cfg.token, 'string');
  const who = json(await cli(['whoami', '--json']));
  assert.is(who.name, 'admin');
  assert.is(who.role, 'admin');
  assert.match(ok(await cli(['whoami'])).stdout, /^name:\s+admin$/m);
});

test('login reads the password from stdin when it is not a terminal; wrong password fails', async () => {
  await c.createUser('cli-user', 'user', 'user-password-1');
  const home = join(dir, 'cfg-user');
  ok(
    await cli(['login', '--url', c.httpBase, '--username', 'cli-user'], { home, stdin: 'user-password-1\n' }),
  );
  assert.is(json(await cli(['whoami', '--json'], { home })).name, 'cli-user');
  oneLineError(
    await cli(['login', '--url', c.httpBase, '--username', 'cli-user', '--password', 'wrong'], {
      home: join(dir, 'cfg-x'),
    }),
    /401/,
  );
  oneLineError(await cli(['whoami'], { home: join(dir, 'cfg-none') }), /not logged in/);
  oneLineError(
    await cli(['login', '--url', 'http://127.0.0.1:1', '--username', 'a', '--password', 'b'], {
      home: join(dir, 'cfg-x'),
    }),
    /cannot reach/,
  );
});

/** Runs `vmwarden login` on a pseudo-terminal (python3's pty), types the password at the prompt. */
const PTY = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:4] + ['--url', sys.argv[4], '--username', 'admin'])
out = b''
while b'password' not in out:
    out += os.read(fd, 1024)
os.write(fd, sys.argv[5].encode() + b'\\r')
while True:
    try:
        d = os.read(fd, 1024)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode())
sys.exit(os.waitstatus_to_exitcode(st))
`;

test('login prompts for the password on a terminal, without echo', async () => {
  const home = join(dir, 'cfg-tty');
  const r = await new Promise<Result>((resolve, reject) => {
    const child = spawn('python3', ['-c', PTY, process.execPath, CLI, 'login', c.httpBase, c.adminPassword], {
      env: { ...process.env, XDG_CONFIG_HOME: home },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /password for admin: /);
  assert.match(r.stdout, /logged in to .* as admin/);
  assert.not.ok(r.stdout.includes(c.adminPassword), 'the password was echoed');
  assert.is(json(await cli(['whoami', '--json'], { home })).name, 'admin');
});

test('identities list, create, delete', async () => {
  const made = json(
    await cli([
      'identities',
      'create',
      'cli-temp',
      '--role',
      'user',
      '--password',
      'temp-password-1',
      '--json',
    ]),
  );
  assert.type(made.id, 'string');
  const list = json(await cli(['identities', 'list', '--json']));
  assert.ok(list.some((i: any) => i.id === made.id && i.name === 'cli-temp'));
  const human = ok(await cli(['identities', 'list'])).stdout;
  assert.match(human, /^ID\s+NAME\s+ROLE/);
  assert.match(human, /cli-temp\s+user/);
  ok(await cli(['identities', 'delete', made.id]));
  assert.not.ok(json(await cli(['identities', 'list', '--json'])).some((i: any) => i.id === made.id));
  oneLineError(await cli(['identities', 'delete', made.id]), /404/);
  oneLineError(await cli(['identities', 'create', 'x!', '--json']), /400/);
});

test('keys add, list, rm (as a user)', async () => {
  const home = join(dir, 'cfg-user');
  const key = await makeUserKey(dir, 'id_keys', 'ed25519');
  const added = json(await cli(['keys', 'add', key.pubFile, '--comment', 'laptop', '--json'], { home }));
  assert.match(added.Id, /^\d+$/);
  const list = json(await cli(['keys', 'list', '--json'], { home }));
  assert.is(list.length, 1);
  assert.is(list[0].Id, added.Id);
  assert.is(list[0].Comment, 'laptop');
  assert.match(ok(await cli(['keys', 'list'], { home })).stdout, /laptop/);
  oneLineError(await cli(['keys', 'add', key.pubFile], { home }), /already|duplicate|409|400/i);
  ok(await cli(['keys', 'rm', added.Id], { home }));
  assert.equal(json(await cli(['keys', 'list', '--json'], { home })), []);
  assert.match(ok(await cli(['keys', 'list'], { home })).stdout, /no keys/);
  oneLineError(await cli(['keys', 'rm', 'abc'], { home }), /number/);
});

test('access request writes <key>-cert.pub and prints the ssh command; certs, sessions, revoke', async () => {
  const home = join(dir, 'cfg-user');
  const userId = json(await cli(['whoami', '--json'], { home })).id;
  const vm = await createInstance(c, { ip_address: '192.0.2.44', ssh_port: 2222 });
  await grant(c, vm.serverId, userId);
  const key = await makeUserKey(dir, 'id_ed25519', 'ed25519');
  const r = ok(await cli(['access', 'request', vm.serverId, '--key', key.pubFile], { home }));
  const certFile = join(dir, 'id_ed25519-cert.pub');
  assert.ok(existsSync(certFile));
  assert.match(
    r.stdout,
    new RegExp(`ssh -i ${key.keyFile} -o CertificateFile=${certFile} -p 2222 debian@192\\.0\\.2\\.44`),
  );
  const listed = await run('ssh-keygen', ['-L', '-f', certFile]);
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /Type: ssh-ed25519-cert-v01@openssh.com user certificate/);
  assert.ok(listed.stdout.includes(vm.principal), listed.stdout);

  const again = json(
    await cli(['access', 'request', vm.serverId, '--key', key.keyFile, '--ttl', '3', '--json'], { home }),
  );
  assert.is(again.certificate_file, certFile);
  assert.type(again.certificate_id, 'string');
  assert.ok(again.ttl_seconds <= 180);

  const certs = json(await cli(['access', 'certs', '--json'], { home }));
  assert.ok(certs.certificates.some((x: any) => x.id === again.certificate_id && x.status === 'ACTIVE'));
  const certTable = ok(await cli(['access', 'certs'], { home })).stdout;
  // names instead of UUIDs: the user's own name (users may not list identities), the instance's name
  assert.match(certTable, /^ID\s+INSTANCE\s+USER\s+STATUS\s+VALID_AFTER\s+VALID_BEFORE$/m);
  assert.match(
    certTable,
    new RegExp(
      `${again.certificate_id}\\s+${vm.name}\\s+cli-user\\s+ACTIVE\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d`,
    ),
  );
  assert.equal(
    json(await cli(['access', 'certs', '--status', 'ACTIVE', '--instance', vm.name, '--json'], { home }))
      .certificates.map((x: any) => x.sandbox_id)
      .filter((x: string) => x !== vm.serverId),
    [],
  );

  const start = await c.call('POST', '/v1/access/session/start', {
    token: await c.adminToken(),
    body: { certificate_id: again.certificate_id, source_ip: '198.51.100.7' },
  });
  assert.is(start.status, 200, start.text);
  const sessions = json(await cli(['access', 'sessions', '--json']));
  assert.ok(sessions.sessions.some((s: any) => s.id === start.body.session_id && s.status === 'ACTIVE'));
  assert.match(ok(await cli(['access', 'sessions'])).stdout, /198\.51\.100\.7/);

  ok(await cli(['access', 'revoke', again.certificate_id, '--reason', 'lost laptop']));
  // a second revoke reaches the state asked for: exit 0, says so (the API answers 400 ALREADY_REVOKED)
  const twice = ok(await cli(['access', 'revoke', again.certificate_id]));
  assert.match(twice.stdout, /already revoked/);
  assert.is(json(await cli(['access', 'revoke', again.certificate_id, '--json'])).already_revoked, true);
  oneLineError(await cli(['access', 'revoke', 'no-such-cert']));
  const after = json(await cli(['access', 'certs', '--json'], { home }));
  assert.ok(after.certificates.some((x: any) => x.id === again.certificate_id && x.status === 'REVOKED'));
  oneLineError(await cli(['access', 'request', vm.serverId], { home }), /--key/);
  oneLineError(
    await cli(['access', 'request', vm.serverId, '--key', join(dir, 'nope.pub')], { home }),
    /no public key/,
  );
});

test('sign list on an empty catalogue; nodes add/list; node activate on an unreachable node fails', async () => {
  assert.equal(json(await cli(['sign', 'list', '--json'])), []);
  assert.match(ok(await cli(['sign', 'list'])).stdout, /no signatures/);
  oneLineError(await cli(['sign', 'get', '00000000-0000-4000-8000-000000000000']), /404/);
  oneLineError(await cli(['sign', 'list'], { home: join(dir, 'cfg-user') }), /403/);
  const node = json(await cli(['nodes', 'add', 'cli-node-1', '--json']));
  assert.type(node.enrollment_token, 'string');
  const nodes = json(await cli(['nodes', 'list', '--json']));
  assert.ok(nodes.some((n: any) => n.id === node.node_id && n.enrolled === false));
  assert.match(ok(await cli(['nodes', 'list'])).stdout, /cli-node-1/);
  const started = json(await cli(['node', 'deactivate', String(node.node_id), '--no-wait', '--json']));
  assert.type(started.task_id, 'string');
  const r = await cli(['node', 'activate', String(node.node_id), '--json']);
  const t = JSON.parse(r.stdout || '{}');
  // No agent is enrolled for this node: the task ends, and the exit code says how.
  assert.ok(t.state === 'SUCCESS' || t.state === 'FAILURE', r.stdout + r.stderr);
  assert.is(r.code === 0, t.state === 'SUCCESS', `exit ${r.code} for ${t.state}`);
});

test('usage errors: one line, exit 2; --help exits 0', async () => {
  const bad = await cli(['frobnicate']);
  assert.is(bad.code, 2);
  oneLineError(bad, /unknown command/);
  const opt = await cli(['whoami', '--bogus']);
  assert.is(opt.code, 2);
  oneLineError(opt, /bogus/);
  const help = await cli(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: vmwarden/);
  oneLineError(await cli(['identities', 'bogus']), /unknown command 'bogus'/);
});

test('grants add/list/rm by instance and identity name; audit shows them, filtered', async () => {
  const vm = await createInstance(c, { instance_name: 'cli-granted' });
  const u = await c.createUser('cli-grantee');
  // Names on both sides: the CLI resolves them to the UUIDs the API takes.
  const added = json(await cli(['grants', 'add', 'cli-granted', 'cli-grantee', '--json']));
  assert.is(added.server_id, vm.serverId);
  assert.is(added.identity_id, u.id);
  const human = ok(await cli(['grants', 'list', 'cli-granted'])).stdout;
  assert.match(human, /^INSTANCE\s+IDENTITY\s+IDENTITY_ID\s+CREATED_AT\n/);
  assert.match(human, /^cli-granted\s+cli-grantee\s+/m);
  assert.ok(human.includes(u.id), human);
  const listed = json(await cli(['grants', 'list', vm.serverId, '--json']));
  assert.equal(
    listed.grants.map((g: any) => g.identity_id),
    [u.id],
  );
  ok(await cli(['grants', 'rm', vm.serverId, u.id]));
  assert.is(json(await cli(['grants', 'list', 'cli-granted', '--json'])).total, 0);
  oneLineError(await cli(['grants', 'rm', 'cli-granted', 'cli-grantee']), /404/);
  oneLineError(await cli(['grants', 'add', 'no-such-vm', 'cli-grantee']), /no instance named no-such-vm/);
  oneLineError(await cli(['grants', 'add', 'cli-granted', 'nobody-here']), /no identity named nobody-here/);

  const rows = json(await cli(['audit', '--action', 'grant', '--actor', 'admin', '--json'])).entries.filter(
    (e: any) => e.object === vm.serverId,
  );
  assert.equal(rows.map((e: any) => `${e.action}:${e.outcome}`).reverse(), [
    'grant.add:success',
    'grant.remove:success',
    'grant.remove:failure',
  ]);
  assert.is(rows[2].detail, u.id);
  const one = json(await cli(['audit', '--action', 'grant.add', '--limit', '1', '--json']));
  assert.is(one.entries.length, 1);
  assert.is(one.entries[0].action, 'grant.add');
  const table = ok(
    await cli(['audit', '--action', 'grant', '--since', new Date(Date.now() - 3600_000).toISOString()]),
  ).stdout;
  assert.match(table, /^TIME\s+ACTOR\s+ACTION/);
  assert.match(table, /admin\s+grant\.remove/);
  const future = ok(await cli(['audit', '--since', new Date(Date.now() + 3600_000).toISOString()])).stdout;
  assert.is(future, 'no audit entries\n');
  oneLineError(await cli(['audit', '--since', 'yesterday']), /400/);
});

test('-o json, -o yaml and the table say the same; --json is -o json', async () => {
  const asJson = json(await cli(['identities', 'list', '-o', 'json']));
  assert.ok(asJson.length >= 2);
  assert.equal(parseYaml(ok(await cli(['identities', 'list', '-o', 'yaml'])).stdout), asJson);
  assert.equal(json(await cli(['identities', 'list', '--json'])), asJson);
  const lines = ok(await cli(['identities', 'list']))
    .stdout.trimEnd()
    .split('\n');
  assert.match(lines[0]!, /^ID\s+NAME\s+ROLE\s+CREATED_AT$/);
  assert.is(lines.length - 1, asJson.length);
  asJson.forEach((row: any, i: number) => {
    assert.equal(lines[i + 1]!.split(/\s{2,}/), [row.id, row.name, row.role, localTime(row.createdAt)]);
    assert.match(lines[i + 1]!, / \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });
  const who = json(await cli(['whoami', '-o', 'json']));
  assert.equal(parseYaml(ok(await cli(['whoami', '-o', 'yaml'])).stdout), who);
  // global options go before or after the command
  assert.equal(json(await cli(['-o', 'json', 'whoami'])), who);
});

test('names, ids and UUIDs for instances, nodes and identities; an ambiguous name lists the candidates', async () => {
  const one = await createInstance(c, { instance_name: 'cli-solo' });
  oneLineError(await cli(['sign', 'get', 'cli-solo']), new RegExp(`/v1/sign/${one.serverId}: 404`));
  oneLineError(
    await cli(['sign', 'get', one.serverId.toUpperCase()]),
    new RegExp(`/v1/sign/${one.serverId}: 404`),
  );
  const a = await createInstance(c, { instance_name: 'cli-twin' });
  const b = await createInstance(c, { instance_name: 'cli-twin' });
  const twin = await cli(['access', 'request', 'cli-twin', '--key', join(dir, 'any.pub')]);
  oneLineError(twin, /more than one instance is named cli-twin: .*; give the id/);
  assert.ok(twin.stderr.includes(a.serverId) && twin.stderr.includes(b.serverId), twin.stderr);
  oneLineError(await cli(['grants', 'list', 'cli-none']), /no instance named cli-none/);

  const node = json(await cli(['nodes', 'add', 'cli-named-node', '--json']));
  const byName = json(await cli(['node', 'deactivate', 'cli-named-node', '--no-wait', '--json']));
  const byId = json(await cli(['node', 'deactivate', String(node.node_id), '--no-wait', '--json']));
  assert.type(byName.task_id, 'string');
  assert.type(byId.task_id, 'string');
  oneLineError(await cli(['node', 'activate', 'cli-no-node']), /no node named cli-no-node/);

  const doomed = await c.createUser('cli-doomed');
  assert.match(ok(await cli(['identities', 'delete', 'cli-doomed'])).stdout, new RegExp(doomed.id));
  oneLineError(await cli(['identities', 'delete', 'cli-doomed']), /no identity named cli-doomed/);
});

test('logout ends the session', async () => {
  const home = join(dir, 'cfg-user');
  ok(await cli(['logout'], { home }));
  oneLineError(await cli(['whoami'], { home }), /not logged in/);
});

test.run();
